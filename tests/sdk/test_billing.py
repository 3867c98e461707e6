"""Balance: measured from the emulator's billing endpoints, estimated from the ledger otherwise, always labelled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from baicai_sdk._billing import Balance, balance, record_topup
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk.testing import wait_until


def test_measured_from_the_relay(emulator: Any, tmp_path: Path) -> None:
    emulator.state.set_balance(emulator.paid_key, 42.5)
    b = balance((emulator.paid_key, emulator.base_url), ledger_path=tmp_path / "l.db")
    assert isinstance(b, Balance)
    assert b.measured and b.source == "relay" and b.amount_cny == pytest.approx(42.5)
    assert "CNY" in b.detail and b.label.startswith("实测")
    paths = [r.path for r in emulator.state.requests]
    assert any(p.endswith("/dashboard/billing/subscription") for p in paths)
    assert all(emulator.paid_key not in json.dumps(b.as_dict(), ensure_ascii=False) for _ in [0])


def test_measured_after_spending(emulator: Any, tmp_path: Path) -> None:
    emulator.state.set_balance(emulator.paid_key, 10.0)
    with httpx2.Client() as client:
        r = client.post(f"{emulator.base_url}/chat/completions", headers={"Authorization": f"Bearer {emulator.paid_key}"},
                        json={"model": "gpt-4", "messages": [{"role": "user", "content": "你好" * 50}]})
        assert r.status_code == 200
    # The emulator books the spend just after it has sent the answer: give it a moment.
    spent = wait_until(lambda: emulator.state.spent(emulator.paid_key), what="the emulator to book the spend")
    b = balance((emulator.paid_key, emulator.base_url), ledger_path=tmp_path / "l.db")
    assert b.measured and b.amount_cny == pytest.approx(10.0 - spent, abs=1e-4)
    assert b.used_cny == pytest.approx(spent, abs=1e-4)


def _mock(handler: Any) -> httpx2.MockTransport:
    return httpx2.MockTransport(handler)


def test_falls_back_to_topups_minus_ledger_spend(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    t = [1_800_000_000.0]
    record_topup(20, note="支付宝", ledger_path=path, clock=lambda: t[0])
    meter = Meter(ledger_path=path, clock=lambda: t[0] + 10, tier="paid")
    r = meter.reserve("baicai-x", describe_request("/v1/chat/completions", {"model": "gpt-4", "messages": []}))
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=1000, completion_tokens=1000)  # 1.0 CNY
    r2 = meter.reserve("baicai-x", describe_request("/v1/chat/completions", {"model": "mystery", "messages": []}))
    assert isinstance(r2, Reservation)
    r2.settle(prompt_tokens=5, completion_tokens=5)

    def not_found(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(404, json={"error": {"message": "Invalid URL", "type": "invalid_request_error"}})

    b = balance(("baicai-x", "https://relay.example/v1"), ledger_path=path, transport=_mock(not_found))
    assert not b.measured and b.source == "ledger" and b.amount_cny == pytest.approx(19.0)
    assert "HTTP 404" in b.detail and "estimated" in b.detail and "1 requests of unpriced" in b.detail
    assert b.label.startswith("估算")


@pytest.mark.parametrize(
    "answer",
    [
        lambda req: httpx2.Response(200, json={"errcode": 48004, "errmsg": "API 接口暂未支持"}),
        lambda req: httpx2.Response(200, text="<html>shop</html>"),
        lambda req: httpx2.Response(200, json={"object": "billing_subscription"}),
        lambda req: (_ for _ in ()).throw(httpx2.ConnectError("refused", request=req)),
    ],
)
def test_odd_answers_are_estimated_not_raised(tmp_path: Path, answer: Any) -> None:
    b = balance(("baicai-x", "https://relay.example/v1"), ledger_path=tmp_path / "l.db", transport=_mock(answer))
    assert not b.measured and b.source == "none" and b.amount_cny is None
    assert "baicai usage topup" in b.detail


def test_string_numbers_and_no_v1_path(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.path)
        assert request.headers["authorization"] == "Bearer baicai-x"
        if request.url.path.startswith("/v1/"):
            return httpx2.Response(404)
        if request.url.path.endswith("/subscription"):
            return httpx2.Response(200, json={"hard_limit_usd": "100.5"})
        return httpx2.Response(200, json={"total_usage": 1234})  # hundredths
    b = balance(("baicai-x", "https://relay.example/v1"), ledger_path=tmp_path / "l.db", transport=_mock(handler))
    assert b.measured and b.amount_cny == pytest.approx(100.5 - 12.34)
    assert seen[0] == "/v1/dashboard/billing/subscription" and "/dashboard/billing/usage" in seen


class _Recorder:
    """A small ASGI server on a real socket: answers every request with ``status`` (and ``location``), and keeps
    the request lines and Authorization headers it saw."""

    def __init__(self, status: int = 200, body: bytes = b"{}", location: str | None = None) -> None:
        from baicai_sdk.integration import BackgroundServer

        self.status, self.body, self.location = status, body, location
        self.seen: list[tuple[str, str]] = []
        self.server = BackgroundServer(self, name="billing-stub").start()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["path"], headers.get("authorization", "")))
        extra = [(b"location", self.location.encode())] if self.location else []
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json"), *extra]})
        await send({"type": "http.response.body", "body": self.body})

    def close(self) -> None:
        self.server.stop()


def test_a_redirect_is_not_followed_and_the_key_stays_home(tmp_path: Path) -> None:
    """The billing call (the standard library's client) must not carry the key to wherever a 302 points."""
    elsewhere = _Recorder()
    redirecting = _Recorder(status=302, location=f"{elsewhere.server.url}/steal")
    try:
        b = balance(("baicai-redirectkey00000000000000abcd", f"{redirecting.server.url}/v1"),
                    ledger_path=tmp_path / "l.db")
    finally:
        redirecting.close()
        elsewhere.close()
    assert not b.measured and "HTTP 302" in b.detail
    assert redirecting.seen and redirecting.seen[0] == ("/v1/dashboard/billing/subscription",
                                                        "Bearer baicai-redirectkey00000000000000abcd")
    assert elsewhere.seen == []


def test_billing_goes_through_the_environment_proxy(emulator: Any, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Users in China often need HTTP(S)_PROXY: the billing call takes the route every SDK request takes."""
    emulator.state.set_balance(emulator.paid_key, 7.0)
    port = int(emulator.base_url.split(":")[2].split("/")[0])
    proxy = _Recorder(status=200, body=json.dumps({"hard_limit_usd": 7.0}).encode())
    monkeypatch.setenv("HTTP_PROXY", proxy.server.url)
    monkeypatch.setenv("NO_PROXY", "")
    try:
        b = balance((emulator.paid_key, f"http://localhost:{port}/v1"), ledger_path=tmp_path / "l.db")
    finally:
        proxy.close()
    # The stub proxy answered the subscription itself and then an empty usage: proof the requests went to it.
    assert proxy.seen and all(auth == f"Bearer {emulator.paid_key}" for _, auth in proxy.seen)
    assert not b.measured and "no total_usage" in b.detail
    monkeypatch.setenv("NO_PROXY", "localhost")  # … and NO_PROXY is honoured: straight to the emulator
    assert balance((emulator.paid_key, f"http://localhost:{port}/v1"), ledger_path=tmp_path / "l.db").measured


def test_an_unreachable_relay_or_a_socks_proxy_without_socksio_is_an_estimate(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    for scheme in ("http", "https"):
        b = balance(("baicai-x", f"{scheme}://127.0.0.1:{closed}/v1"), ledger_path=tmp_path / "l.db")
        assert not b.measured and "ConnectionRefusedError" in b.detail, b.detail
    monkeypatch.setenv("ALL_PROXY", f"socks5://127.0.0.1:{closed}")
    monkeypatch.setenv("NO_PROXY", "")
    b = balance(("baicai-x", "http://relay.invalid/v1"), ledger_path=tmp_path / "l.db")  # never a traceback
    assert not b.measured and ("socksio is needed for a SOCKS proxy" in b.detail or "ConnectError" in b.detail)
