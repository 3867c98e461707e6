"""What a Meter keeps between requests never hides the ledger's truth.

A Meter keeps each family's window count and the window time of its first counted row; it reads the window log's
new entries (every writer's changes, kept by schema triggers) and the ledger's rows only when the window's start
passes that first row; it settles its own rows with one ``UPDATE`` from what the reservation knows. Each test below would fail if a cached
figure were used after the ledger changed under it.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baicai_sdk import _ledger
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._quota import Decision
from tests.clock import Clock

CHAT = "/v1/chat/completions"
KEY = "baicai-free-aaaaaaaaaaaaaaaaaaaa1111"
T0 = 1_800_000_000.0



def chat() -> object:
    return describe_request(CHAT, {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}],
                                   "max_tokens": 5})


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


def _meter(path: Path, clock: Clock) -> Meter:
    return Meter(ledger_path=path, clock=clock, tier="free", quota="raise")


def _fill(meter: Meter, clock: Clock, count: int, *, answered_at: float | None = None) -> None:
    for _ in range(count):
        r = meter.reserve(KEY, chat())
        assert isinstance(r, Reservation)
        r.settle(status="ok", prompt_tokens=8, completion_tokens=2, answered_at=answered_at)
        clock.t += 0.01


def _fresh_count(path: Path, since: float) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        return _ledger.window_totals(conn, "gpt-3.5", since)
    finally:
        conn.close()


def test_rows_another_process_wrote_between_two_reserves_count_in_the_second(path: Path, clock: Clock) -> None:
    ours = _meter(path, clock)
    _fill(ours, clock, 50)  # the free tier allows 60 gpt-3.5 requests an hour: room for 10
    other = sqlite3.connect(path, isolation_level=None)  # another process (any version of baicai) writing rows
    try:
        for _ in range(10):
            other.execute(
                "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, counted, "
                "win_tokens) VALUES (?, ?, 'someone', 'sdk', 'gpt-3.5-turbo', 'gpt-3.5', 'chat', 'ok', 1, 10)",
                (clock.t, clock.t))
    finally:
        other.close()
    refused = ours.reserve(KEY, chat())
    assert isinstance(refused, Decision) and refused.kind != "allow", "the other process's 10 rows were not seen"
    view = ours._view(ours._conn())
    assert view.window("gpt-3.5", clock.t - 3600) == _fresh_count(path, clock.t - 3600)


def test_a_row_leaves_the_window_when_its_hour_is_over_though_nothing_was_written(path: Path, clock: Clock) -> None:
    ours = _meter(path, clock)
    _fill(ours, clock, 60)
    clock.t = T0 + 3599.0
    assert isinstance(ours.reserve(KEY, chat()), Decision)
    clock.t = T0 + 3600.005  # the first row (T0) has left; the others (T0 + 0.01…) have not
    r = ours.reserve(KEY, chat())
    assert isinstance(r, Reservation), "a row that left the window still counted"
    assert isinstance(ours.reserve(KEY, chat()), Decision), "more rows left than did"


def test_a_settled_row_counts_until_an_hour_after_its_answer_arrived(path: Path, clock: Clock) -> None:
    ours = _meter(path, clock)
    _fill(ours, clock, 60, answered_at=T0 + 100.0)  # window time: when the answer arrived (+ 0.25 s)
    clock.t = T0 + 3601.0  # an hour after they were sent, not yet after they were answered
    assert isinstance(ours.reserve(KEY, chat()), Decision)
    clock.t = T0 + 3700.3
    assert isinstance(ours.reserve(KEY, chat()), Reservation)


def test_a_row_settled_elsewhere_first_is_left_as_it_is(path: Path, clock: Clock) -> None:
    ours = _meter(path, clock)
    r = ours.reserve(KEY, chat())
    assert isinstance(r, Reservation)
    other = sqlite3.connect(path, isolation_level=None)  # another process's sweep took it for an orphan
    try:
        other.execute("UPDATE requests SET status = 'orphaned', counted = 1, win_tokens = 99 WHERE id = ?", (r.id,))
    finally:
        other.close()
    r.settle(status="ok", prompt_tokens=8, completion_tokens=2)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT status, win_tokens FROM requests WHERE id = ?", (r.id,)).fetchone() == (
            "orphaned", 99)
    finally:
        conn.close()
    view = ours._view(ours._conn())
    view.sync()
    assert view.window("gpt-3.5", clock.t - 3600) == _fresh_count(path, clock.t - 3600) == (1, 99)


@pytest.mark.parametrize("learned", [True, False])
def test_a_row_sent_to_a_server_learned_as_the_relay_meanwhile_stays_counted(path: Path, clock: Clock,
                                                                            learned: bool) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"  # not known as the relay: recorded, counted in no window
    ours = Meter(ledger_path=path, clock=clock, tier="paid")
    r = ours.reserve("sk-not-a-relay-key-0000000000001111", chat(), url=url)
    assert isinstance(r, Reservation) and not r.counted
    if learned:  # another process heard the relay's code from that address while ours waited for its answer
        Meter(ledger_path=path, clock=clock).learn_relay_host(url, "relay-code")
    r.settle(status="ok", prompt_tokens=8, completion_tokens=2)
    conn = sqlite3.connect(path)
    try:
        (counted,) = conn.execute("SELECT counted FROM requests WHERE id = ?", (r.id,)).fetchone()
    finally:
        conn.close()
    assert counted == (1 if learned else 2)
    view = ours._view(ours._conn())
    view.sync()
    assert view.window("gpt-3.5", clock.t - 3600) == _fresh_count(path, clock.t - 3600) == ((1, 10) if learned
                                                                                            else (0, 0))


# ---- the window log: whatever another process writes, the remembered windows equal a fresh count --------------

_FAMILIES = ("gpt-3.5", "gpt-4")
_MODEL = st.sampled_from(["gpt-3.5-turbo", "gpt-4"])
_ROW = st.integers(0, 10_000)  # which row (modulo the rows there are)
_OPS = st.one_of(
    st.tuples(st.just("reserve"), st.booleans(), _MODEL, st.integers(1, 400), st.booleans()),  # by them?, relay?
    st.tuples(st.just("settle"), _ROW, st.sampled_from(["ok", "error", "failed", "dropped"]),
              st.sampled_from([None, 40022]), st.integers(0, 50), st.integers(0, 300),
              st.sampled_from([None, 0.0, 30.0])),  # answered: when, after the reservation
    st.tuples(st.just("move"), _ROW, st.floats(-7200, 3600)),  # another program moves a row's window time
    st.tuples(st.just("recount"), _ROW, st.sampled_from([0, 1, 2]), st.integers(0, 500)),  # counted, win_tokens
    st.tuples(st.just("delete"), _ROW),
    st.tuples(st.just("forget"), _ROW),  # a retried attempt's row dropped (Meter.forget_failed)
    st.tuples(st.just("old_writer"), _MODEL, st.floats(-4000, 100)),  # an older baicai inserting a settled row
    st.tuples(st.just("observe"), st.booleans(), _MODEL, st.sampled_from([40020, 40022, 40021])),
    st.tuples(st.just("relay_learned"),),  # the non-relay server turns out to be the relay
    st.tuples(st.just("orphan"),),  # a dead process's row, settled by their sweep
    # their sweep trims the window log after more writes than it keeps: a gap, we count afresh
    st.tuples(st.just("trim"), st.integers(0, 6), st.integers(0, 4)),
    st.tuples(st.just("clock"), st.sampled_from([1, 30, 600, 1800, 3599, 3601, -1, -120])),
    st.tuples(st.just("clock"), st.sampled_from([0.5, 900, 2400])),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(ops=st.lists(_OPS, min_size=1, max_size=50))
def test_windows_read_from_the_log_always_equal_a_fresh_count(ops: list[tuple[Any, ...]]) -> None:
    """Two Meters on one ledger ("two processes") and raw writes by a third program: rows inserted, settled,
    moved into and out of the window, counted and uncounted, deleted, orphaned, a tier learned, a server learned as
    the relay, the window log trimmed under a reader, clocks jumping both ways. After every step each Meter's window
    figures — read from the window log, not counted again — equal a count made from scratch in the same snapshot."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(_ledger, "WINDOW_CHANGES_MAX", 5)  # a view further behind counts afresh: that path too
        path = Path(folder) / "ledger.sqlite3"
        clock = Clock(T0)
        ours = Meter(ledger_path=path, clock=clock, quota="off")
        theirs = Meter(ledger_path=path, clock=clock, tier="paid", quota="off")
        ours._conn()
        raw = sqlite3.connect(path, isolation_level=None)
        open_rows: list[Reservation] = []
        try:
            for index, op in enumerate(ops):
                ids = [r[0] for r in raw.execute("SELECT id FROM requests ORDER BY id")]
                kind = op[0]
                if kind == "reserve":
                    _, by_them, model, max_tokens, relay = op
                    url = None if relay else "http://127.0.0.1:9/v1/chat/completions"
                    r = (theirs if by_them else ours).reserve(
                        "sk-not-a-relay-key-0000000000001111" if url else KEY, chat_of(model, max_tokens), url=url)
                    assert isinstance(r, Reservation)
                    open_rows.append(r)
                elif kind == "settle" and open_rows:
                    _, which, status, code, prompt, completion, answered = op
                    open_rows.pop(which % len(open_rows)).settle(
                        status=status, relay_code=code, prompt_tokens=prompt, completion_tokens=completion,
                        answered_at=None if answered is None else clock.t + answered)
                elif kind == "move" and ids:
                    raw.execute("UPDATE requests SET win_ts = ? WHERE id = ?", (clock.t + op[2], ids[op[1] % len(ids)]))
                elif kind == "recount" and ids:
                    raw.execute("UPDATE requests SET counted = ?, win_tokens = ? WHERE id = ?",
                                (op[2], op[3], ids[op[1] % len(ids)]))
                elif kind == "delete" and ids:
                    raw.execute("DELETE FROM requests WHERE id = ?", (ids[op[1] % len(ids)],))
                elif kind == "forget" and ids:
                    theirs.forget_failed(ids[op[1] % len(ids)])
                elif kind == "old_writer":
                    _, model, offset = op
                    family = "gpt-4" if model == "gpt-4" else "gpt-3.5"
                    raw.execute(
                        "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, counted, "
                        "win_tokens) VALUES (?, ?, 'someone', 'sdk', ?, ?, 'chat', 'ok', 1, 10)",
                        (clock.t + offset, clock.t + offset, model, family))
                elif kind == "observe":
                    _, by_them, model, code = op
                    (theirs if by_them else ours).observe(KEY, model, code)
                elif kind == "relay_learned":
                    theirs.learn_relay_host("http://127.0.0.1:9/v1/chat/completions", "relay-code")
                elif kind == "orphan":
                    from baicai_sdk._meter import process_identity

                    _, host, _ = process_identity()
                    raw.execute(
                        "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, counted, "
                        "win_tokens, pid, host, proc_start) VALUES (?, ?, 'dead', 'sdk', 'gpt-4', 'gpt-4', 'chat', "
                        "'pending', 1, 120, ?, ?, 1.0)", (clock.t, clock.t, 2**22 + 12345, host))
                    theirs.settle_orphans()
                elif kind == "trim":
                    for _ in range(op[1]):
                        raw.execute(
                            "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, "
                            "counted, win_tokens) VALUES (?, ?, 'someone', 'sdk', 'gpt-4', 'gpt-4', 'chat', 'ok', 1, 7)",
                            (clock.t, clock.t))
                    _ledger.trim_window_log(raw, op[2])
                elif kind == "clock":
                    clock.t += op[1]
                since = clock.t - 3600
                for meter in (ours, theirs):
                    conn = meter._conn()
                    conn.execute("BEGIN")
                    try:
                        view = meter._view(conn)
                        view.sync()
                        for family in _FAMILIES:
                            assert view.window(family, since) == _ledger.window_totals(conn, family, since), (
                                index, op, family)
                    finally:
                        conn.execute("COMMIT")
        finally:
            raw.close()
            ours.close()
            theirs.close()


def chat_of(model: str, max_tokens: int) -> Any:
    return describe_request(CHAT, {"model": model, "messages": [{"role": "user", "content": "hi"}],
                                   "max_tokens": max_tokens})


def _busy_process(path: str, seed: int, start: Any, out: Any) -> None:
    """One of two processes writing the same ledger at once: random reserves, settles (some answered later, so
    the row moves in the window), relay codes, deletes and raw moves; after each, its own window figures are
    checked against a fresh count in the same snapshot. Reports (operations, mismatches)."""
    import random

    rng = random.Random(seed)
    clock = Clock(T0)
    meter = Meter(ledger_path=path, clock=clock, quota="off")
    conn = meter._conn()
    open_rows: list[Reservation] = []
    start.wait(30)
    mismatches = operations = 0
    for _ in range(250):
        clock.t = T0 + rng.uniform(0, 7200)  # the two processes' clocks disagree: rows land in and out of windows
        what = rng.random()
        if what < 0.45 or not open_rows:
            r = meter.reserve(KEY, chat_of(rng.choice(["gpt-3.5-turbo", "gpt-4"]), rng.randint(1, 300)))
            assert isinstance(r, Reservation)
            open_rows.append(r)
        elif what < 0.8:
            open_rows.pop(rng.randrange(len(open_rows))).settle(
                status=rng.choice(["ok", "ok", "error", "dropped"]), prompt_tokens=rng.randint(0, 40),
                completion_tokens=rng.randint(0, 200), answered_at=clock.t + rng.choice([0.0, 90.0, 4000.0]))
        elif what < 0.85:
            meter.observe(KEY, "gpt-4", rng.choice([40020, 40022]))
        elif what < 0.95:
            conn.execute("UPDATE requests SET win_ts = win_ts + ? WHERE id = (SELECT MAX(id) FROM requests)",
                         (rng.uniform(-3600, 3600),))
        else:
            conn.execute("DELETE FROM requests WHERE id = (SELECT MIN(id) FROM requests)")
        operations += 1
        since = clock.t - 3600
        conn.execute("BEGIN")
        try:
            view = meter._view(conn)
            view.sync()
            for family in _FAMILIES:
                if view.window(family, since) != _ledger.window_totals(conn, family, since):
                    mismatches += 1
        finally:
            conn.execute("COMMIT")
    out.put((operations, mismatches))


@pytest.mark.slow  # two processes
def test_two_processes_writing_at_once_keep_windows_equal_to_a_fresh_count(path: Path) -> None:
    import multiprocessing

    Meter(ledger_path=path).close()  # the file and its schema exist before they race
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_busy_process, args=(str(path), seed, start, out)) for seed in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert results == [(250, 0), (250, 0)]
    conn = sqlite3.connect(path)
    try:  # both wrote: each process's figures were kept up to date from the other's changes too
        assert conn.execute("SELECT COUNT(DISTINCT pid) FROM requests").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM window_log").fetchone()[0] > 250
    finally:
        conn.close()
