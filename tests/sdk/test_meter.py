"""The Meter against a real ledger file: reserve/settle, learning from codes, expiry, and four processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._quota import Decision
from tests.clock import Clock

CHAT = "/v1/chat/completions"
FREE_KEY = "baicai-free-aaaaaaaaaaaaaaaaaaaa1111"
OTHER_KEY = "baicai-free-bbbbbbbbbbbbbbbbbbbb2222"
T0 = 1_800_000_000.0



def chat(model: str = "gpt-3.5-turbo", max_tokens: int = 20, content: str = "hi") -> Any:
    return describe_request(CHAT, {"model": model, "messages": [{"role": "user", "content": content}],
                                   "max_tokens": max_tokens})


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def meter(tmp_path: Path, clock: Clock) -> Meter:
    return Meter(ledger_path=tmp_path / "ledger.sqlite3", clock=clock)


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM requests ORDER BY id"))
    finally:
        conn.close()


def test_reserve_writes_pending_then_settle_replaces_estimate(meter: Meter, clock: Clock) -> None:
    info = chat(max_tokens=100)
    r = meter.reserve(FREE_KEY, info, app="NextChat")
    assert isinstance(r, Reservation)
    (row,) = rows(meter.path)
    assert row["status"] == "pending" and row["win_tokens"] == info.prompt_tokens + 100
    assert row["app"] == "NextChat" and row["source"] == "sdk" and row["tier"] == "unknown"
    assert FREE_KEY not in [str(v) for v in tuple(row)]  # fingerprint and mask only
    assert row["key_hint"].endswith("1111") and "…" in row["key_hint"]
    clock.t += 1.5
    r.settle(prompt_tokens=9, completion_tokens=12, http_status=200, latency_ms=1500, stream=True)
    r.settle(prompt_tokens=999, completion_tokens=999)  # idempotent
    (row,) = rows(meter.path)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"], row["win_tokens"]) == ("ok", 9, 12, 21)
    # Tier unknown: booked at the paid price, ¥0 (free) as the low end.
    assert row["cost_low"] == 0 and row["cost"] == row["cost_high"] == pytest.approx(21 * 0.01 / 1000)
    assert row["latency_ms"] == 1500 and row["stream"] == 1
    assert row["cost_est"] == pytest.approx((info.prompt_tokens + 100) * 0.01 / 1000)


def test_unknown_model_cost_is_null_not_zero(meter: Meter) -> None:
    r = meter.reserve(FREE_KEY, chat("baicai-mystery-1"))
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=5, completion_tokens=5)
    (row,) = rows(meter.path)
    assert row["cost"] is None and row["cost_est"] is None and row["family"] is None


def test_free_window_allows_60_then_waits_with_bilingual_reason(tmp_path: Path, clock: Clock) -> None:
    meter = Meter(ledger_path=tmp_path / "ledger.sqlite3", clock=clock, tier="free")
    for _ in range(60):
        r = meter.reserve(FREE_KEY, chat())
        assert isinstance(r, Reservation)
        r.settle(prompt_tokens=8, completion_tokens=10)
        clock.t += 5
    d = meter.reserve(OTHER_KEY, chat())  # another key on this machine shares the IP budget
    assert isinstance(d, Decision) and d.kind == "wait" and d.scope == "ip"
    assert d.retry_at == T0 + 3600 and d.wait_seconds == pytest.approx(3600 - 300)
    assert d.reason_zh.startswith("免费额度") and "60/60" in d.reason_en
    assert len(rows(meter.path)) == 60  # nothing written for a refusal
    clock.t = T0 + 3600.01
    assert isinstance(meter.reserve(OTHER_KEY, chat()), Reservation)


def test_pending_rows_hold_room_and_failed_sends_give_it_back(tmp_path: Path, clock: Clock) -> None:
    meter = Meter(ledger_path=tmp_path / "ledger.sqlite3", clock=clock, tier="free")
    big = chat(max_tokens=4000 - 10)
    first = meter.reserve(FREE_KEY, big)
    second = meter.reserve(FREE_KEY, big)
    assert isinstance(first, Reservation) and isinstance(second, Reservation)
    third = meter.reserve(FREE_KEY, big)  # 3 × ~4000 estimated > 10,000 tokens while the first two are in flight
    assert isinstance(third, Decision) and third.kind == "wait" and "tokens" in third.reason_en
    first.settle(status="failed", prompt_tokens=0, completion_tokens=0)
    assert isinstance(meter.reserve(FREE_KEY, big), Reservation)


def test_quota_off_records_anyway(tmp_path: Path, clock: Clock) -> None:
    meter = Meter(ledger_path=tmp_path / "l.db", clock=clock, quota="off", tier="free")
    outcomes = [meter.reserve(FREE_KEY, chat("gpt-4-0125-preview")) for _ in range(3)]
    assert all(isinstance(o, Reservation) for o in outcomes)
    assert meter.decide(FREE_KEY, chat("gpt-4-0125-preview")).kind == "wait"


def test_observe_learns_tier_and_is_used_next_time(meter: Meter) -> None:
    assert meter.tier_for(FREE_KEY) == ("unknown", "unknown")
    meter.observe(FREE_KEY, "gpt-4", 40050)
    assert meter.tier_for(FREE_KEY) == ("free", "learned")
    free_model = meter.reserve(FREE_KEY, chat("gpt-4-0125-preview"))
    assert isinstance(free_model, Reservation) and free_model.decision.tier_source == "learned"
    assert meter.decide(FREE_KEY, chat("gpt-4-0125-preview")).kind == "wait"  # the free tier's 1 gpt-4 an hour
    # A learned tier may be stale (a top-up upgrades the key) and 40050 costs nothing: a paid-only model is sent.
    paid_only = meter.reserve(FREE_KEY, chat("gpt-4"))
    assert isinstance(paid_only, Reservation)
    paid_only.settle(prompt_tokens=8, completion_tokens=2)  # it worked: the key is paid now
    assert meter.tier_for(FREE_KEY) == ("paid", "learned")
    meter.observe(FREE_KEY, "gpt-3.5-turbo", 40020)  # the relay says free again
    assert meter.tier_for(FREE_KEY) == ("free", "learned")
    configured = Meter(ledger_path=meter.path, tier="free")
    assert configured.tier_for(FREE_KEY) == ("free", "configured")
    refused = configured.reserve(FREE_KEY, chat("gpt-4"))  # what the user told us is trusted
    assert isinstance(refused, Decision) and refused.kind == "refuse"


def test_relay_limit_despite_room_makes_meter_conservative(meter: Meter, clock: Clock) -> None:
    for _ in range(3):
        r = meter.reserve(FREE_KEY, chat())
        assert isinstance(r, Reservation)
        r.settle(prompt_tokens=8, completion_tokens=10)
        clock.t += 10
    r = meter.reserve(FREE_KEY, chat())
    assert isinstance(r, Reservation)
    r.settle(status="error", relay_code=40020, http_status=429, prompt_tokens=0, completion_tokens=0)
    meter.observe(FREE_KEY, "gpt-3.5-turbo", 40020)
    d = meter.reserve(FREE_KEY, chat())
    assert isinstance(d, Decision) and d.kind == "wait"
    assert d.retry_at == T0 + 3600  # our oldest counted row leaving frees the first slot
    assert "another device" in d.reason_en
    clock.t = T0 + 3600.5
    assert isinstance(meter.reserve(FREE_KEY, chat()), Reservation)


def test_a_row_of_a_live_process_is_left_pending(meter: Meter, clock: Clock) -> None:
    r = meter.reserve(FREE_KEY, chat(max_tokens=500))
    assert isinstance(r, Reservation)
    clock.t += 1000  # long past any TTL: still our own process, so still in flight
    assert isinstance(Meter(ledger_path=meter.path, clock=clock).reserve(FREE_KEY, chat()), Reservation)
    first = rows(meter.path)[0]
    assert first["status"] == "pending" and first["win_tokens"] == r.info.estimated_tokens
    r.settle(prompt_tokens=8, completion_tokens=3)  # a very long answer still settles
    assert rows(meter.path)[0]["status"] == "ok"


def test_images_cost_per_image(tmp_path: Path, clock: Clock) -> None:
    meter = Meter(ledger_path=tmp_path / "l.db", clock=clock, tier="paid")
    info = describe_request("/v1/images/generations", {"model": "dall-e-3", "prompt": "x", "n": 2, "size": "1024x1792"})
    r = meter.reserve(FREE_KEY, info)
    assert isinstance(r, Reservation)
    r.settle(images=2)
    (row,) = rows(meter.path)
    assert row["cost"] == pytest.approx(1.6) and row["images"] == 2 and row["win_tokens"] == 0


# ---- four processes against one ledger file ------------------------------------------------------------------

SCENARIOS = [
    # model, max_tokens, attempts per process, allowed in total (None: as many as 10,000 tokens/hour hold)
    ("gpt-3.5-turbo", 20, 25, 60),  # 100 attempts against 60 requests/hour
    ("gpt-3.5-turbo", 1000, 10, None),  # token-bound
    ("gpt-4-0125-preview", 50, 5, 1),  # 1 request/hour
]


def _worker(paths: list[str], barrier: Any, out: Any) -> None:
    for index, ((model, max_tokens, attempts, _), path) in enumerate(zip(SCENARIOS, paths)):
        meter = Meter(ledger_path=path, tier="free", clock=lambda: T0 + 10)
        info = chat(model, max_tokens=max_tokens)
        barrier.wait(timeout=60)  # all four start each scenario together
        allowed = sum(isinstance(meter.reserve(FREE_KEY, info), Reservation) for _ in range(attempts))
        out.put((index, allowed))


@pytest.mark.slow  # four processes
def test_four_processes_never_overspend_the_window(tmp_path: Path) -> None:
    paths = [tmp_path / f"shared-{i}.sqlite3" for i in range(len(SCENARIOS))]
    for path in paths:  # create the files first, so the processes race on reservations, not on the migration
        Meter(ledger_path=path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=([str(p) for p in paths], barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    allowed = [0] * len(SCENARIOS)
    for _ in range(4 * len(SCENARIOS)):
        index, n = out.get(timeout=120)
        allowed[index] += n
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for (model, max_tokens, _, expected), path, got in zip(SCENARIOS, paths, allowed):
        recorded = rows(path)
        assert len(recorded) == got
        per_request = chat(model, max_tokens=max_tokens).estimated_tokens
        assert got == (expected if expected is not None else 10_000 // per_request), model
        budget = 10_000 if model.startswith("gpt-3.5") else 1_000
        assert sum(r["win_tokens"] for r in recorded) <= budget
        assert len(recorded) <= (60 if model.startswith("gpt-3.5") else 1)


_MODELS = st.sampled_from(["gpt-3.5-turbo", "gpt-4"])
_STEPS = st.one_of(
    # (what, by another connection, model, max_tokens)
    st.tuples(st.just("reserve"), st.booleans(), _MODELS, st.integers(1, 500)),
    # (what, which open row, status, relay code, prompt tokens, completion tokens)
    st.tuples(st.just("settle"), st.integers(0, 1_000), st.sampled_from(["ok", "error", "failed", "dropped"]),
              st.sampled_from([None, 40022]), st.integers(0, 50), st.integers(0, 300)),
    st.tuples(st.just("observe"), _MODELS),
    st.tuples(st.just("clock"), st.sampled_from([1, 30, 600, 1800, -1, -120])),  # < 0: a clock set back
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(steps=st.lists(_STEPS, min_size=1, max_size=60))
def test_remembered_windows_always_equal_a_fresh_count(steps: list[tuple[Any, ...]]) -> None:
    """Each Meter keeps its window figures between requests and only reads what changed (the rows that left the
    window; everything after another connection's commit). Whatever the mix of our writes, another process's
    writes, relay codes, sweeps, settles after the row left the window and clocks going back, what the Meter
    decides on must equal a count made from scratch. (hypothesis: a failure shrinks to the shortest mix.)"""
    from baicai_sdk import _ledger

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.sqlite3"
        clock = Clock(T0)
        ours = Meter(ledger_path=path, clock=clock, tier="paid", quota="off")
        theirs = Meter(ledger_path=path, clock=clock, tier="paid", quota="off")  # another connection: "a process"
        ours._conn()  # creates the ledger
        fresh = sqlite3.connect(path)
        open_rows: list[Reservation] = []
        try:
            for index, step in enumerate(steps):
                if step[0] == "reserve":
                    _, by_them, model, max_tokens = step
                    r = (theirs if by_them else ours).reserve(FREE_KEY, chat(model, max_tokens=max_tokens))
                    assert isinstance(r, Reservation)
                    open_rows.append(r)
                elif step[0] == "settle" and open_rows:
                    _, which, status, code, prompt, completion = step
                    open_rows.pop(which % len(open_rows)).settle(
                        status=status, relay_code=code, prompt_tokens=prompt, completion_tokens=completion)
                elif step[0] == "observe":
                    ours.observe(FREE_KEY, step[1], 40022)
                elif step[0] == "clock":
                    clock.t += step[1]
                since = clock.t - 3600
                for family in ("gpt-3.5", "gpt-4"):
                    expected = _ledger.window_totals(fresh, family, since)
                    view = ours._view(ours._conn())
                    view.sync()
                    assert view.window(family, since) == expected, (index, family)
        finally:
            fresh.close()
            ours.close()
            theirs.close()


def test_a_huge_model_name_is_stored_cut_short(meter: Meter) -> None:
    info = chat(model="gpt-3.5-turbo-" + "x" * 100_000)
    r = meter.reserve(FREE_KEY, info)
    assert isinstance(r, Reservation)
    r.settle(status="error", relay_code=40001)
    (row,) = rows(meter.path)
    assert row["model"] == info.model[:100]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
def test_a_rows_process_start_time_is_psutils_without_importing_it() -> None:
    """Rows carry their process's start time so another Meter can tell a dead writer from a reused pid: it checks
    with psutil, so the writer's own figure (read from /proc, to spare a sidecar psutil's 0.8 MB) must be psutil's."""
    import subprocess
    import sys

    code = ("import json, sys; from baicai_sdk._meter import process_identity; pid, _, started = process_identity(); "
            "loaded = 'psutil' in sys.modules; import psutil; "
            "print(json.dumps([loaded, started, psutil.Process(pid).create_time()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    loaded, started, psutils = json.loads(out)
    assert not loaded and started == psutils


def test_a_deferred_settle_is_written_in_the_next_reservations_commit(meter: Meter, clock: Clock) -> None:
    """``deferred=True`` (the sidecar, after the app has its answer): no commit of its own — the next reservation
    writes the row's UPDATE before it decides, in its one transaction, and its window already counts what the
    answer really used."""
    from baicai_sdk import _ledger

    first = meter.reserve(FREE_KEY, chat(max_tokens=100))
    assert isinstance(first, Reservation)
    first.settle(prompt_tokens=9, completion_tokens=12, http_status=200, deferred=True)
    assert [r["status"] for r in rows(meter.path)] == ["pending"]  # until the next transaction
    statements: list[str] = []
    conn = meter._conn()
    conn.set_trace_callback(statements.append)
    clock.t += 1
    second = meter.reserve(FREE_KEY, chat(max_tokens=100))
    conn.set_trace_callback(None)
    assert isinstance(second, Reservation)
    kinds = [s.split()[0] for i, s in enumerate(statements) if i == 0 or s != statements[i - 1]]
    assert kinds[0] == "BEGIN" and kinds[-1] == "COMMIT" and kinds.count("COMMIT") == 1
    assert kinds.index("UPDATE") < kinds.index("INSERT")  # settled before the decision
    first_row, second_row = rows(meter.path)
    assert (first_row["status"], first_row["prompt_tokens"], first_row["completion_tokens"]) == ("ok", 9, 12)
    assert second_row["status"] == "pending"
    tokens = _ledger.window_totals(conn, "gpt-3.5", T0 - 3600)[1]
    assert tokens == 21 + second_row["win_tokens"]  # the settled figure, not the first reservation's estimate


def test_deferred_settles_survive_a_reservation_that_fails_and_are_flushed(meter: Meter, clock: Clock) -> None:
    """A reservation that fails after taking the waiting settles rolls back and puts them back: nothing lost;
    ``flush_settles`` (the loop's timer, the transport's close) writes them in one transaction."""
    reservations = [meter.reserve(FREE_KEY, chat()) for _ in range(3)]
    for n, r in enumerate(reservations):
        assert isinstance(r, Reservation)
        r.settle(prompt_tokens=5, completion_tokens=n, deferred=True)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    meter._sized = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        meter.reserve(FREE_KEY, chat())
    del meter._sized
    assert [r["status"] for r in rows(meter.path)] == ["pending"] * 3
    meter.flush_settles()
    assert [(r["status"], r["completion_tokens"]) for r in rows(meter.path)] == [("ok", 0), ("ok", 1), ("ok", 2)]
    meter.flush_settles()  # nothing waits: no transaction at all
    calls: list[float] = []
    meter.flush_settles_soon(lambda delay, flush: calls.append(delay))
    assert calls == []  # nothing to flush: no timer
