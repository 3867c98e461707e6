"""Every ledger row says what is known (issue 13, cases 3–10), compared with what the emulator billed.

Streams closed early, relay errors inside a stream, timeouts after sending, killed processes, in-flight
reservations, the window's edge, tier and price, reports in the user's zone and counts without ``usage``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from baicai_sdk import Baicai
from baicai_sdk._errors import QuotaExceeded
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._paths import ledger_path
from baicai_sdk._quota import Decision
from baicai_sdk._usage import UsageStore
from baicai_sdk.testing import wait_until


def _ask(client: Baicai, model: str = "gpt-3.5-turbo", text: str = "hi", **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)


def _rows(where: str = "1") -> list[sqlite3.Row]:
    conn = sqlite3.connect(ledger_path())
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(f"SELECT * FROM requests WHERE {where} ORDER BY id"))
    finally:
        conn.close()


def _billed(emulator: Any, count: int, model: str) -> list[Any]:
    """The emulator's records for ``model``, once ``count`` of them have their final figures."""
    deadline = time.monotonic() + 5.0
    while True:
        records = [r for r in emulator.state.relay_requests() if r.model == model]
        if (len(records) >= count and all(r.status for r in records)) or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def _settle_wait(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


# ---- case 3: streams closed early ------------------------------------------------------------------------------

def test_streams_closed_early_are_booked_as_what_the_relay_billed_within_bounds(emulator: Any) -> None:
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid")
    for i in range(5):  # this machine's own history of gpt-4 answers: what a typical one needs
        _ask(client, model="gpt-4", text=f"seed {i}")
    for i in range(10):
        stream = _ask(client, model="gpt-4", text=f"stream {i}", stream=True)
        for n, _chunk in enumerate(stream):
            if n == 1:
                break
        stream.close()
    _settle_wait(lambda: len(_rows("status = 'cancelled'")) == 10)
    cancelled = _rows("status = 'cancelled'")
    assert len(cancelled) == 10 and {r["measured"] for r in cancelled} == {0}
    assert all("closed early" in r["estimate_reason"] for r in cancelled)
    bill = sum(r.cost for r in _billed(emulator, 15, "gpt-4")[5:])
    low, high, point = (sum(r[c] for r in cancelled) for c in ("cost_low", "cost_high", "cost"))
    assert low < bill <= high, (low, bill, high)
    # The relay generates until it notices the close: usually the whole (typical) answer. What was read (the low
    # end, the old booking) was under half of it.
    assert point == pytest.approx(bill, rel=0.15) and low < 0.6 * bill
    totals = UsageStore().summary()
    assert totals.cost_estimated == pytest.approx(point) and totals.cost_low < totals.cost_high


def test_emulator_bills_what_it_generated_until_it_noticed_the_disconnect(emulator: Any) -> None:
    emulator.configure(chunk_delay=0.05, reply_tokens=60)
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid")
    stream = _ask(client, model="gpt-4", stream=True)
    for n, _chunk in enumerate(stream):
        if n == 2:
            break
    stream.close()
    (record,) = _billed(emulator, 1, "gpt-4")
    _settle_wait(lambda: _billed(emulator, 1, "gpt-4")[0].outcome == "disconnected")
    record = _billed(emulator, 1, "gpt-4")[0]
    assert record.outcome == "disconnected" and 2 <= record.completion_tokens < 60
    (row,) = _rows()
    assert row["status"] == "cancelled"
    assert row["completion_low"] <= record.completion_tokens <= row["completion_high"]
    assert row["cost_low"] <= record.cost <= row["cost_high"]


# ---- case 4: relay error inside a stream -----------------------------------------------------------------------

def test_relay_error_inside_a_stream_is_billed_for_what_was_sent_and_counted(emulator: Any) -> None:
    emulator.configure(faults="stream_error=3", reply_tokens=40)
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", max_retries=0)
    with pytest.raises(openai.APIError):
        for _chunk in _ask(client, model="gpt-4", stream=True):
            pass
    (record,) = _billed(emulator, 1, "gpt-4")
    _settle_wait(lambda: bool(_rows("status != 'pending'")))
    (row,) = _rows()
    assert (row["status"], row["relay_code"], row["counted"]) == ("error", -1, 1)
    assert row["cost"] == pytest.approx(record.cost) and record.cost > 0
    assert UsageStore().windows(tier="paid")[1].requests_used == 1 or any(
        w.family == "gpt-4" and w.requests_used == 1 for w in UsageStore().windows(tier="paid"))


# ---- case 5: a timeout after sending ---------------------------------------------------------------------------

def test_read_timeout_after_sending_is_counted_and_booked_as_maybe_billed(emulator: Any) -> None:
    emulator.configure(faults="latency=1.0")
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        _ask(client, model="gpt-4", max_tokens=50)
    (row,) = _rows()
    assert (row["status"], row["counted"], row["measured"]) == ("timeout", 1, 0)
    assert "may have been served" in row["estimate_reason"] and row["cost_low"] == 0
    windows = {w.family: w for w in UsageStore().windows(tier="paid") if w.scope == "ip"}
    assert windows["gpt-4"].requests_used == 1  # the relay counted it: so do we
    # The latency fault models a relay that stops when the client leaves before the model ran (nothing billed,
    # issue 14): inside the bounds.
    _settle_wait(lambda: all(r.status for r in emulator.state.relay_requests()), timeout=3)
    (record,) = emulator.state.relay_requests()
    assert row["cost_low"] <= record.cost <= row["cost_high"]


def test_a_timed_out_request_is_booked_at_what_a_relay_that_serves_it_anyway_bills(emulator: Any) -> None:
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", max_retries=0)
    for i in range(5):  # this machine's typical gpt-4 answer
        _ask(client, model="gpt-4", text=f"seed {i}", max_tokens=50)
    emulator.configure(faults="slow=0.5")  # the relay keeps serving after the client gave up, and bills it
    impatient = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", max_retries=0,
                       timeout=0.15)
    with pytest.raises(openai.APITimeoutError):
        _ask(impatient, model="gpt-4", text="plain", max_tokens=50)
    with pytest.raises(openai.APITimeoutError):
        _ask(impatient, model="gpt-4", text="streamed", max_tokens=50, stream=True)
    records = wait_until(lambda: (lambda rs: rs if len(rs) == 7 and all(r.status for r in rs) else None)(
        emulator.state.relay_requests()), timeout=5, what="both served")
    plain, streamed = records[5:]
    assert (plain.outcome, streamed.outcome) == ("abandoned", "disconnected")
    timeouts = _rows("status = 'timeout'")
    assert [r["stream"] for r in timeouts] == [0, 1]
    # Non-streamed: served in full (the typical answer); a stream: stopped at the relay's first writes.
    assert timeouts[0]["cost"] == pytest.approx(plain.cost)
    assert timeouts[1]["cost"] <= streamed.cost <= timeouts[1]["cost"] + 2 * 0.5 / 1000
    for row, record in zip(timeouts, (plain, streamed)):
        assert row["cost_low"] == 0 <= record.cost <= row["cost_high"]


# ---- case 6: a killed process --------------------------------------------------------------------------------

def test_rows_of_a_killed_process_are_settled_as_orphaned_by_the_next_meter(tmp_path: Path) -> None:
    script = tmp_path / "sender.py"
    script.write_text(textwrap.dedent("""
        import os, signal
        from baicai_sdk._meter import Meter, describe_request
        info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo",
                                "messages": [{"role": "user", "content": "hi"}]})
        Meter(tier="free").reserve("baicai-free-aaaaaaaaaaaaaaaaaaaa1111", info)
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-request: nobody settles the row
    """))
    proc = subprocess.run([sys.executable, str(script)], env=os.environ.copy(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    (pending,) = _rows()
    assert pending["status"] == "pending" and pending["host"] and pending["proc_start"]
    held = pending["win_tokens"]
    Meter().settle_orphans()
    (row,) = _rows()
    assert (row["status"], row["measured"], row["counted"]) == ("orphaned", 0, 1)
    assert row["completion_low"] == 0 and row["completion_high"] >= 1024
    assert row["win_tokens"] < held and "process ended" in row["estimate_reason"]
    assert row["cost_low"] == 0 and row["cost"] == 0  # the key was configured free


_ANSWER = {"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-3.5-turbo",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


async def test_settle_after_leaves_a_success_pending_until_the_caller_settles_it() -> None:
    """The sidecar's ``SETTLE_AFTER``: a successful complete answer comes back with its row pending and the call
    that settles it (once, as ``ok`` from the answer's usage) — written with the next reservation's commit, or by
    the event loop's timer within ``SETTLE_FLUSH_SECONDS``; errors, and requests without the mark, are settled
    before the answer as always."""
    import asyncio

    from baicai_sdk._meter import SETTLE_FLUSH_SECONDS
    from baicai_sdk._transport import AsyncMeteredTransport
    from baicai_sdk.integration import SETTLE_AFTER

    status = [200]
    inner = httpx2.MockTransport(lambda request: httpx2.Response(status[0], json=_ANSWER if status[0] == 200 else
                                                                 {"error": {"message": "boom"}}))
    transport = AsyncMeteredTransport(inner, source="sidecar", quota="raise", tier="paid")

    def request(**extensions: Any) -> httpx2.Request:
        return httpx2.Request("POST", "https://api.baicaigpt.com/v1/chat/completions", extensions=extensions,
                              headers={"authorization": "Bearer baicai-k"},
                              json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})

    response = await transport.handle_async_request(request(**{SETTLE_AFTER: True}))
    assert response.status_code == 200 and response.json() == _ANSWER
    assert [r["status"] for r in _rows()] == ["pending"]
    settle = response.extensions.pop(SETTLE_AFTER)
    settle()
    settle()  # at most once
    assert [r["status"] for r in _rows()] == ["pending"]  # not yet: no reservation came, the timer has not run
    await asyncio.sleep(SETTLE_FLUSH_SECONDS * 2)  # (the loop runs the earlier timer first)
    (row,) = _rows()
    assert (row["status"], row["http_status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 200, 7, 3)

    response = await transport.handle_async_request(request(**{SETTLE_AFTER: True}))
    response.extensions.pop(SETTLE_AFTER)()
    plain = await transport.handle_async_request(request())  # its reservation writes the settle before it
    assert SETTLE_AFTER not in plain.extensions and [r["status"] for r in _rows()] == ["ok", "ok", "ok"]
    status[0] = 500
    failed = await transport.handle_async_request(request(**{SETTLE_AFTER: True}))
    assert SETTLE_AFTER not in failed.extensions and _rows()[-1]["status"] == "error"


def test_a_process_killed_between_the_answer_and_its_settle_leaves_an_orphan(tmp_path: Path) -> None:
    """The sidecar killed after passing an answer on and before settling it: the row is in flight like any other,
    and the next Meter settles it as orphaned, with bounds."""
    script = tmp_path / "sidecar_like.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, os, signal
        import httpx2
        from baicai_sdk._transport import AsyncMeteredTransport
        from baicai_sdk.integration import SETTLE_AFTER

        async def main():
            inner = httpx2.MockTransport(lambda request: httpx2.Response(200, json={_ANSWER!r}))
            transport = AsyncMeteredTransport(inner, source="sidecar", quota="raise", tier="paid")
            request = httpx2.Request("POST", "https://api.baicaigpt.com/v1/chat/completions",
                                     headers={{"authorization": "Bearer baicai-k"}}, extensions={{SETTLE_AFTER: True}},
                                     json={{"model": "gpt-3.5-turbo", "messages": [{{"role": "user", "content": "hi"}}]}})
            response = await transport.handle_async_request(request)
            assert SETTLE_AFTER in response.extensions
            os.kill(os.getpid(), signal.SIGKILL)  # the app has its answer; the settle never runs

        asyncio.run(main())
    """))
    proc = subprocess.run([sys.executable, str(script)], env=os.environ.copy(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [r["status"] for r in _rows()] == ["pending"]
    assert Meter().settle_orphans() == 1
    (row,) = _rows()
    assert (row["status"], row["measured"], row["counted"]) == ("orphaned", 0, 1)
    assert row["cost_low"] == 0 < row["cost_high"]


def test_rows_of_an_earlier_process_with_our_pid_are_orphaned(tmp_path: Path) -> None:
    """A container's sidecar restarts with the same pid (often 1) and host name: the killed one's rows are not ours."""
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo",
                            "messages": [{"role": "user", "content": "hi"}]})
    meter = Meter(tier="free")
    earlier = meter.reserve("baicai-free-aaaaaaaaaaaaaaaaaaaa1111", info)
    ours = meter.reserve("baicai-free-aaaaaaaaaaaaaaaaaaaa1111", info)
    assert isinstance(earlier, Reservation) and isinstance(ours, Reservation)
    conn = sqlite3.connect(ledger_path())
    with conn:
        conn.execute("UPDATE requests SET proc_start = proc_start - 3600 WHERE id = ?", (earlier.id,))
    conn.close()
    assert Meter().settle_orphans() == 1
    assert [(r["id"], r["status"]) for r in _rows()] == [(earlier.id, "orphaned"), (ours.id, "pending")]
    ours.settle(prompt_tokens=5, completion_tokens=5)


# ---- case 7: no false refusals from in-flight reservations ---------------------------------------------------

def test_window_full_only_of_in_flight_reservations_waits_seconds(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    meter = Meter(ledger_path=tmp_path / "l.db", tier="free", clock=lambda: clock[0])
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo",
                                                     "messages": [{"role": "user", "content": "hi"}]})
    held = [meter.reserve("baicai-k", info) for _ in range(9)]  # 9 × (prompt + 1,024): no history yet
    assert all(isinstance(r, Reservation) for r in held)
    decision = meter.reserve("baicai-k", info)
    assert isinstance(decision, Decision) and decision.kind == "wait" and decision.inflight
    assert decision.wait_seconds <= 2 and "in flight" in decision.reason_en
    for r in held:
        r.settle(prompt_tokens=8, completion_tokens=16)  # type: ignore[union-attr]
    clock[0] += 1
    assert isinstance(meter.reserve("baicai-k", info), Reservation)
    fresh = meter.reserve("baicai-k", info)  # nine answers of 16 tokens known: reserve about that, not 1,024
    assert isinstance(fresh, Reservation) and fresh.window_tokens < 100


def test_concurrent_requests_without_max_tokens_are_never_refused_locally(emulator: Any) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="wait", max_wait=30)

    def one(i: int) -> str:
        try:
            _ask(client, text=f"q{i}")
            return "ok"
        except QuotaExceeded:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(one, range(24)))
    assert outcomes.count("refused") == 0
    assert not any(r.relay_code for r in emulator.state.relay_requests())


def test_raise_mode_says_in_flight_requests_hold_the_room(emulator: Any, tmp_path: Path) -> None:
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo",
                                                     "messages": [{"role": "user", "content": "hi"}]})
    other = Meter(tier="free")  # another process's requests, still in flight
    for _ in range(9):
        assert isinstance(other.reserve(emulator.free_key, info), Reservation)
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    with pytest.raises(QuotaExceeded) as caught:
        _ask(client)
    assert "in flight" in str(caught.value)
    assert caught.value.retry_at is not None and caught.value.retry_at - time.time() < 5


# ---- case 8: the window's edge ------------------------------------------------------------------------------

def test_a_row_counts_from_when_its_answer_arrived(emulator: Any) -> None:
    emulator.configure(faults="latency=0.3")
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", quota="raise")
    _ask(client, model="gpt-4-0125-preview", max_tokens=5)
    (row,) = _rows()
    (record,) = _billed(emulator, 1, "gpt-4-0125-preview")
    assert row["win_ts"] >= row["ts"] + 0.3 + 0.25  # the relay counted it up to 0.3 s after we stamped it
    with pytest.raises(QuotaExceeded) as caught:
        _ask(client, model="gpt-4-0125-preview", max_tokens=5)
    assert caught.value.retry_at == pytest.approx(row["win_ts"] + 3600)
    assert caught.value.retry_at > record.time + 3600  # never before the relay frees it


# ---- case 9: tier and price ---------------------------------------------------------------------------------

def test_unknown_tier_is_booked_as_a_range(emulator: Any) -> None:
    _ask(Baicai(api_key=emulator.free_key, base_url=emulator.base_url), max_tokens=5)
    (row,) = _rows()
    assert row["tier"] == "unknown" and row["measured"] == 0 and "tier unknown" in row["estimate_reason"]
    # Judged as paid until the relay says free: the paid price, with ¥0 (what the emulator billed) as the low end.
    assert row["cost_low"] == 0 == emulator.state.spent(emulator.free_key)
    assert row["cost"] == row["cost_high"] > 0


@pytest.mark.parametrize("tier", ["paid", "free"])
def test_rows_of_an_unknown_tier_are_repriced_when_the_tier_is_learned(emulator: Any, tier: str) -> None:
    key = emulator.paid_key if tier == "paid" else emulator.free_key
    client = Baicai(api_key=key, base_url=emulator.base_url, max_retries=0)
    for i in range(3):
        _ask(client, text=f"before {i}", max_tokens=5)
    assert {r["cost_low"] for r in _rows()} == {0.0} and all(r["cost_high"] > 0 for r in _rows())
    if tier == "paid":
        _ask(client, model="gpt-4", max_tokens=5)  # a paid-only model that works: the key is paid
    else:
        Meter().observe(key, "gpt-3.5-turbo", 40020)  # a free tier's code
    rows = _rows()
    billed = {r.model: 0.0 for r in emulator.state.relay_requests()}
    for r in emulator.state.relay_requests():
        billed[r.model or ""] += r.cost
    booked = sum(r["cost"] for r in rows if r["model"] == "gpt-3.5-turbo")
    assert booked == pytest.approx(billed["gpt-3.5-turbo"]) and {r["tier"] for r in rows} == {tier}
    assert {r["measured"] for r in rows} == {1} and {r["estimate_reason"] for r in rows} == {None}
    assert all(r["cost_low"] == r["cost"] == r["cost_high"] for r in rows)
    assert (booked > 0) == (tier == "paid")


def test_estimate_honours_the_tier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from baicai_sdk.cli import main

    body = tmp_path / "m.json"
    body.write_text(json.dumps([{"role": "user", "content": "hello"}]))
    assert main(["estimate", str(body), "--model", "gpt-3.5-turbo", "--tier", "free", "--json"]) == 0
    free = json.loads(capsys.readouterr().out)
    assert free["cost_cny"] == {"min": 0.0, "max": 0.0} and free["relay_rules"]["apply"] is True
    assert main(["estimate", str(body), "--model", "gpt-3.5-turbo", "--tier", "paid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cost_cny"]["max"] > 0


def test_a_key_learned_free_then_topped_up_is_priced_paid_on_its_first_paid_only_answer(emulator: Any) -> None:
    key = emulator.free_key
    Meter().observe(key, "gpt-3.5-turbo", 40020)  # learned free (and its gpt-3.5 window full) earlier
    emulator.configure(keys={**emulator.config.keys, key: "paid"})  # a top-up upgrades the key
    emulator.state.set_balance(key, 10.0)
    _ask(Baicai(api_key=key, base_url=emulator.base_url), model="gpt-4", max_tokens=5)
    (record,) = _billed(emulator, 1, "gpt-4")
    (row,) = _rows()
    assert row["tier"] == "paid" and row["cost"] == pytest.approx(record.cost) and record.cost > 0


# ---- case 10: reports and counts ----------------------------------------------------------------------------

def test_a_remote_image_of_unknown_size_is_booked_as_a_bounded_estimate(emulator: Any) -> None:
    from baicai_sdk._tokens import REMOTE_IMAGE_RANGE, count_chat

    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid")
    image = {"type": "image_url", "image_url": {"url": "https://example.invalid/cabbage.jpg"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "这是什么？"}, image]}]
    info = describe_request("/v1/chat/completions", {"model": "gpt-4-vision-preview", "messages": messages})
    counted = count_chat(messages, "gpt-4-vision-preview")  # the image at 1024×1024: 765
    fewest, most = REMOTE_IMAGE_RANGE["auto"]
    assert (info.prompt_low, info.prompt_tokens, info.prompt_high) == (counted - 765 + fewest, counted,
                                                                       counted - 765 + most)
    # Streamed without usage: the relay never says what the prompt cost, so the row carries the range.
    for _chunk in client.chat.completions.create(model="gpt-4-vision-preview", messages=messages, stream=True,
                                                 max_tokens=10):
        pass
    # With usage (a non-streamed answer): measured.
    client.chat.completions.create(model="gpt-4-vision-preview", messages=messages, max_tokens=10)
    streamed, plain = _rows()
    records = _billed(emulator, 2, "gpt-4-vision-preview")
    assert streamed["measured"] == 0 and "unknown size" in streamed["estimate_reason"]
    assert streamed["cost_low"] < records[0].cost < streamed["cost_high"]
    assert streamed["cost_high"] - streamed["cost_low"] == pytest.approx((most - fewest) * 0.5 / 1000)
    assert plain["measured"] == 1 and plain["cost"] == pytest.approx(records[1].cost)

def test_reports_group_by_the_zone_with_its_daylight_saving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from baicai_sdk._commands.usage import parse_when

    monkeypatch.setenv("TZ", "America/New_York")
    # 2026-07-01 00:30 EDT (UTC-4). With December's offset (UTC-5) it would land on June 30.
    summer = dt.datetime(2026, 7, 1, 4, 30, tzinfo=dt.timezone.utc).timestamp()
    meter = Meter(ledger_path=tmp_path / "l.db", clock=lambda: summer, tier="paid")
    r = meter.reserve("baicai-k", describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo",
                                                                            "messages": [], "max_tokens": 5}))
    r.settle(prompt_tokens=1, completion_tokens=1)  # type: ignore[union-attr]
    assert [x.key for x in UsageStore(tmp_path / "l.db").report("day")] == ["2026-07-01"]
    assert parse_when("2026-07-01") == dt.datetime(2026, 7, 1, 4, 0, tzinfo=dt.timezone.utc).timestamp()
    december = dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.timezone.utc).timestamp()
    assert parse_when("today", now=december) == dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.timezone.utc).timestamp()


def test_answers_without_usage_count_each_choice_and_tool_calls(tmp_path: Path) -> None:
    from baicai_sdk._tokens import count_text
    from baicai_sdk._transport import MeteredTransport

    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Shanghai"}'}}
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-3.5-turbo", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "General Kenobi"}, "finish_reason": "stop"},
        {"index": 2, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
         "finish_reason": "tool_calls"}]}
    inner = httpx2.MockTransport(lambda request: httpx2.Response(200, json=body))
    meter = Meter(ledger_path=tmp_path / "l.db", tier="paid")
    with httpx2.Client(transport=MeteredTransport(inner, meter=meter)) as client:
        client.post("https://api.baicaigpt.com/v1/chat/completions", headers={"Authorization": "Bearer baicai-k"},
                    json={"model": "gpt-3.5-turbo", "n": 3, "messages": [{"role": "user", "content": "hi"}]})
    conn = sqlite3.connect(tmp_path / "l.db")
    (completion,) = conn.execute("SELECT completion_tokens FROM requests").fetchone()
    conn.close()
    expected = (count_text("Hello there", "gpt-3.5-turbo") + count_text("General Kenobi", "gpt-3.5-turbo")
                + count_text('lookup{"city": "Shanghai"}', "gpt-3.5-turbo"))
    assert completion == expected


def test_wall_clock_steps_are_treated_conservatively(tmp_path: Path) -> None:
    """Forward: rows made before the step keep counting as long as the relay counts them. Backward: rows left in
    the future count for at most one more hour, never the hour plus the step."""
    wall, mono = [1_800_000_000.0], [100.0]
    meter = Meter(ledger_path=tmp_path / "l.db", tier="free", clock=lambda: wall[0])
    meter._monotonic = lambda: mono[0]
    info = describe_request("/v1/chat/completions", {"model": "gpt-4-0125-preview", "max_tokens": 5,
                                                     "messages": [{"role": "user", "content": "hi"}]})
    first = meter.reserve("baicai-k", info)
    assert isinstance(first, Reservation)
    first.settle(prompt_tokens=8, completion_tokens=5)
    wall[0] += 3000 + 1800  # 50 min pass, and the clock jumps 30 min ahead
    mono[0] += 3000
    refused = meter.reserve("baicai-k", info)
    assert isinstance(refused, Decision), "the relay still counts the first request for 10 more minutes"
    assert refused.retry_at == pytest.approx(1_800_000_000.0 + 1800 + 3600)

    wall2, mono2 = [1_800_000_000.0], [100.0]
    back = Meter(ledger_path=tmp_path / "b.db", tier="free", clock=lambda: wall2[0])
    back._monotonic = lambda: mono2[0]
    made = back.reserve("baicai-k", info)
    assert isinstance(made, Reservation)
    made.settle(prompt_tokens=8, completion_tokens=5)
    wall2[0] -= 3600  # set back an hour
    mono2[0] += 1
    decision = back.reserve("baicai-k", info)
    assert isinstance(decision, Decision)
    assert decision.retry_at is not None and decision.retry_at - wall2[0] <= 3600 + 1  # not two hours
