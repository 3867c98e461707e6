"""What reaches the relay and what reaches apps (issue 14, item 7), over real sockets: a recording upstream stands
in for the relay, so the test sees every header the sidecar sends and can echo the key back at it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from baicai_sdk.integration import BackgroundServer
from baicai_sidecar._proxy import KeyScrubber
from baicai_sidecar._server import SidecarServer
from baicai_sidecar.app import SidecarConfig

KEY = "baicai-Real0Key0For0The0Relay0000000000abcd"
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-3.5-turbo",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


class Recorder:
    """A relay stand-in: records each request's headers; ``stream`` answers an SSE stream whose error event quotes
    the key it was sent, split across two chunks; every answer echoes the key in a response header."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.seen.append(headers)
        echo = [(b"x-echo-auth", headers.get("authorization", "").encode())]
        if json.loads(body or b"{}").get("stream"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream"), *echo]})
            event = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}", "type": "x"}}).encode()
            cut = event.index(b"Key0For")
            for part in (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n', b"data: " + event[:cut],
                         event[cut:] + b"\n\n", b"data: [DONE]\n\n"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps(COMPLETION).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), *echo]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def relay() -> Iterator[tuple[Recorder, BackgroundServer]]:
    recorder = Recorder()
    with BackgroundServer(recorder) as server:
        yield recorder, server


@pytest.fixture
def through(relay: tuple[Recorder, BackgroundServer], app_token: str) -> Iterator[SidecarServer]:
    with SidecarServer(SidecarConfig(upstream=relay[1].url + "/v1", api_key=KEY, tier="paid")) as sidecar:
        yield sidecar


def test_only_what_openai_needs_reaches_the_relay(relay: tuple[Recorder, BackgroundServer], through: SidecarServer,
                                                   app_token: str) -> None:
    recorder, _ = relay
    sent = {
        "authorization": f"Bearer {app_token}", "x-api-key": app_token, "api-key": app_token,
        "true-client-ip": "1.2.3.4", "cf-connecting-ip": "1.2.3.4", "via": "1.1 evil", "x-forwarded-for": "1.2.3.4",
        "x-http-method-override": "DELETE", "cookie": "session=1", "x-custom-secret": "s3cret",
        "user-agent": "OpenAI/Python 1.0", "openai-organization": "org-1", "openai-beta": "assistants=v2",
        "x-stainless-lang": "python", "x-stainless-retry-count": "0", "idempotency-key": "abc-1",
        "accept": "application/json",
    }
    r = httpx2.post(through.base_url + "/chat/completions", headers=sent,
                    json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    upstream = recorder.seen[-1]
    assert upstream["authorization"] == f"Bearer {KEY}"
    for name in ("user-agent", "openai-organization", "openai-beta", "x-stainless-lang", "x-stainless-retry-count",
                 "idempotency-key", "accept", "content-type"):
        assert upstream[name] == (sent.get(name) or "application/json"), name
    for name in ("x-api-key", "api-key", "true-client-ip", "cf-connecting-ip", "via", "x-forwarded-for",
                 "x-http-method-override", "cookie", "x-custom-secret", "x-baicai-app"):
        assert name not in upstream, name
    assert app_token not in json.dumps(upstream)
    # and toward the app: the key the relay echoed in a header is masked
    assert KEY not in r.headers.get("x-echo-auth", "") and "baicai-…abcd" in r.headers["x-echo-auth"]


def test_a_key_in_an_sse_error_event_never_reaches_the_app(through: SidecarServer, app_token: str) -> None:
    with httpx2.stream("POST", through.base_url + "/chat/completions",
                       headers={"authorization": f"Bearer {app_token}"},
                       json={"model": "gpt-3.5-turbo", "stream": True, "messages": []}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert KEY not in r.headers.get("x-echo-auth", "")
        text = b"".join(r.iter_raw()).decode()
    assert KEY not in text and "Incorrect API key provided: baicai-…abcd" in text and text.endswith("[DONE]\n\n")


def test_key_scrubber_masks_a_key_split_across_chunks() -> None:
    scrub = KeyScrubber(KEY.encode(), b"baicai-\xe2\x80\xa6abcd")
    event = f'data: {{"error": {{"message": "Incorrect API key provided: {KEY}"}}}}\n\n'.encode()
    for cut in range(len(event)):
        out = scrub.feed(event[:cut]) + scrub.feed(event[cut:]) + scrub.flush()
        assert KEY.encode() not in out and "baicai-…abcd".encode() in out
    assert scrub.feed(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"  # nothing held back at an event's end
