"""The guard alone (pure ASGI, in-process): every refused request is answered here and never reaches the endpoint."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest

from baicai_sidecar._guard import GuardConfig, SidecarGuard, route_allowed

TOKEN = "sk-baicai-" + "A" * 32


class Probe:
    """Stands in for the proxy: records every request that got through."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.calls.append({"path": scope["path"], "app": scope.get("baicai.app"), "body": message.get("body", b"")})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})


def make(**config: Any) -> tuple[httpx2.AsyncClient, Probe]:
    probe = Probe()
    guard = SidecarGuard(probe, GuardConfig(verify_token=lambda t: "lobechat" if t == TOKEN else None, **config))
    # port 8765 as a real sidecar would have it; the guard reads the port from the ASGI scope
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guard), base_url="http://127.0.0.1:8765")
    return client, probe


AUTH = {"authorization": f"Bearer {TOKEN}"}
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    message = body["error"]["message"]
    assert " / " in message, "bilingual: Chinese / English"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message.split(" / ")[0])
    return body["error"]  # type: ignore[no-any-return]


async def test_a_good_request_gets_through_with_its_app() -> None:
    client, probe = make()
    raw = json.dumps(CHAT, indent=1).encode()  # the body reaches the endpoint byte for byte
    r = await client.post("/v1/chat/completions", content=raw, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 200
    assert probe.calls == [{"path": "/v1/chat/completions", "app": "lobechat", "body": raw}]


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "localhost.evil.com:8765", "0.0.0.0:8765",
                                  "192.168.1.5:8765"])
async def test_rebinding_host_is_refused(host: str) -> None:
    client, probe = make()
    r = await client.get("/v1/models", headers={**AUTH, "host": host})
    assert r.status_code == 421 and error_of(r)["code"] == "host_not_allowed"
    assert probe.calls == []


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST:8765"])
async def test_loopback_hosts_with_the_port_are_accepted(host: str) -> None:
    client, probe = make()
    r = await client.get("/v1/models", headers={**AUTH, "host": host})
    assert r.status_code == 200 and len(probe.calls) == 1


async def test_empty_or_duplicated_host_is_refused() -> None:
    probe = Probe()
    guard = SidecarGuard(probe, GuardConfig(verify_token=lambda t: "x"))
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    for headers in ([(b"host", b"")], [], [(b"host", b"127.0.0.1:8765"), (b"host", b"evil.example")]):
        sent.clear()
        scope = {"type": "http", "method": "GET", "path": "/v1/models", "server": ("127.0.0.1", 8765),
                 "headers": headers + [(b"authorization", b"Bearer t")]}
        await guard(scope, receive, send)
        assert sent[0]["status"] in (400, 421)
        assert json.loads(sent[1]["body"])["error"]["code"] == "host_not_allowed"
    assert probe.calls == []


async def test_the_real_key_pasted_into_an_app_is_named_as_such_and_never_echoed(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="baicai.sidecar")
    client, probe = make()
    real = "baicai-" + "r" * 40
    r = await client.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {real}"})
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"
    assert "真实密钥" in r.text and "real BaicaiGPT key" in r.text and real not in r.text and "r" * 20 not in r.text
    assert probe.calls == []
    # the console says why, in one line, without the key
    (line,) = [rec.getMessage() for rec in caplog.records if rec.name == "baicai.sidecar"]
    assert "POST /v1/chat/completions -> 401 invalid_api_key: that is your real BaicaiGPT key" in line
    assert "r" * 20 not in line


async def test_two_origin_headers_are_refused_whichever_comes_last() -> None:
    probe = Probe()
    guard = SidecarGuard(probe, GuardConfig(verify_token=lambda t: "x", allowed_origins=["http://localhost:3210"]))
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    good, evil = (b"origin", b"http://localhost:3210"), (b"origin", b"https://evil.example")
    for origins in ([evil, good], [good, evil], [good, good]):
        sent.clear()
        scope = {"type": "http", "method": "GET", "path": "/v1/models", "server": ("127.0.0.1", 8765),
                 "headers": [(b"host", b"127.0.0.1:8765"), (b"authorization", b"Bearer t"), *origins]}
        await guard(scope, receive, send)
        assert sent[0]["status"] == 400
        assert json.loads(sent[1]["body"])["error"]["code"] == "origin_not_allowed"
        assert not any(k == b"access-control-allow-origin" for k, _ in sent[0]["headers"])
    assert probe.calls == []


async def test_foreign_origin_never_runs_the_endpoint() -> None:
    client, probe = make()
    r = await client.post("/v1/chat/completions", json=CHAT, headers={**AUTH, "origin": "https://evil.example"})
    assert r.status_code == 403 and error_of(r)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers
    assert probe.calls == []


async def test_allowed_origin_gets_cors_naming_it_and_preflight_is_answered() -> None:
    client, probe = make(allowed_origins=["http://localhost:3210"])
    pre = await client.options("/v1/chat/completions", headers={
        "origin": "http://localhost:3210", "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "http://localhost:3210"
    assert "authorization" in pre.headers["access-control-allow-headers"]
    r = await client.post("/v1/chat/completions", json=CHAT, headers={**AUTH, "origin": "http://localhost:3210"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3210"
    assert r.headers["access-control-allow-origin"] != "*"
    assert len(probe.calls) == 1


async def test_cross_site_text_plain_post_is_refused_before_the_endpoint() -> None:
    client, probe = make()
    r = await client.post("/v1/chat/completions", content=json.dumps(CHAT),
                          headers={**AUTH, "content-type": "text/plain"})
    assert r.status_code == 415 and error_of(r)["code"] == "unsupported_media_type"
    form = await client.post("/v1/chat/completions", data={"a": "b"}, headers=AUTH)
    assert form.status_code == 415
    assert probe.calls == []


async def test_multipart_only_where_openai_uses_it() -> None:
    client, probe = make()
    r = await client.post("/v1/images/edits", files={"image": ("a.png", b"\x89PNG...")}, data={"prompt": "x"},
                          headers=AUTH)
    assert r.status_code == 200
    assert len(probe.calls) == 1 and b"\x89PNG" in probe.calls[0]["body"]


async def test_oversize_body_is_refused_declared_or_streamed() -> None:
    client, probe = make(max_body=1000)
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]}
    r = await client.post("/v1/chat/completions", json=big, headers=AUTH)
    assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"
    assert "exceeds the 1000 B limit" in error_of(r)["message"]  # not "0.000953674 MB"

    async def chunks() -> Any:
        for _ in range(5):
            yield b" " * 300  # no content-length: counted as it arrives

    r = await client.post("/v1/chat/completions", content=chunks(),
                          headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413
    assert probe.calls == []


async def test_malformed_json_is_a_readable_400() -> None:
    client, probe = make()
    r = await client.post("/v1/chat/completions", content=b'{"model": "gpt-3.5-turbo",',
                          headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_json"
    assert probe.calls == []


async def test_token_required_and_open_mode() -> None:
    client, probe = make()
    for headers in ({}, {"authorization": "Bearer sk-wrong"}, {"authorization": TOKEN}):
        r = await client.get("/v1/models", headers=headers)
        assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"
    assert probe.calls == []
    open_client, open_probe = make(open_access=True)
    assert (await open_client.get("/v1/models", headers={"authorization": "Bearer anything"})).status_code == 200
    assert open_probe.calls[0]["app"] == "open"


async def test_paths_outside_openai_are_not_forwarded() -> None:
    client, probe = make()
    for path in ("/admin", "/v1/../etc/passwd", "/_emulator/config", "/v2/chat/completions"):
        r = await client.get(path, headers=AUTH)
        assert r.status_code == 404, path
    r = await client.get("/v1/chat/completions", headers=AUTH)
    assert r.status_code == 405
    assert probe.calls == []


def test_route_table() -> None:
    assert route_allowed("/v1/chat/completions", "POST")
    assert route_allowed("/chat/completions", "POST")
    assert route_allowed("/dashboard/billing/usage", "GET")  # NextChat, no /v1
    assert route_allowed("/v1/dashboard/billing/subscription", "GET")
    assert route_allowed("/v1/models/gpt-3.5-turbo", "GET")
    assert route_allowed("/sidecar/status", "GET")
    assert route_allowed("/v1/chat/completions", "GET") is False
    assert route_allowed("/v1/files", "GET") is None


def test_dot_segments_never_climb_out_of_v1() -> None:
    """`/v1/models/..%2f..%2fadmin` reaches the app decoded: with the real key attached it must not be forwarded."""
    from baicai_sidecar._guard import route_allowed

    for path in ("/v1/models/../../_emulator/state", "/v1/models/x/../../../x", "/models/./gpt-4", "/v1/models/.."):
        assert route_allowed(path, "GET") is None, path
    assert route_allowed("/v1/models/ft:gpt-3.5-turbo:org/custom:id", "GET") is True


def test_a_long_refusal_reason_is_cut_between_words_with_an_ellipsis() -> None:
    from baicai_sdk.integration import Text
    from baicai_sidecar._guard import refusal_line

    why = Text("中文理由，" * 100, "a reason that goes on " * 40)
    line = refusal_line("GET", "/v1/models", 421, "host_not_allowed", why)
    reason = line.en.split(": ", 1)[1]
    assert reason.endswith("…") and len(reason) <= 401, reason
    assert why.en.startswith(reason[:-1] + " "), reason  # whole words only
    assert line.zh.endswith("中文理由…"), line.zh
    short = refusal_line("GET", "/v1/models", 401, "invalid_api_key", Text("短", "short"))
    assert short.en == "refused GET /v1/models -> 401 invalid_api_key: short"
