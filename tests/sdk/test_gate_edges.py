"""The quota gate and the ledger where traffic leaves the happy path (issue 13), end to end against the emulator.

Each test names the numbered case of the issue it covers and shows what a user would want: a paid key never
refused because of a free key's window, no relay rules against another server, rows that say what is known.
"""

from __future__ import annotations

import concurrent.futures
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from baicai_sdk import Baicai
from baicai_sdk._errors import FreeGpt35RequestLimit, QuotaExceeded
from baicai_sdk._meter import Meter, describe_request
from baicai_sdk._paths import ledger_path
from baicai_sdk._quota import Decision
from baicai_sdk._serving import BackgroundServer
from baicai_sdk._usage import UsageStore
from baicai_sdk.testing import EmulatorConfig, RelayEmulator


def _ask(client: Baicai, model: str = "gpt-3.5-turbo", text: str = "hi", **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)


def _rows() -> list[sqlite3.Row]:
    conn = sqlite3.connect(ledger_path())
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM requests ORDER BY id"))
    finally:
        conn.close()


def _settled_records(emulator: Any, count: int) -> list[Any]:
    deadline = time.monotonic() + 3.0
    records = emulator.state.relay_requests()
    while time.monotonic() < deadline and (len(records) < count or not all(r.status for r in records)):
        time.sleep(0.01)
        records = emulator.state.relay_requests()
    return records


# ---- case 1: windows per key and per IP, each by its own tier's limits -----------------------------------------

def test_paid_key_is_not_refused_because_a_free_key_filled_its_window(emulator: Any) -> None:
    with httpx2.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.free_key}"}) as raw:
        for _ in range(59):  # elsewhere (not through baicai): the ledger knows nothing of these
            raw.post("/chat/completions", json={"model": "gpt-3.5-turbo", "max_tokens": 5,
                                                "messages": [{"role": "user", "content": "x"}]}).raise_for_status()
    free = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="raise")
    _ask(free, max_tokens=5)
    with pytest.raises(FreeGpt35RequestLimit):
        _ask(free, max_tokens=5)  # the relay: 40020 for the free key
    with pytest.raises(QuotaExceeded):
        _ask(free, max_tokens=5)  # and now the gate knows, for that key

    paid = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, quota="raise", tier="paid")
    for _ in range(3):
        _ask(paid, max_tokens=5)  # the paid key's limit is 1,000: never lowered by a free key's 40020
    records = _settled_records(emulator, 64)
    assert [r.relay_code for r in records if r.key_tier == "paid"] == [None, None, None]

    windows = UsageStore().windows(tier="paid", per_key=True)
    ip = {w.tier: w for w in windows if w.scope == "ip" and w.family == "gpt-3.5"}  # by each tier in use
    assert (ip["paid"].requests_used, ip["paid"].requests_limit, ip["paid"].exhausted_until) == (4, 1000, None)
    assert (ip["free"].requests_used, ip["free"].requests_limit) == (4, 60)  # 40020: free, uncounted
    assert ip["free"].exhausted_until is not None
    keys = {w.key_hint: w for w in windows if w.scope == "key" and w.family == "gpt-3.5"}
    free_row, paid_row = keys["baicai-…free"], keys["baicai-…paid"]
    assert (free_row.tier, free_row.requests_used, free_row.requests_limit) == ("free", 1, 60)
    assert free_row.exhausted_until is not None
    assert (paid_row.tier, paid_row.requests_used, paid_row.requests_limit) == ("paid", 3, 1000)
    assert paid_row.exhausted_until is None


def test_usage_windows_shows_each_key_and_the_ip(emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from baicai_sdk.cli import main

    # (In this order: the free key's gpt-4 window counts the IP's requests too — after the paid key's, the relay
    # would refuse it, and so does the gate.)
    _ask(Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free"), model="gpt-4-0125-preview",
         max_tokens=5)
    _ask(Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid"), model="gpt-4", max_tokens=5)
    assert main(["usage", "windows"]) == 0
    out = capsys.readouterr().out
    assert "this IP" in out and "each key" in out
    lines = out.splitlines()
    paid_line = next(line for line in lines if "baicai-…paid" in line and "gpt-4" in line)
    free_line = next(line for line in lines if "baicai-…free" in line and "gpt-4" in line)
    assert "paid" in paid_line and "1/200" in paid_line  # not "2/1" under the free tier
    assert "free" in free_line and "1/1" in free_line


# ---- case 2: relay rules only where the relay is --------------------------------------------------------------

@pytest.fixture
def other_server() -> Iterator[str]:
    """An OpenAI-compatible server that is not the relay (the emulator's answers without its marker)."""
    app = RelayEmulator(EmulatorConfig(keys={"dummy": "paid"}))

    async def unmarked(scope: Any, receive: Any, send: Any) -> None:
        async def strip(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [h for h in message.get("headers", [])
                                                   if h[0] != b"x-baicai-emulator"]}
            await send(message)

        await app(scope, receive, strip)

    server = BackgroundServer(unmarked, "127.0.0.1", 0, lifespan="off", http="h11").start()
    try:
        yield f"{server.url}/v1"
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:.*baicai-")
def test_another_openai_compatible_server_is_not_gated_but_recorded(other_server: str) -> None:
    client = Baicai(api_key="dummy", base_url=other_server, quota="raise")
    for _ in range(2):  # free gpt-4 would allow 1 an hour at the relay: irrelevant here
        _ask(client, model="gpt-4-0125-preview", max_tokens=5)

    def one(_: int) -> str:
        try:
            for _chunk in _ask(client, max_tokens=5, stream=True):
                pass
            return "ok"
        except QuotaExceeded:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(one, range(20)))
    assert outcomes.count("refused") == 0
    rows = _rows()
    assert len(rows) == 22 and {r["status"] for r in rows} == {"ok"}
    assert {r["counted"] for r in rows} == {2}, "recorded, but in no relay window"
    assert all(w.requests_used == 0 for w in UsageStore().windows())
    meter = Meter()
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []})
    decision = meter.decide("dummy", info, url=other_server)
    assert decision.allowed and not decision.relay_rules and "not the BaicaiGPT relay" in decision.notes[0]
    assert meter.relay_rules_for("https://api.baicaigpt.com/v1")[0]


@pytest.mark.filterwarnings("ignore:.*baicai-")
def test_relay_rules_can_be_forced_for_another_address(other_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_RELAY_RULES", "on")
    client = Baicai(api_key="dummy", base_url=other_server, quota="raise", tier="free")
    _ask(client, model="gpt-4-0125-preview", max_tokens=5)
    with pytest.raises(QuotaExceeded) as caught:
        _ask(client, model="gpt-4-0125-preview", max_tokens=5)
    assert "relay's hourly limits" in str(caught.value)


# ---- retries: one request, one row — never at the cost of spend or window -----------------------------------

def test_a_retry_never_erases_a_stream_error_the_relay_counted_and_billed(emulator: Any) -> None:
    meter = Meter(tier="paid")
    info = describe_request("/v1/chat/completions", {"model": "gpt-4", "stream": True, "max_tokens": 50,
                                                     "messages": [{"role": "user", "content": "hi"}]})
    began = meter.reserve(emulator.paid_key, info, url=emulator.base_url)
    refused = meter.reserve(emulator.paid_key, info, url=emulator.base_url)
    assert not isinstance(began, Decision) and not isinstance(refused, Decision)
    # An error event after three chunks of answer: counted and billed for what was sent.
    began.settle(status="error", relay_code=-1, http_status=200, completion_tokens=3, stream=True, counted=True)
    # A busy answer before any output: neither counted nor billed.
    refused.settle(status="error", relay_code=-1, http_status=503, prompt_tokens=0, completion_tokens=0, images=0)
    meter.forget_failed(began.id)
    meter.forget_failed(refused.id)
    (row,) = _rows()
    assert row["id"] == began.id and row["counted"] == 1 and row["cost"] > 0


# ---- an unknown tier: never refused on a limit only the free tier has --------------------------------------------

def _sixty_in_the_ledger(key: str, url: str) -> None:
    meter = Meter()
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "max_tokens": 5,
                                                     "messages": [{"role": "user", "content": "x"}]})
    for _ in range(60):
        reservation = meter.reserve(key, info, url=url)
        assert not isinstance(reservation, Decision)
        reservation.settle(prompt_tokens=8, completion_tokens=5)


def test_an_unknown_tier_paid_key_is_not_refused_past_the_free_limit(emulator: Any) -> None:
    _sixty_in_the_ledger(emulator.paid_key, emulator.base_url)
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, quota="raise")
    for _ in range(3):
        _ask(client, max_tokens=5)  # the 61st–63rd: a paid key's limit is 1,000
    assert [r.relay_code for r in emulator.state.relay_requests()] == [None] * 3


def test_an_unknown_tier_free_key_learns_its_tier_from_the_relay_then_is_gated(emulator: Any) -> None:
    with httpx2.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.free_key}"}) as raw:
        for _ in range(60):
            raw.post("/chat/completions", json={"model": "gpt-3.5-turbo", "max_tokens": 5,
                                                "messages": [{"role": "user", "content": "x"}]}).raise_for_status()
    _sixty_in_the_ledger(emulator.free_key, emulator.base_url)
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="raise", max_retries=0)
    with pytest.raises(FreeGpt35RequestLimit):
        _ask(client, max_tokens=5)  # the relay says: free, and full (a refusal costs no quota)
    with pytest.raises(QuotaExceeded) as caught:
        _ask(client, max_tokens=5)  # from now on the gate knows
    assert "free tier" in str(caught.value) and len(emulator.state.relay_requests()) == 61
    assert Meter().tier_for(emulator.free_key) == ("free", "learned")


def test_the_ip_window_is_shown_by_each_tier_that_uses_it(emulator: Any) -> None:
    free = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free")
    paid = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid")
    for client in (free, free, paid):
        _ask(client, max_tokens=5)
    windows = UsageStore().windows(per_key=True)  # each key's tier: the one its rows were judged by
    ip = {w.tier: w for w in windows if w.scope == "ip" and w.family == "gpt-3.5"}
    # One count (every local key's 3 requests), judged by each asking key's tier — not free limits for all.
    assert {t: (w.requests_used, w.requests_limit) for t, w in ip.items()} == {"free": (3, 60), "paid": (3, 1000)}


def _ledger_files_open() -> int:
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return sum(1 for name in names if name.startswith(str(ledger_path())))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_hourly_limit_errors_do_not_leave_ledger_files_open(emulator: Any) -> None:
    with httpx2.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.free_key}"}) as raw:
        for _ in range(60):
            raw.post("/chat/completions", json={"model": "gpt-3.5-turbo", "max_tokens": 5,
                                                "messages": [{"role": "user", "content": "x"}]}).raise_for_status()
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="off", max_retries=0)
    opened = []
    for _ in range(10):
        with pytest.raises(FreeGpt35RequestLimit) as caught:
            _ask(client, max_tokens=5)
        assert caught.value.retry_at is not None  # from the ledger's window
        opened.append(_ledger_files_open())
    assert opened[-1] <= opened[0], opened  # each error's ledger look-up closes what it opened


def test_the_sdks_own_retries_keep_a_row_per_attempt_marked_and_count_one_request(emulator: Any) -> None:
    import random

    # A seed whose first "busy" roll fails the request and whose second lets it through.
    seed = next(s for s in range(1000) if (lambda r: r.random() < 0.5 <= r.random())(random.Random(s)))
    emulator.configure(faults=f"busy=0.5,seed={seed}")
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", max_retries=2)
    _ask(client, max_tokens=5)
    records = _settled_records(emulator, 2)
    assert [r.relay_code for r in records] == [-1, None]
    rows = _rows()
    assert [(r["attempt"], r["status"], r["counted"]) for r in rows] == [(0, "error", 0), (1, "ok", 1)]
    totals = UsageStore().summary()
    assert (totals.requests, totals.retries, totals.errors) == (1, 1, 1)  # one app request, retried once
    assert totals.cost_cny == pytest.approx(sum(r.cost for r in records)) and totals.cost_cny > 0
