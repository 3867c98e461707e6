"""Every documented relay code, produced by its real cause, in every envelope, with both status choices.

Each cause is set up once per code (e.g. 60 real gpt-3.5 requests), then the triggering request is sent under
each of the 4 envelopes × 2 status modes: the cause persists (refused requests do not use the budget), so
each of the 8 answers is the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from baicai_sdk._codes import RELAY_CODES
from baicai_sdk._tokens import count_chat
from baicai_sdk.testing import EmulatorServer
from tests import plain_http

from .conftest import chat_body, client_for, decode_error

STYLES = ["openai", "openai-str", "code-msg", "errcode"]
STATUSES = ["http", "200"]

Trigger = Callable[[], httpx2.Response]


def _ok(response: httpx2.Response) -> None:
    assert response.status_code == 200, response.text


def _fill(client: httpx2.Client, count: int, body: dict[str, Any], path: str = "/chat/completions") -> None:
    for _ in range(count):
        _ok(client.post(path, json=body))


def cause(code: int, emu: EmulatorServer) -> Trigger:
    """Bring the emulator to the state where the next request answers ``code``; return that request."""
    free = client_for(emu, emu.free_key)
    paid = client_for(emu, emu.paid_key)
    body = chat_body(max_tokens=2)
    if code == 41001:
        anon = client_for(emu, None)
        return lambda: anon.post("/chat/completions", json=body)
    if code == 40038:
        raw = client_for(emu, None, authorization=emu.paid_key)  # the key without "Bearer "
        return lambda: raw.post("/chat/completions", json=body)
    if code == 40001:
        wrong = client_for(emu, "baicai-" + "x" * 40)
        return lambda: wrong.post("/chat/completions", json=body)
    if code == 40243:
        frozen = client_for(emu, emu.frozen_key)
        return lambda: frozen.post("/chat/completions", json=body)
    if code == 40039:
        return lambda: paid.post("/chat/completions", content=b"", headers={"content-type": "application/json"})
    if code == 48002:
        return lambda: paid.post("/chat/completions", json={"messages": body["messages"]})
    if code == 48001:
        return lambda: paid.post("/chat/completions", json=chat_body(model="gpt-4-32k"))
    if code == 48004:
        doubled = plain_http.client(base_url=emu.base_url + "/v1", headers={"authorization": f"Bearer {emu.paid_key}"})
        return lambda: doubled.post("/chat/completions", json=body)
    if code == 48005:
        emu.configure(free_stream=False)
        return lambda: free.post("/chat/completions", json={**body, "stream": True})
    if code == 40050:
        return lambda: free.post("/chat/completions", json=chat_body(model="gpt-4"))
    if code == 40020:
        _fill(free, 60, body)
        return lambda: free.post("/chat/completions", json=body)
    if code == 40021:
        gpt4 = chat_body(model="gpt-4-0125-preview", max_tokens=2)
        _fill(free, 1, gpt4)
        return lambda: free.post("/chat/completions", json=gpt4)
    if code == 40022:
        _fill(paid, 1000, body)
        return lambda: paid.post("/chat/completions", json=body)
    if code == 40023:
        gpt4 = chat_body(model="gpt-4", max_tokens=1)
        _fill(paid, 200, gpt4)
        return lambda: paid.post("/chat/completions", json=gpt4)
    if code == 40031:
        big = chat_body("hello " * 3000, model="gpt-3.5-turbo-0125", max_tokens=5)
        _fill(free, 3, big)  # ~9,050 tokens used; the next prompt alone would cross 10,000
        return lambda: free.post("/chat/completions", json=big)
    if code == 40032:
        big = chat_body("hello " * 1000, model="gpt-4-0125-preview")
        return lambda: free.post("/chat/completions", json=big)
    if code in (40040, 40041):
        model = "dall-e-2" if code == 40040 else "dall-e-3"
        emu.state.set_balance(emu.paid_key, 100.0)
        image = {"model": model, "prompt": "a cabbage", "size": "256x256" if model == "dall-e-2" else "1024x1024"}
        _fill(paid, 30, image, "/images/generations")
        return lambda: paid.post("/images/generations", json=image)
    if code == -1:
        emu.configure(faults="busy=1")
        return lambda: paid.post("/chat/completions", json=body)
    if code == 45011:
        emu.clock.freeze()
        emu.configure(faults="burst=3")
        _fill(paid, 3, body)
        return lambda: paid.post("/chat/completions", json=body)
    raise AssertionError(f"no cause written for {code}")


def test_every_documented_code_has_a_cause() -> None:
    assert set(RELAY_CODES) == set(ALL_CODES)


ALL_CODES = [41001, 40038, 40001, 40243, 40039, 48002, 48001, 48004, 48005, 40050, 40020, 40021, 40022, 40023,
             40031, 40032, 40040, 40041, -1, 45011]


# 40022: 1000 requests fill the paid window first
@pytest.mark.parametrize("code", [pytest.param(c, marks=pytest.mark.slow) if c == 40022 else c for c in ALL_CODES])
def test_code_from_its_real_cause_in_every_envelope(emulator: EmulatorServer, code: int) -> None:
    trigger = cause(code, emulator)
    known = RELAY_CODES[code]
    for style in STYLES:
        for status in STATUSES:
            emulator.configure(error_style=style, error_status=status)
            response = trigger()
            want_status = known.http_status if status == "http" else 200
            assert response.status_code == want_status, (style, status, response.text)
            got, message = decode_error(style, response.json())
            assert got == code, (style, status, response.text)
            assert message == known.message.render("both")  # what the emulated relay sends
            assert emulator.state.requests[-1].relay_code == code


def test_relay_errors_are_recorded_and_cost_nothing(emulator: EmulatorServer) -> None:
    with client_for(emulator, emulator.frozen_key) as frozen:
        frozen.post("/chat/completions", json=chat_body())
    record = emulator.state.requests[-1]
    assert (record.relay_code, record.status, record.cost, record.key_tier) == (40243, 403, 0.0, "frozen")
    assert emulator.state.spent(emulator.frozen_key) == 0


@pytest.mark.parametrize(
    ("header", "code"),
    [("Token abc", 40038), ("Bearer", 40038), ("Basic dXNlcjpwYXNz", 40038), ("bearer baicai-nope", 40001),
     ("Bearer sk-openai-key-by-mistake", 40001)],
)
def test_authorization_variants(emulator: EmulatorServer, header: str, code: int) -> None:
    response = plain_http.get(f"{emulator.base_url}/models", headers={"authorization": header})
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("path", ["/v1/v1/models", "/v1/completions", "/v2/chat/completions", "/"])
def test_unknown_routes_are_48004_even_for_good_keys(emulator: EmulatorServer, path: str) -> None:
    response = plain_http.get(emulator.url + path, headers={"authorization": f"Bearer {emulator.paid_key}"})
    assert (response.status_code, response.json()["error"]["code"]) == (404, 48004)


def test_unknown_model_is_48001_and_models_need_no_model(paid: httpx2.Client) -> None:
    assert paid.post("/chat/completions", json=chat_body(model="no-such-model")).json()["error"]["code"] == 48001
    assert paid.post("/chat/completions", json=chat_body(model="dall-e-3")).json()["error"]["code"] == 48001
    assert paid.get("/models").status_code == 200


def test_free_key_on_dalle_is_40050(free: httpx2.Client) -> None:
    response = free.post("/images/generations", json={"model": "dall-e-2", "prompt": "x"})
    assert response.json()["error"]["code"] == 40050


def test_openai_errors_pass_through_in_openai_shape_even_in_other_styles(emulator: EmulatorServer,
                                                                          paid: httpx2.Client) -> None:
    emulator.configure(error_style="errcode", error_status="200")
    bad_json = paid.post("/chat/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"
    long_prompt = chat_body("word " * 5000, model="gpt-3.5-turbo")
    too_long = paid.post("/chat/completions", json=long_prompt)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert str(count_chat(long_prompt["messages"], "gpt-3.5-turbo")) in too_long.json()["error"]["message"]


def test_balance_used_up_is_insufficient_quota(emulator: EmulatorServer, paid: httpx2.Client) -> None:
    emulator.state.set_balance(emulator.paid_key, 0.0)
    response = paid.post("/chat/completions", json=chat_body())
    assert response.status_code == 429 and response.json()["error"]["code"] == "insufficient_quota"
