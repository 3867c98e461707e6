"""Malformed input gets a clear answer (issue 14, item 9): a typed 400 in the SDK, an OpenAI-shaped 400 from the
sidecar — nothing sent to the relay, nothing in the ledger — and the emulator's admin routes refuse browser pages."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from baicai_sdk import AsyncBaicai, Baicai
from tests import plain_http

BAD = [
    ([1, 2, 3], "messages[0]", "got int"),
    ("hello", "messages", "list of message objects"),
    ([{"role": "user", "content": "hi"}, "oops"], "messages[1]", "got str"),
]


@pytest.mark.parametrize(("messages", "param", "said"), BAD)
def test_sdk_raises_a_typed_bad_request(emulator: Any, messages: Any, param: str, said: str) -> None:
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=messages)
    error = caught.value
    assert error.status_code == 400 and error.code == "invalid_type" and error.param == param
    message = str(error)
    assert said in message and "请求格式有误" in message and message.index("请求格式有误") < message.index("invalid")
    assert not [r for r in emulator.state.requests if r.path == "/v1/chat/completions"]  # nothing was sent


async def test_async_sdk_too(emulator: Any) -> None:
    client = AsyncBaicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="gpt-3.5-turbo", messages=[1, 2, 3])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError, match="model must be a string"):
        await client.chat.completions.create(model=["gpt-4"], messages=[])  # type: ignore[arg-type]
    await client.close()


@pytest.mark.parametrize(("messages", "param", "said"), BAD)
def test_sidecar_answers_400_in_openai_shape(emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any,
                                            messages: Any, param: str, said: str) -> None:
    r = plain_http.post(sidecar.base_url + "/chat/completions", headers={"authorization": f"Bearer {app_token}"},
                        json={"model": "gpt-3.5-turbo", "messages": messages})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and said in error["message"]
    assert not [rec for rec in emulator.state.requests if rec.path == "/v1/chat/completions"]
    assert ledger_rows() == []


def test_emulator_admin_routes_refuse_browser_pages(emulator: Any) -> None:
    url = emulator.url + "/_emulator/reset"
    cross_site = plain_http.post(url, content=b'{"x": 1}', headers={"origin": "https://evil.example",
                                                                   "content-type": "text/plain"})
    assert cross_site.status_code == 403
    rebound = plain_http.post(url, headers={"host": "evil.example"})
    assert rebound.status_code == 421
    form = plain_http.post(emulator.url + "/_emulator/config", content=b'{"faults": "busy=1"}',
                           headers={"content-type": "text/plain"})
    assert form.status_code == 415
    config = plain_http.get(emulator.url + "/_emulator/state").json()["config"]
    assert "busy" not in config["faults"]  # the refused POST changed nothing
    assert plain_http.post(url).json() == {"ok": True}  # a local tool, as before
    assert plain_http.post(emulator.url + "/_emulator/config", json={"faults": "latency=0"}).status_code == 200
