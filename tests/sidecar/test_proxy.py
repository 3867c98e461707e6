"""The sidecar end to end: real sockets, openai → sidecar → emulator, the ledger checked after each story."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import httpx2
import openai
import pytest

from baicai_sdk.testing import wait_until
from baicai_sidecar._tokens import TokenStore
from tests import plain_http

CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好"}]}


def client(sidecar: Any, token: str, **kw: Any) -> openai.OpenAI:
    return plain_http.openai_client(base_url=sidecar.base_url, api_key=token, max_retries=0, **kw)


def bilingual(message: str) -> None:
    zh, _, en = message.partition(" / ")
    assert en and any("\u4e00" <= ch <= "\u9fff" for ch in zh), message


def wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    return wait_until(predicate, timeout=timeout, interval=0.02)


def test_chat_reaches_the_relay_with_the_real_key_only(emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any) -> None:
    reply = client(sidecar, app_token).chat.completions.create(**CHAT)
    assert reply.choices[0].message.content
    [seen] = emulator.state.requests
    assert seen.authorization == f"Bearer {emulator.paid_key}"
    assert app_token not in (seen.authorization or "")
    [row] = ledger_rows()
    assert (row["source"], row["app"], row["status"]) == ("sidecar", "testapp", "ok")
    assert row["prompt_tokens"] == seen.prompt_tokens and row["completion_tokens"] == seen.completion_tokens


def test_models_images_and_billing_without_v1(emulator: Any, sidecar: Any, app_token: str) -> None:
    c = client(sidecar, app_token)
    assert "gpt-3.5-turbo" in {m.id for m in c.models.list().data}
    image = c.images.generate(model="dall-e-2", prompt="白菜", size="256x256", n=1)
    assert image.data and (image.data[0].url or image.data[0].b64_json)
    # NextChat asks for billing without /v1: forwarded to the relay's /v1 path, answer passed through as is
    direct = plain_http.get(emulator.base_url + "/dashboard/billing/subscription",
                            headers={"authorization": f"Bearer {emulator.paid_key}"})
    via = plain_http.get(sidecar.origin + "/dashboard/billing/subscription",
                         headers={"authorization": f"Bearer {app_token}"})
    assert via.status_code == direct.status_code
    if direct.status_code == 200:
        assert via.json().keys() == direct.json().keys()
    assert all(r.authorization == f"Bearer {emulator.paid_key}" for r in emulator.state.requests)


def test_stream_passes_through_with_exactly_one_done(emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any) -> None:
    with httpx2.stream("POST", sidecar.base_url + "/chat/completions", json={**CHAT, "stream": True},
                       headers={"authorization": f"Bearer {app_token}"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in r.headers
        raw = b"".join(r.iter_raw())
    assert raw.count(b"[DONE]") == 1 and raw.rstrip().endswith(b"data: [DONE]")
    text = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in raw.decode().splitlines() if line.startswith("data: {"))
    assert text
    row = wait_for(lambda: [r for r in ledger_rows() if r["status"] != "pending"])[0]
    assert row["stream"] == 1 and row["status"] == "ok" and row["completion_tokens"] > 0
    assert row["app"] == "testapp"


def test_slow_stream_chunks_arrive_with_the_spacing_sent(emulator: Any, sidecar: Any, app_token: str) -> None:
    emulator.configure(chunk_delay=0.08, reply_tokens=8)
    arrivals: list[float] = []
    with httpx2.stream("POST", sidecar.base_url + "/chat/completions", json={**CHAT, "stream": True},
                       headers={"authorization": f"Bearer {app_token}"}, timeout=30) as r:
        started = time.monotonic()
        buffer = b""
        for chunk in r.iter_raw():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                if event.startswith(b"data: {"):
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 6
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # not buffered: the first chunk comes long before the last, and chunks keep the emulator's pace
    assert arrivals[0] < arrivals[-1] - 0.3
    assert sorted(gaps)[len(gaps) // 2] > 0.05, gaps


def test_upstream_down_is_a_readable_502_after_safe_retries(sidecar_factory: Any, app_token: str, ledger_rows: Any, fast_retries: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # closed again before use: connection refused
    sc = sidecar_factory(upstream=f"http://127.0.0.1:{dead_port}/v1")
    with pytest.raises(openai.APIStatusError) as info:
        client(sc, app_token).chat.completions.create(**CHAT)
    err = info.value
    assert err.status_code == 502 and err.response.headers["x-should-retry"] == "false"
    bilingual(err.body["message"])  # type: ignore[index]
    assert "upstream_unreachable" == err.body["code"]  # type: ignore[index]
    assert sc.proxy.stats.retries == fast_retries.max_retries
    # The app asked once: one row (the last attempt's), the app's own, failed and not charged.
    (row,) = ledger_rows()
    assert row["status"] == "failed" and not row["cost"] and row["app"] == "testapp"


def test_upstream_drop_mid_stream_tells_the_app(emulator: Any, sidecar: Any, app_token: str,
                                                ledger_rows: Any) -> None:
    emulator.configure(faults="reset=3", reply_tokens=12)
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client(sidecar, app_token).chat.completions.create(**CHAT, stream=True):
            got.append(chunk)
    assert got, "the chunks sent before the drop reached the app"
    bilingual(info.value.message)
    assert "upstream_dropped" == sidecar.proxy.stats.recent_errors[-1]["code"]
    row = wait_for(lambda: [r for r in ledger_rows() if r["status"] != "pending"])[0]
    assert row["completion_tokens"] > 0  # what was used before the drop is still recorded


def test_upstream_drop_mid_stream_is_settled_as_dropped(emulator: Any, sidecar: Any, app_token: str,
                                                        ledger_rows: Any) -> None:
    emulator.configure(faults="reset=3", reply_tokens=12)
    with pytest.raises(openai.APIError):
        for _ in client(sidecar, app_token).chat.completions.create(**CHAT, stream=True):
            pass
    row = wait_for(lambda: [r for r in ledger_rows() if r["status"] != "pending"])[0]
    assert row["status"] == "dropped"


def test_truncated_stream_is_not_passed_off_as_complete(emulator: Any, sidecar: Any, app_token: str,
                                                        ledger_rows: Any) -> None:
    emulator.configure(faults="truncate=3", reply_tokens=12)
    with httpx2.stream("POST", sidecar.base_url + "/chat/completions", json={**CHAT, "stream": True},
                       headers={"authorization": f"Bearer {app_token}"}) as r:
        raw = b"".join(r.iter_raw())
    assert b"data: [DONE]" not in raw
    last = json.loads(raw.strip().split(b"\n\n")[-1][6:])
    assert last["error"]["code"] == "upstream_incomplete"
    bilingual(last["error"]["message"])
    row = wait_for(lambda: [r for r in ledger_rows() if r["status"] != "pending"])[0]
    assert row["status"] == "dropped" and row["completion_tokens"] > 0


def test_client_disconnect_cancels_upstream_and_settles(emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any) -> None:
    emulator.configure(chunk_delay=0.1, reply_tokens=200)
    started = time.monotonic()
    with httpx2.stream("POST", sidecar.base_url + "/chat/completions", json={**CHAT, "stream": True},
                       headers={"authorization": f"Bearer {app_token}"}) as r:
        events = 0
        for chunk in r.iter_raw():
            events += chunk.count(b"data: {")
            if events >= 3:
                break  # the app's user pressed "stop"
    row = wait_for(lambda: [r for r in ledger_rows() if r["status"] != "pending"], timeout=10)[0]
    assert row["status"] == "cancelled"
    assert 2 <= row["completion_tokens"] < 200  # the first event carries the role, not a token
    # 200 chunks × 0.1 s would take 20 s: the upstream read was cancelled (10 s leaves room for a busy machine)
    assert time.monotonic() - started < 10


def test_an_app_leaving_after_the_streams_head_cancels_it_and_the_console_says_so(
        emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any, caplog: pytest.LogCaptureFixture) -> None:
    """One watcher covers the answer and the whole stream: an app gone between the stream's head and its first
    event (and one gone before any answer) cancels the upstream request, the row reads cancelled, the console
    says which."""
    caplog.set_level(logging.INFO, logger="baicai.sidecar")
    emulator.configure(chunk_delay=0.5, reply_tokens=100)
    started = time.monotonic()
    with httpx2.stream("POST", sidecar.base_url + "/chat/completions", json={**CHAT, "stream": True},
                       headers={"authorization": f"Bearer {app_token}"}) as r:
        assert r.status_code == 200  # the head came; the app leaves before any event
    row = wait_for(lambda: [r for r in ledger_rows() if r["status"] != "pending"], timeout=10)[0]
    assert row["status"] == "cancelled"
    assert time.monotonic() - started < 10  # 100 events x 0.5 s would be 50 s
    assert wait_for(lambda: [rec for rec in caplog.records if "left mid-stream" in rec.getMessage()])

    emulator.configure(chunk_delay=0.0, faults="latency=3")
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(sidecar.base_url + "/chat/completions", json=CHAT, timeout=0.3,
                    headers={"authorization": f"Bearer {app_token}"})
    assert wait_for(lambda: [rec for rec in caplog.records if "left before the answer" in rec.getMessage()])
    assert wait_for(lambda: len([r for r in ledger_rows() if r["status"] == "cancelled"]) == 2, timeout=10)


@pytest.mark.parametrize("style", ["openai", "openai-str", "code-msg", "errcode"])
def test_relay_errors_in_any_envelope_become_openai_errors(emulator: Any, sidecar: Any, app_token: str,
                                                           style: str, ledger_rows: Any) -> None:
    emulator.configure(error_style=style, error_status="200")
    with pytest.raises(openai.NotFoundError) as info:
        client(sidecar, app_token).chat.completions.create(**{**CHAT, "model": "no-such-model"})
    body: dict[str, Any] = info.value.body  # type: ignore[assignment]
    assert body["code"] == "48001" and body["relay_code"] == 48001
    bilingual(body["message"])
    assert "48001" in body["message"] and body["hint"]
    assert ledger_rows()[-1]["relay_code"] == 48001


def test_busy_relay_is_retried_then_reported(emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any, fast_retries: Any) -> None:
    emulator.configure(faults="busy=1")
    with pytest.raises(openai.APIStatusError) as info:
        client(sidecar, app_token).chat.completions.create(**CHAT)
    assert info.value.body["code"] == "-1"  # type: ignore[index]
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(emulator.state.requests) == fast_retries.max_retries + 1
    assert all(r["status"] == "error" and r["relay_code"] == -1 for r in ledger_rows())


def test_too_frequent_is_retried_until_it_passes(emulator: Any, sidecar: Any, app_token: str, ledger_rows: Any) -> None:
    emulator.configure(faults="burst=1")
    c = client(sidecar, app_token)
    c.chat.completions.create(**CHAT)
    # a second request within the same emulator second answers 45011; time moves on while the sidecar backs off
    emulator.clock.freeze()
    policy_sleep = sidecar.proxy.policy

    class Advancing:
        max_retries = policy_sleep.max_retries
        should_retry = policy_sleep.should_retry

        @staticmethod
        def delay(attempt: int, retry_after: float | None = None) -> float:
            emulator.clock.advance(2)
            return 0.0

    sidecar.proxy.policy = Advancing()
    assert c.chat.completions.create(**CHAT).choices[0].message.content
    codes = [r.relay_code for r in emulator.state.requests]
    assert codes[-2:] == [45011, None]
    # one app request, one ledger row: the retried attempt's row is replaced by the attempt that answered
    assert [r["status"] for r in ledger_rows()] == ["ok", "ok"]


def test_local_quota_refusal_reaches_the_app_readably(emulator: Any, sidecar_factory: Any, app_token: str) -> None:
    sc = sidecar_factory(api_key=emulator.free_key, tier="free")
    c = client(sc, app_token)
    c.chat.completions.create(**{**CHAT, "model": "gpt-4-0125-preview"})  # free gpt-4: 1 request per hour
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(**{**CHAT, "model": "gpt-4-0125-preview"})
    response = info.value.response
    assert response.headers["x-baicai-local-quota"] == "1" and int(response.headers["retry-after"]) > 0
    bilingual(info.value.body["message"])  # type: ignore[index]
    assert len(emulator.state.requests) == 1  # refused here, the relay never saw it


def test_a_model_the_tier_may_not_use_is_refused_as_the_relay_would(emulator: Any, sidecar_factory: Any,
                                                                     app_token: str) -> None:
    """403 like the relay's 40050, not a 429: apps show 429 as "slow down", and waiting would not help."""
    sc = sidecar_factory(api_key=emulator.free_key, tier="free")
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(sc, app_token).images.generate(model="dall-e-3", prompt="白菜", size="1024x1024")
    response = info.value.response
    assert response.headers["x-baicai-local-quota"] == "1" and "retry-after" not in response.headers
    bilingual(info.value.body["message"])  # type: ignore[index]
    assert "dall-e-3" in info.value.body["message"]  # type: ignore[index]
    # an image request is not told to use a chat model: no image model is on the free tier
    assert "cannot make images" in info.value.body["message"] and "gpt-3.5" not in info.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError) as info:  # the free tier's gpt-4 is -preview, not gpt-4
        client(sc, app_token).chat.completions.create(**{**CHAT, "model": "gpt-4"})
    body: Any = info.value.body
    assert "gpt-4-0125-preview" in body["message"] and body["alternatives"][0] == "gpt-4-0125-preview"
    assert emulator.state.requests == []


def test_revoked_token_is_cut_off_at_once(sidecar: Any, app_token: str) -> None:
    c = client(sidecar, app_token)
    assert c.models.list().data
    TokenStore().revoke("testapp")
    with pytest.raises(openai.AuthenticationError) as info:
        c.models.list()
    bilingual(info.value.body["message"])  # type: ignore[index]


def test_status_for_the_tui(emulator: Any, sidecar: Any, app_token: str) -> None:
    client(sidecar, app_token).chat.completions.create(**CHAT)
    with pytest.raises(openai.NotFoundError):
        client(sidecar, app_token).chat.completions.create(**{**CHAT, "model": "no-such-model"})
    r = plain_http.get(sidecar.origin + "/sidecar/status", headers={"authorization": f"Bearer {app_token}"})
    status = r.json()
    assert status["upstream"] == emulator.base_url and status["tier"] == "paid"
    assert status["uptime_s"] > 0 and status["requests"] == 2
    assert status["recent_errors"][-1]["status"] == 404
    assert status["windows_error"] is None  # the SDK's quota windows, with the limits of the sidecar's tier
    (gpt35,) = [w for w in status["windows"] if w["family"] == "gpt-3.5" and w["scope"] == "ip"]
    assert gpt35["tier"] == "paid" and gpt35["requests_used"] == 1 and gpt35["requests_limit"] == 1000
    (own,) = [w for w in status["windows"] if w["family"] == "gpt-3.5" and w["scope"] == "key"]  # the key's own
    assert own["key_hint"] == "baicai-…paid" and own["requests_used"] == 1 and own["requests_limit"] == 1000
    assert emulator.paid_key not in r.text
    assert plain_http.get(sidecar.origin + "/sidecar/status").status_code == 401


def test_the_key_never_reaches_a_log_line(emulator: Any, sidecar_factory: Any, app_token: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sc = sidecar_factory()
    c = client(sc, app_token)
    c.chat.completions.create(**CHAT)
    for _chunk in c.chat.completions.create(**CHAT, stream=True):
        pass
    with pytest.raises(openai.APIError):
        c.chat.completions.create(**{**CHAT, "model": "no-such-model"})
    assert caplog.records, "the sidecar does log"
    assert emulator.paid_key not in caplog.text and emulator.paid_key[-12:] not in caplog.text
    assert app_token not in caplog.text


def _raw_http(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """One hand-written HTTP/1.1 request over a real socket (lets a test send what no client library would)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(payload or b"{}")


@pytest.mark.parametrize("case", ["rebinding-host", "empty-host", "foreign-origin", "text-plain", "oversize",
                                  "malformed-json"])
def test_refused_requests_over_a_real_socket_spend_nothing(emulator: Any, sidecar_factory: Any, app_token: str,
                                                           ledger_rows: Any, case: str) -> None:
    sc = sidecar_factory(max_body=4096)
    host = f"127.0.0.1:{sc.port}"
    good = json.dumps(CHAT).encode()
    body, ctype, extra = good, "application/json", ""
    if case == "rebinding-host":
        host = f"attacker.example:{sc.port}"
    elif case == "empty-host":
        host = ""
    elif case == "foreign-origin":
        extra = "Origin: https://attacker.example\n"
    elif case == "text-plain":
        ctype, extra = "text/plain", "Origin: http://localhost:3210\n"
    elif case == "oversize":
        body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    elif case == "malformed-json":
        body = good[:-5]
    head = (f"POST /v1/chat/completions HTTP/1.1\nHost: {host}\nAuthorization: Bearer {app_token}\n"
            f"Content-Type: {ctype}\nContent-Length: {len(body)}\nConnection: close\n{extra}")
    status, answer = _raw_http(sc.port, head, body)
    expected = {"rebinding-host": 421, "empty-host": 400, "foreign-origin": 403, "text-plain": 415,
                "oversize": 413, "malformed-json": 400}[case]
    assert status == expected
    bilingual(answer["error"]["message"])
    assert emulator.state.requests == [] and ledger_rows() == []


def test_read_timeout_is_never_retried(emulator: Any, sidecar_factory: Any, app_token: str) -> None:
    """After the request went out, the relay may bill it: a timeout is reported, not retried."""
    emulator.configure(faults="latency=0.8")
    sc = sidecar_factory(read_timeout=0.3)
    with pytest.raises(openai.APIStatusError) as info:
        client(sc, app_token).chat.completions.create(**CHAT)
    assert info.value.status_code == 504 and info.value.body["code"] == "upstream_timeout"  # type: ignore[index]
    bilingual(info.value.body["message"])  # type: ignore[index]
    # A retry would have been sent (and timed out, so recorded as cancelled) before the 504 came back: once the
    # emulator has recorded the first request, every request the sidecar made is in the records.
    records = emulator.wait_for_requests(1)
    assert sc.proxy.stats.retries == 0 and len(records) == 1, [(r.outcome, r.status) for r in records]


@pytest.mark.slow  # runs `baicai sidecar` in a subprocess
def test_cli_prints_what_to_paste_and_it_works(emulator: Any, baicai_home: Any) -> None:
    import os
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "BAICAI_API_KEY": emulator.paid_key, "BAICAI_BASE_URL": emulator.base_url,
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "baicai_sdk.cli", "sidecar", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        banner = "".join(lines)
        token = TokenStore().default_token()
        assert f"http://127.0.0.1:{port}/v1" in banner and token in banner
        assert emulator.paid_key not in banner and emulator.paid_key[-4:] in banner  # masked
        reply = wait_for(lambda: _try_chat(f"http://127.0.0.1:{port}/v1", token), timeout=10)
        assert reply.choices[0].message.content
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert emulator.paid_key not in err


def _try_chat(base_url: str, token: str) -> Any:
    try:
        return plain_http.openai_client(base_url=base_url, api_key=token, max_retries=0).chat.completions.create(**CHAT)
    except openai.APIConnectionError:
        return None


def test_an_upstream_error_quoting_the_real_key_reaches_the_app_masked(sidecar_factory: Any, app_token: str) -> None:
    """Relays (like OpenAI) may echo the key they rejected: the app, which holds only a local token, and the
    status page must never see it."""
    import httpx2

    from baicai_sdk import AsyncMeteredTransport

    real_key = "baicai-ECHOEDKEY000000000000000000wxyz"

    async def upstream(request: httpx2.Request) -> httpx2.Response:
        quoted = request.headers["authorization"][7:]
        if request.url.path.endswith("/models"):
            return httpx2.Response(401, json={"error": {"message": f"Incorrect API key provided: {quoted}",
                                                        "type": "invalid_request_error", "code": "invalid_api_key"}})
        return httpx2.Response(200, json={"code": 40001, "msg": f"无效的令牌{quoted}"})

    server = sidecar_factory(api_key=real_key,
                             transport=AsyncMeteredTransport(httpx2.MockTransport(upstream), source="sidecar"))
    with plain_http.client(base_url=server.base_url, headers={"Authorization": f"Bearer {app_token}"}) as client:
        models = client.get("/models")
        chat = client.post("/chat/completions", json={"model": "gpt-3.5-turbo",
                                                      "messages": [{"role": "user", "content": "hi"}]})
        status = client.get(server.url + "/sidecar/status")
    assert models.status_code == 401 and chat.status_code == 401
    for text in (models.text, chat.text, status.text):
        assert real_key not in text
    assert "baicai-…wxyz" in models.text and "baicai-…wxyz" in chat.text
