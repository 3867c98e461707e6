"""The sidecar and the SDK read answers with the same wire module: the same words for a relay error, and a generic
OpenAI-compatible server's errors passed to apps as that server sent them (issue 12; issue 16, item 4)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from baicai_sdk import Baicai, InvalidKey, RetryPolicy
from tests import plain_http
from tests.generic_server import GenericServer, generic_server  # noqa: F401  (fixture)

CHAT: dict[str, Any] = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好"}]}
CLASSES = {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError,
           429: openai.RateLimitError, 500: openai.InternalServerError}


def test_the_sdk_and_the_sidecar_say_the_same_for_the_same_relay_answer(
        emulator: Any, sidecar_factory: Any, app_token: str) -> None:
    wrong = "baicai-" + "w" * 40
    with pytest.raises(InvalidKey) as caught:
        Baicai(base_url=emulator.base_url, api_key=wrong, quota="off").chat.completions.create(**CHAT)
    sdk_text = caught.value.message

    sc = sidecar_factory(api_key=wrong)
    answer = plain_http.post(sc.base_url + "/chat/completions", json=CHAT,
                             headers={"authorization": f"Bearer {app_token}"}, timeout=10)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["message"] == sdk_text and error["code"] == "40001" and error["type"] == "baicai_authentication"
    zh, _, en = sdk_text.partition(" / ")
    assert "40001" in zh and "40001" in en and "w" * 8 not in sdk_text  # bilingual, and no key in full


@pytest.mark.parametrize("style", ["litellm", "openai"])
@pytest.mark.parametrize("status", sorted(CLASSES))
def test_generic_server_errors_reach_apps_as_the_server_sent_them(
        generic_server: GenericServer, sidecar_factory: Any, app_token: str, ledger_rows: Any,
        status: int, style: str) -> None:
    generic_server.status, generic_server.style = status, style
    sc = sidecar_factory(upstream=generic_server.base_url, api_key="baicai-" + "g" * 32,
                         retry_policy=RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002, jitter=0.0))
    app = plain_http.openai_client(base_url=sc.base_url, api_key=app_token, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        app.chat.completions.create(**CHAT)
    error = caught.value
    assert type(error) is CLASSES[status] and error.status_code == status
    sent = generic_server.body()["error"]
    assert isinstance(error.body, dict)
    assert error.body["type"] == sent["type"] and error.body["message"] == sent["message"]
    assert "BaicaiGPT" not in str(error) and "白菜GPT" not in str(error)
    # retried as openai would (429, 5xx) — by the sidecar, so the app is told not to retry on top
    assert generic_server.hits == (3 if status in (429, 500) else 1)
    assert error.response.headers["x-should-retry"] == "false"
    rows = ledger_rows()
    assert len(rows) == 1 and rows[0]["status"] == "error" and rows[0]["http_status"] == status
