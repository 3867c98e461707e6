"""The quota gate and the ledger, end to end: Baicai → MeteredTransport → real socket → emulator.

What the accounting issue promises a free-key user: the request that would break the hour is stopped on this
machine and never reaches the relay; several processes together never over-spend; and the ledger's spend is the
relay's bill to the fen.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from baicai_sdk import Baicai
from baicai_sdk._errors import FreeGpt35RequestLimit, QuotaExceeded
from baicai_sdk._meter import Meter
from baicai_sdk._quota import describe_request
from baicai_sdk._transport import LOCAL_QUOTA_HEADER
from baicai_sdk._usage import UsageStore


def _relay_requests(emulator, model_prefix: str = "") -> list:
    emulator.wait_for_requests(0)  # the emulator may record just after answering
    return [r for r in emulator.state.relay_requests() if (r.model or "").startswith(model_prefix)]


def _ask(client: Baicai, model: str = "gpt-3.5-turbo", text: str = "hi", **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)


def test_sixty_first_gpt35_request_is_refused_locally(emulator) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    for _ in range(60):
        _ask(client, max_tokens=5)
    with pytest.raises(QuotaExceeded) as caught:
        _ask(client, max_tokens=5)
    error = caught.value
    assert error.retry_at is not None and error.retry_at > time.time() + 3000
    assert "wait for the hourly window" in error.hint
    assert "60/60" in str(error) and "gpt-3.5" in str(error)
    assert len(_relay_requests(emulator, "gpt-3.5")) == 60  # the 61st never left this machine
    assert not any(r.relay_code for r in _relay_requests(emulator))


def test_free_token_budget_is_never_overspent(emulator) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    long_text = "白菜 cabbage " * 300  # ~1,200 prompt tokens each
    sent = 0
    with pytest.raises(QuotaExceeded) as caught:
        for _ in range(20):
            _ask(client, text=long_text, max_tokens=200)
            sent += 1
    assert "tokens" in str(caught.value).lower()
    records = _relay_requests(emulator, "gpt-3.5")
    assert len(records) == sent >= 5
    assert not any(r.relay_code for r in records), "the relay never had to refuse: we stopped first"
    used = sum(r.prompt_tokens + r.completion_tokens for r in records)
    assert used <= 10_000
    store_totals = UsageStore().summary()
    assert store_totals.prompt_tokens + store_totals.completion_tokens == used


def test_free_gpt4_allows_one_request_an_hour(emulator) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    _ask(client, model="gpt-4-0125-preview", max_tokens=50)
    with pytest.raises(QuotaExceeded):
        _ask(client, model="gpt-4-0125-preview", max_tokens=50)
    assert len(_relay_requests(emulator, "gpt-4")) == 1


def test_request_bigger_than_the_hourly_token_budget_is_refused_as_never(emulator) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="wait", max_wait=3600)
    started = time.monotonic()
    with pytest.raises(QuotaExceeded) as caught:
        _ask(client, model="gpt-4-0125-preview", text="word " * 1400, max_tokens=10)
    assert time.monotonic() - started < 5, "a request that can never fit is refused at once, not waited for"
    assert caught.value.retry_at is None
    assert "waiting will not help" in caught.value.hint
    assert _relay_requests(emulator, "gpt-4") == []


@pytest.mark.slow  # waits ~4 s for the window, on purpose
def test_wait_mode_sleeps_until_the_sliding_window_frees(emulator) -> None:
    # 60 requests recorded 3596 s ago by another process: the window frees about 4 s from now, and at least ~2 s
    # after the 60 rows are written even on a busy machine.
    recorded_at = time.time() - 3596
    past = Meter(source="other-script", clock=lambda: recorded_at)
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "max_tokens": 5,
                                                     "messages": [{"role": "user", "content": "hi"}]})
    for _ in range(60):
        reservation = past.reserve(emulator.free_key, info)
        reservation.settle(prompt_tokens=8, completion_tokens=5)  # type: ignore[union-attr]
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="wait", max_wait=20)
    frees_in = recorded_at + 3600 - time.time()  # measured now, not assumed: writing the rows took its own time
    started = time.monotonic()
    _ask(client, max_tokens=5)
    waited = time.monotonic() - started
    assert frees_in > 0.5, "writing 60 rows took longer than the window left to wait"
    assert frees_in - 0.25 < waited < frees_in + 5, (frees_in, waited)
    raising = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    for _ in range(59):
        _ask(raising, max_tokens=5)
    with pytest.raises(QuotaExceeded):
        _ask(raising, max_tokens=5)


def test_relay_refusal_the_ledger_did_not_predict_makes_the_gate_conservative(emulator) -> None:
    """Another machine on the same IP used the budget: the relay answers 40020, and we stop sending."""
    import httpx2

    with httpx2.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.free_key}"}) as raw:
        for _ in range(59):  # not through baicai: the ledger knows nothing of these
            raw.post("/chat/completions", json={"model": "gpt-3.5-turbo", "max_tokens": 5,
                                                "messages": [{"role": "user", "content": "x"}]}).raise_for_status()
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    _ask(client, max_tokens=5)
    with pytest.raises(FreeGpt35RequestLimit) as caught:
        _ask(client, max_tokens=5)
    assert caught.value.relay_code == 40020 and caught.value.tier == "free"
    before = len(_relay_requests(emulator))
    with pytest.raises(QuotaExceeded):
        _ask(client, max_tokens=5)
    assert len(_relay_requests(emulator)) == before, "after the surprise the gate stops us locally"


@pytest.mark.slow  # four processes
def test_four_processes_never_overspend_the_window(emulator, baicai_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from baicai_sdk import Baicai
        from baicai_sdk._errors import QuotaExceeded
        client = Baicai(api_key={emulator.free_key!r}, base_url={emulator.base_url!r}, tier="free", quota="raise")
        ok = 0
        for _ in range(40):
            try:
                client.chat.completions.create(model="gpt-3.5-turbo", max_tokens=5,
                                               messages=[{{"role": "user", "content": "hi"}}])
                ok += 1
            except QuotaExceeded:
                break
        print(ok)
    """))
    workers = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    sent = [int(w.communicate(timeout=120)[0].strip()) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert sum(sent) == 60
    records = _relay_requests(emulator, "gpt-3.5")
    assert len(records) == 60 and not any(r.relay_code for r in records)


def test_ledger_spend_equals_the_relay_bill_to_the_fen(emulator) -> None:
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid")
    for i in range(5):
        _ask(client, model="gpt-4", text=f"question {i} 问题", max_tokens=40)
    stream = _ask(client, model="gpt-3.5-turbo-16k", text="stream it", stream=True)
    for _ in stream:
        pass
    client.images.generate(model="dall-e-3", prompt="cabbage", size="1792x1024", quality="hd")
    client.images.generate(model="dall-e-2", prompt="cabbage", size="256x256", n=2)
    ledger = UsageStore().summary()
    relay_bill = emulator.state.spent(emulator.paid_key)
    assert ledger.cost_cny is not None
    assert round(ledger.cost_cny, 2) == round(relay_bill, 2)
    assert abs(ledger.cost_cny - relay_bill) < 1e-9


def test_quota_off_records_but_never_blocks(emulator) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="off")
    _ask(client, model="gpt-4-0125-preview", max_tokens=5)
    with pytest.raises(Exception) as caught:  # the relay itself refuses the second: 40021
        _ask(client, model="gpt-4-0125-preview", max_tokens=5)
    assert getattr(caught.value, "relay_code", None) == 40021
    assert UsageStore().count() == 2


def test_local_refusal_is_an_openai_shaped_429_for_any_client(emulator) -> None:
    """Third-party code on plain httpx2 (AutoGen, LangChain…) gets the same gate through http_client()."""
    from baicai_sdk._transport import http_client

    with http_client(quota="raise", tier="free") as raw:
        headers = {"Authorization": f"Bearer {emulator.free_key}"}
        body = {"model": "gpt-4-0125-preview", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        assert raw.post(f"{emulator.base_url}/chat/completions", json=body, headers=headers).status_code == 200
        refused = raw.post(f"{emulator.base_url}/chat/completions", json=body, headers=headers)
    assert refused.status_code == 429
    assert refused.headers[LOCAL_QUOTA_HEADER] == "1" and refused.headers["x-should-retry"] == "false"
    assert int(refused.headers["retry-after"]) > 3000
    error = refused.json()["error"]
    assert error["type"] == "baicai_local_quota" and "gpt-4" in error["message"] and " / " in error["message"]


def test_default_transport_honours_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx2 drops HTTP(S)_PROXY once a transport is given; ours routes by it, NO_PROXY included."""
    from baicai_sdk._transport import env_proxy_for

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert env_proxy_for("https://api.baicaigpt.com/v1/models") == "http://proxy.example:3128"
    assert env_proxy_for("http://127.0.0.1:8300/v1/models") is None


def test_the_environment_proxy_follows_each_change_of_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables are compared per request (not read through os.environ.get): set, changed, lower-case, a
    NO_PROXY added or removed, unset — each is seen by the next request, and so is a replaced os.environ."""
    import os

    from baicai_sdk._transport import env_proxy_for

    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
                 "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    url = "https://api.baicaigpt.com/v1/models"
    assert env_proxy_for(url) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://one.example:3128")
    assert env_proxy_for(url) == "http://one.example:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://two.example:3128")
    assert env_proxy_for(url) == "http://two.example:3128"
    monkeypatch.setenv("no_proxy", "api.baicaigpt.com")
    assert env_proxy_for(url) is None
    monkeypatch.delenv("no_proxy")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("all_proxy", "http://three.example:3128")
    assert env_proxy_for(url) == "http://three.example:3128"
    monkeypatch.setattr(os, "environ", {"HTTPS_PROXY": "http://four.example:3128"})
    assert env_proxy_for(url) == "http://four.example:3128"


def test_http_client_reaches_the_relay_through_the_environment_proxy(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain-HTTP forward proxy on loopback: the request must go through it, not around it."""
    import socket
    import threading

    from baicai_sdk._transport import http_client

    seen: list[bytes] = []
    upstream_port = int(emulator.base_url.split(":")[2].split("/")[0])
    listener = socket.create_server(("127.0.0.1", 0))
    proxy_port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        with conn, socket.create_connection(("127.0.0.1", upstream_port)) as up:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            seen.append(head.split(b"\r\n")[0])
            first, rest = head.split(b"\r\n", 1)
            method, target, version = first.split(b" ")
            path = b"/" + target.split(b"/", 3)[3]  # absolute-form URI -> origin-form
            up.sendall(b" ".join([method, path, version]) + b"\r\n" + rest.replace(b"keep-alive", b"close"))
            while chunk := up.recv(65536):
                conn.sendall(chunk)

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    # The emulator is on 127.0.0.1, which NO_PROXY exempts; address it as "localhost" and exempt nothing.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.setenv("NO_PROXY", "")
    url = emulator.base_url.replace("127.0.0.1", "localhost") + "/models"
    with http_client() as client:
        response = client.get(url, headers={"Authorization": f"Bearer {emulator.free_key}"})
    thread.join(5)
    listener.close()
    assert response.status_code == 200 and response.json()["object"] == "list"
    assert seen and seen[0].startswith(b"GET http://localhost:")


def test_a_configured_free_tier_asking_for_dalle_gets_the_tier_hint(emulator) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    with pytest.raises(QuotaExceeded) as caught:
        client.images.generate(model="dall-e-3", prompt="a cabbage", size="1024x1024")
    assert caught.value.retry_at is None and "dall-e-3" in str(caught.value)
    assert "max_tokens" not in caught.value.hint and "top up" in caught.value.hint
    assert not _relay_requests(emulator, "dall-e"), "refused on this machine, never sent"
