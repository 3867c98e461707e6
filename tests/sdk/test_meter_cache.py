"""What a Meter keeps between requests never hides the ledger's truth.

A Meter keeps each family's window count and the window time of its first counted row, and reads the ledger again
only when another connection committed (``PRAGMA data_version``) or when the window's start passes that first row;
it settles its own rows with one ``UPDATE`` from what the reservation knows. Each test below would fail if a cached
figure were used after the ledger changed under it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from baicai_sdk import _ledger
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._quota import Decision

CHAT = "/v1/chat/completions"
KEY = "baicai-free-aaaaaaaaaaaaaaaaaaaa1111"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def chat() -> object:
    return describe_request(CHAT, {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}],
                                   "max_tokens": 5})


@pytest.fixture
def clock() -> Clock:
    return Clock()


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
