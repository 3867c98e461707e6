"""Hourly windows: sliding 3600 s on the emulator clock, per key and per client IP, requests and tokens."""

from __future__ import annotations

import httpx2
import pytest

from baicai_sdk._tokens import count_chat
from baicai_sdk.testing import EmulatorServer
from tests import plain_http

from .conftest import chat_body, client_for

KEY_A = "baicai-" + "a" * 40
KEY_B = "baicai-" + "b" * 40


def _post(client: httpx2.Client, body: dict[str, object] | None = None, **headers: str) -> int:
    response = client.post("/chat/completions", json=body or chat_body(max_tokens=1), headers=headers)
    return 200 if response.status_code == 200 else int(response.json()["error"]["code"])


@pytest.mark.slow  # fills a whole window
def test_two_keys_on_one_ip_share_one_budget(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(keys={KEY_A: "free", KEY_B: "free"})
    emu.clock.freeze()
    a, b = client_for(emu, KEY_A), client_for(emu, KEY_B)
    assert [_post(a) for _ in range(30)] == [200] * 30
    assert [_post(b) for _ in range(30)] == [200] * 30
    assert _post(a) == 40020 and _post(b) == 40020  # extra keys add no quota
    emu.clock.advance(3600)
    assert _post(b) == 200


@pytest.mark.slow  # fills a whole window
def test_one_key_on_several_ips_has_one_budget(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(keys={KEY_A: "free", KEY_B: "free"}, trust_forwarded_for=True)
    emu.clock.freeze()
    a = client_for(emu, KEY_A)
    for i in range(60):
        assert _post(a, **{"x-forwarded-for": f"10.0.0.{i % 3}"}) == 200
    assert _post(a, **{"x-forwarded-for": "10.9.9.9"}) == 40020
    # Another key from a fresh IP is unaffected; the same key is not.
    b = client_for(emu, KEY_B)
    assert _post(b, **{"x-forwarded-for": "10.9.9.9"}) == 200
    assert emu.state.requests[-1].client_ip == "10.9.9.9"


@pytest.mark.slow  # fills a whole window
def test_a_forwarded_for_header_is_ignored_unless_trusted(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    """Only ``trust_forwarded_for`` lets a header choose the client IP: the server underneath must not rewrite
    the address either (uvicorn does for loopback peers unless told not to), or any local client could claim a
    fresh IP budget per request."""
    emu = emulator_factory(keys={KEY_A: "free", KEY_B: "free"})
    emu.clock.freeze()
    a, b = client_for(emu, KEY_A), client_for(emu, KEY_B)
    assert [_post(a, **{"x-forwarded-for": f"10.0.0.{i}"}) for i in range(30)] == [200] * 30
    assert [_post(b, **{"x-forwarded-for": f"10.1.0.{i}"}) for i in range(30)] == [200] * 30
    assert _post(b, **{"x-forwarded-for": "10.9.9.9"}) == 40020
    assert {r.client_ip for r in emu.state.requests} == {"127.0.0.1"}


@pytest.mark.slow  # fills a whole window
def test_window_slides(emulator: EmulatorServer) -> None:
    emulator.clock.freeze()
    free = client_for(emulator, emulator.free_key)
    for _ in range(30):
        assert _post(free) == 200
    emulator.clock.advance(1800)
    for _ in range(30):
        assert _post(free) == 200
    assert _post(free) == 40020
    emulator.clock.advance(1799)  # the first 30 are 3599 s old: still in the window
    assert _post(free) == 40020
    emulator.clock.advance(1)  # now they leave it; the later 30 stay
    assert [_post(free) for _ in range(30)] == [200] * 30
    assert _post(free) == 40020


def test_refused_requests_do_not_use_the_budget(emulator: EmulatorServer) -> None:
    emulator.clock.freeze()
    free = client_for(emulator, emulator.free_key)
    gpt4 = chat_body(model="gpt-4-0125-preview", max_tokens=1)
    assert _post(free, gpt4) == 200
    for _ in range(5):
        assert _post(free, gpt4) == 40021
    emulator.clock.advance(3600)
    assert _post(free, gpt4) == 200


@pytest.mark.slow  # fills a whole window
def test_free_token_window_rule(emulator: EmulatorServer) -> None:
    """Refuse when used + this prompt > limit; charge prompt + completion after the answer."""
    emulator.clock.freeze()
    emulator.configure(reply_tokens=10)
    free = client_for(emulator, emulator.free_key)
    model = "gpt-3.5-turbo-0125"
    small = chat_body("hi", model=model)
    small_prompt = count_chat(small["messages"], model)
    used = 0
    while True:
        answer = free.post("/chat/completions", json=small).json()
        if "error" in answer:
            break
        used += answer["usage"]["total_tokens"]
    assert answer["error"]["code"] == 40020 and used < 10_000  # small prompts: the request limit comes first
    emulator.clock.advance(3600)
    big = chat_body("hello " * 2000, model=model)
    big_prompt = count_chat(big["messages"], model)
    total = 0
    while total + big_prompt <= 10_000:
        answer = free.post("/chat/completions", json=big).json()
        assert "usage" in answer, answer
        total += answer["usage"]["total_tokens"]
    assert free.post("/chat/completions", json=big).json()["error"]["code"] == 40031
    # The boundary, exactly: a prompt of the remaining tokens is admitted, one token more is not.
    fits = 10_000 - total
    words = fits - small_prompt + 1
    exact = chat_body("hi" + " hello" * words, model=model)
    while count_chat(exact["messages"], model) > fits:
        words -= 1
        exact = chat_body("hi" + " hello" * words, model=model)
    assert count_chat(exact["messages"], model) == fits
    over = chat_body("hi" + " hello" * (words + 1), model=model)
    assert free.post("/chat/completions", json=over).json()["error"]["code"] == 40031
    assert free.post("/chat/completions", json=exact).status_code == 200
    assert free.post("/chat/completions", json=small).json()["error"]["code"] == 40031  # charged: now over


def test_paid_limits_and_free_gpt4(emulator: EmulatorServer) -> None:
    emulator.clock.freeze()
    free = client_for(emulator, emulator.free_key)
    assert _post(free, chat_body("x " * 1200, model="gpt-4-1106-preview")) == 40032  # prompt alone > 1,000
    assert _post(free, chat_body(model="gpt-4-1106-preview", max_tokens=1)) == 200
    assert _post(free, chat_body(model="gpt-4-1106-preview", max_tokens=1)) == 40021


@pytest.mark.parametrize("header_clock", [False, True])
def test_clock_over_http(emulator: EmulatorServer, header_clock: bool) -> None:
    emulator.clock.freeze()
    gpt4 = chat_body(model="gpt-4-0125-preview", max_tokens=1)
    free = client_for(emulator, emulator.free_key)
    assert _post(free, gpt4) == 200 and _post(free, gpt4) == 40021
    if header_clock:
        answer = plain_http.post(emulator.url + "/_emulator/clock", json={"advance": 3600}).json()
        assert answer["frozen"] is True
    else:
        emulator.clock.advance(3600)
    assert _post(free, gpt4) == 200


@pytest.mark.slow  # fills a whole window
async def test_concurrent_requests_never_over_admit(emulator: EmulatorServer) -> None:
    import asyncio

    emulator.clock.freeze()
    headers = {"authorization": f"Bearer {emulator.free_key}"}
    async with httpx2.AsyncClient(base_url=emulator.base_url, headers=headers, timeout=30) as client:
        responses = await asyncio.gather(*[client.post("/chat/completions", json=chat_body(max_tokens=1))
                                           for _ in range(70)])
    codes = sorted(200 if r.status_code == 200 else r.json()["error"]["code"] for r in responses)
    assert codes == [200] * 60 + [40020] * 10


def test_two_keys_on_one_ip_share_the_token_budget(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(keys={KEY_A: "free", KEY_B: "free"}, reply_tokens=1)
    emu.clock.freeze()
    a, b = client_for(emu, KEY_A), client_for(emu, KEY_B)
    big = chat_body("hello " * 3000, model="gpt-3.5-turbo-0125")
    assert _post(a, big) == 200 and _post(b, big) == 200 and _post(a, big) == 200  # ~9,030 tokens from one IP
    assert _post(b, big) == 40031 and _post(a, big) == 40031
    assert [r.key_tier for r in emu.state.requests] == ["free"] * 5


@pytest.mark.slow  # fills a whole window
def test_catalog_override_applies_to_the_emulator(emulator: EmulatorServer, baicai_home) -> None:  # type: ignore[no-untyped-def]
    import json

    from baicai_sdk._paths import config_dir

    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "catalog.json").write_text(json.dumps({"chat_models": {"gpt-4o": {
        "family": "gpt-4", "prompt": 0.05, "completion": 0.15, "free": False, "context": 128000}}}))
    emulator.reset()
    paid = client_for(emulator, emulator.paid_key)
    answer = paid.post("/chat/completions", json=chat_body(model="gpt-4o")).json()
    usage = answer["usage"]
    assert usage["prompt_tokens"] == count_chat([{"role": "user", "content": "hello"}], "gpt-4o")  # o200k
    assert emulator.state.spent(emulator.paid_key) == pytest.approx(
        (usage["prompt_tokens"] * 0.05 + usage["completion_tokens"] * 0.15) / 1000)
