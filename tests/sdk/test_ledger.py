"""The ledger file: WAL, schema versions and migrations, privacy (no text, no key)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from baicai_sdk import _ledger
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._paths import ledger_path

SECRET_KEY = "baicai-SECRETsecretSECRETsecret9876"
PROMPT = "我的银行卡密码是 314159，请记住 / my PIN is 314159"
REPLY = "好的，我不会记住 / I will not remember"


def test_new_file_is_wal_and_current_version(tmp_path: Path) -> None:
    conn = _ledger.connect(tmp_path / "l.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _ledger.SCHEMA_VERSION
    assert int(conn.execute("PRAGMA busy_timeout").fetchone()[0]) >= 5000
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"requests", "learned_tiers", "exhaustions", "topups", "relay_hosts", "requests_family_wts",
            "requests_key_family_wts"} <= names


def test_default_location_is_the_data_dir(baicai_home: Path) -> None:
    meter = Meter()
    assert meter.path == ledger_path() and str(meter.path).startswith(str(baicai_home))


def test_window_queries_use_the_covering_index(tmp_path: Path) -> None:
    conn = _ledger.connect(tmp_path / "l.db")
    plan = " ".join(str(r[-1]) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*), COALESCE(SUM(win_tokens), 0) FROM requests "
        "WHERE family = ? AND win_ts > ? AND counted = 1", ("gpt-4", 0.0)))
    assert "COVERING INDEX requests_family_wts" in plan
    plan = " ".join(str(r[-1]) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM requests WHERE key_fp = ? AND family = ? AND win_ts > ? "
        "AND counted = 1", ("x", "gpt-4", 0.0)))
    assert "requests_key_family_wts" in plan


def test_migrations_run_in_order_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    old = _ledger.connect(path)
    old.execute("INSERT INTO requests (ts, key_fp, source, model, endpoint, status) VALUES (1, 'fp', 'sdk', 'm', 'chat', 'ok')")
    old.close()
    nxt = "ALTER TABLE requests ADD COLUMN region TEXT; CREATE INDEX requests_region ON requests (region)"
    version = len(_ledger._MIGRATIONS) + 1
    monkeypatch.setattr(_ledger, "_MIGRATIONS", [*_ledger._MIGRATIONS, nxt])
    monkeypatch.setattr(_ledger, "SCHEMA_VERSION", version)
    monkeypatch.setattr(_ledger, "_migrated", set())
    conn = _ledger.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    assert conn.execute("SELECT model, region FROM requests").fetchall() == [("m", None)]
    assert _ledger.migrate(conn) == version  # idempotent


def test_a_first_version_ledger_is_migrated_with_its_rows(tmp_path: Path) -> None:
    """A ledger written before rows said what is known: its rows keep their figures and count in the window
    from their old time; a row the old code had marked ``expired`` becomes ``orphaned`` with bounds."""
    import sqlite3 as sq

    path = tmp_path / "v1.db"
    raw = sq.connect(path, isolation_level=None)
    for statement in _ledger._split(_ledger._MIGRATIONS[0]):
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute("INSERT INTO requests (ts, key_fp, source, model, family, endpoint, status, prompt_tokens, "
                "completion_tokens, cost, cost_est, prompt_est, completion_est, win_tokens) VALUES "
                "(100, 'fp', 'sdk', 'gpt-4', 'gpt-4', 'chat', 'ok', 10, 5, 0.0075, 0.5, 10, 1000, 15), "
                "(200, 'fp', 'sdk', 'gpt-4', 'gpt-4', 'chat', 'expired', NULL, NULL, NULL, 0.52, 10, 1024, 1034)")
    raw.execute("INSERT INTO exhaustions (ts, key_fp, family, tier, kind, code, local_requests, local_tokens) "
                "VALUES (150, 'fp', 'gpt-4', 'free', 'requests', 40021, 1, 15)")
    raw.close()
    _ledger._migrated.discard(str(path.resolve()))
    conn = _ledger.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _ledger.SCHEMA_VERSION
    ok, orphan = conn.execute("SELECT status, win_ts, measured, cost, cost_low, cost_high, estimate_reason "
                              "FROM requests ORDER BY id").fetchall()
    assert ok == ("ok", 100.0, 1, 0.0075, None, None, None)
    assert orphan[:6] == ("orphaned", 200.0, 0, 0.52, 0, 0.52) and "process" in orphan[6]
    assert _ledger.window_totals(conn, "gpt-4", 50) == (2, 1049)
    assert conn.execute("SELECT key_requests FROM exhaustions").fetchone() == (None,)


def test_a_file_from_a_newer_version_is_used_as_is(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    _ledger.connect(path).execute("PRAGMA user_version = 99")
    _ledger._migrated.discard(str(path.resolve()))
    meter = Meter(ledger_path=path)
    assert isinstance(meter.reserve("baicai-k", describe_request("/v1/chat/completions", {"model": "gpt-4", "messages": []})), Reservation)


def test_no_text_and_no_key_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    meter = Meter(ledger_path=path)
    body = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": PROMPT}]}
    r = meter.reserve(SECRET_KEY, describe_request("/v1/chat/completions", body), app="ChatBox")
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=30, completion_tokens=12)
    meter.observe(SECRET_KEY, "gpt-3.5-turbo", 40031)
    meter.record_topup(50, api_key=SECRET_KEY, note="淘宝充值")
    meter.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("l.db"))
    for secret in (SECRET_KEY, "SECRETsecret", "314159", "银行卡", "remember"):
        assert secret.encode() not in raw
    assert _ledger.fingerprint(SECRET_KEY).encode() in raw
    assert "SECRET" not in repr(r)


def _version_4_file(path: Path) -> None:
    """A ledger as baicai wrote it before the window log (schema version 4), with rows in the window."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    for migration in _ledger._MIGRATIONS[:4]:
        for statement in _ledger._split(migration):
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    raw.executemany(
        "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, counted, win_tokens) "
        "VALUES (?, ?, 'fp', 'sdk', 'gpt-4', 'gpt-4', 'chat', 'ok', ?, 15)",
        [(1_000.0 + i, 1_000.0 + i, 1 if i % 3 else 0) for i in range(30)])
    raw.close()
    _ledger._migrated.discard(str(path.resolve()))


def test_a_version_4_ledger_gains_the_window_log_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    _version_4_file(path)
    conn = _ledger.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _ledger.SCHEMA_VERSION >= 5
    assert _ledger.window_totals(conn, "gpt-4", 0) == (20, 300)
    assert _ledger.window_log_end(conn) == 0  # the rows before it are counted afresh, not logged
    # From now on every writer's change is logged, with the row's window contribution before and after.
    conn.execute("UPDATE requests SET win_ts = 5000, win_tokens = 20 WHERE id = 2")
    conn.execute("UPDATE requests SET status = 'error' WHERE id = 2")  # nothing the window counts: no entry
    conn.execute("DELETE FROM requests WHERE id = 4")  # counted 0: no entry
    conn.execute("DELETE FROM requests WHERE id = 3")
    assert _ledger.window_changes(conn, 0) == [
        (1, None, "gpt-4", 1001.0, 15, "gpt-4", 5000.0, 20),
        (2, None, "gpt-4", 1002.0, 15, None, None, None),
    ]
    meter = Meter(ledger_path=path, clock=lambda: 4000.0, tier="paid")
    r = meter.reserve("baicai-k", describe_request("/v1/chat/completions", {"model": "gpt-4", "messages": []}))
    assert isinstance(r, Reservation)
    assert _ledger.window_changes(conn, 2) == [(3, None, None, None, None, "gpt-4", 4000.0, r.window_tokens)]


def test_a_migration_killed_halfway_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """Each migration is one transaction: a process killed inside it (here just after the window log's table was
    made, before its triggers) leaves a version-4 file that the next process migrates."""
    import os
    import subprocess
    import sys

    path = tmp_path / "v4.db"
    _version_4_file(path)
    killer = (
        "import os, signal, sqlite3, sys\n"
        "from baicai_sdk import _ledger\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.set_trace_callback(lambda s: os.kill(os.getpid(), signal.SIGKILL) if 'CREATE TRIGGER' in s else None)\n"
        "_ledger.migrate(conn)\n"
    )
    done = subprocess.run([sys.executable, "-c", killer, str(path)], timeout=60, env=dict(os.environ))
    assert done.returncode == -9
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 4
        assert check.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'window_log'").fetchone()[0] == 0
    finally:
        check.close()
    conn = _ledger.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _ledger.SCHEMA_VERSION
    assert _ledger.window_totals(conn, "gpt-4", 0) == (20, 300)
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"requests_window_insert", "requests_window_update", "requests_window_delete"} <= triggers


def test_the_window_log_is_trimmed_to_its_newest_entries_and_a_gap_shows(tmp_path: Path) -> None:
    conn = _ledger.connect(tmp_path / "l.db")
    conn.executemany(
        "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, win_tokens) "
        "VALUES (?, ?, 'fp', 'sdk', 'gpt-4', 'gpt-4', 'chat', 'ok', 1)", [(float(i), float(i)) for i in range(10)])
    _ledger.trim_window_log(conn, 3)
    assert [r[0] for r in conn.execute("SELECT seq FROM window_log")] == [7, 8, 9, 10]
    assert _ledger.window_changes(conn, 2) is None  # entries 3…6 are gone: the reader must count afresh
    assert [r[0] for r in _ledger.window_changes(conn, 6) or []] == [7, 8, 9, 10]
    assert _ledger.window_changes(conn, 6, most=3) is None  # too far behind: counting afresh is cheaper
    assert [r[0] for r in _ledger.window_changes(conn, 7, most=3) or []] == [8, 9, 10]
    _ledger.trim_window_log(conn, 0)
    conn.execute("DELETE FROM requests WHERE id = 1")
    assert [r[0] for r in conn.execute("SELECT seq FROM window_log")] == [10, 11]  # numbers are never reused


def test_a_writers_wal_reaches_the_file_from_a_background_thread(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A Meter's commits no longer checkpoint the WAL themselves every 1,000 pages (its fsyncs were the 99th
    percentile of a request, 17–28 ms): a thread of the process does it. Seen from outside: the ledger file alone,
    without its WAL, soon holds the rows — though the writer's own threshold is far away."""
    import shutil

    from baicai_sdk.testing import wait_until

    monkeypatch.setattr(_ledger, "CHECKPOINT_SECONDS", 0.05)
    path = tmp_path / "l.db"
    meter = Meter(ledger_path=path, tier="paid")
    assert meter._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == _ledger.WRITER_AUTOCHECKPOINT
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []})
    for _ in range(30):
        r = meter.reserve(SECRET_KEY, info)
        assert isinstance(r, Reservation)
        r.settle(prompt_tokens=3, completion_tokens=4)

    def rows_in_the_file_alone() -> bool:
        copy = tmp_path / "copy.db"
        shutil.copyfile(path, copy)
        try:
            db = sqlite3.connect(copy)
            try:
                return bool(db.execute("SELECT COUNT(*) FROM requests WHERE status = 'ok'").fetchone()[0] == 30)
            finally:
                db.close()
        except sqlite3.Error:  # copied in the middle of a checkpoint
            return False
        finally:
            copy.unlink()

    wait_until(rows_in_the_file_alone, timeout=10, what="the background checkpoint")
    reader = _ledger.connect(path)  # readers (UsageStore, the TUI) keep SQLite's own setting
    assert reader.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_the_checkpoint_thread_copies_after_many_requests_or_when_the_writes_pause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint costs ≈ 1 ms of CPU whatever it copies (its fsyncs): not one every round while requests come,
    one per :data:`CHECKPOINT_REQUESTS` requests — and whatever waits once the writes pause."""
    import time

    from baicai_sdk.testing import wait_until

    path = tmp_path / "l.db"
    checkpoints: list[tuple[int, int, int]] = []
    real = _ledger.checkpoint

    def counted(conn: sqlite3.Connection) -> tuple[int, int, int]:
        done = real(conn)
        if conn.execute("PRAGMA database_list").fetchone()[2] == str(path.resolve()):  # (not earlier tests' threads)
            checkpoints.append(done)
        return done

    monkeypatch.setattr(_ledger, "checkpoint", counted)
    monkeypatch.setattr(_ledger, "CHECKPOINT_SECONDS", 0.02)
    monkeypatch.setattr(_ledger, "CHECKPOINT_REQUESTS", 10_000)
    monkeypatch.setattr(_ledger, "CHECKPOINT_QUIET_ROUNDS", 50)
    meter = Meter(ledger_path=path, tier="paid")
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []})

    def requests(n: int) -> None:
        for _ in range(n):
            r = meter.reserve(SECRET_KEY, info)
            assert isinstance(r, Reservation)
            r.settle(prompt_tokens=3, completion_tokens=4)
            time.sleep(0.01)

    requests(40)  # 0.4 s of steady writes, 20 rounds of the thread: nothing copied yet
    assert checkpoints == []
    wait_until(lambda: checkpoints, timeout=10, what="the checkpoint after the pause")
    assert checkpoints[0][0] == 0 and checkpoints[0][1] == checkpoints[0][2] > 0  # everything copied
    monkeypatch.setattr(_ledger, "CHECKPOINT_REQUESTS", 10)
    monkeypatch.setattr(_ledger, "CHECKPOINT_QUIET_ROUNDS", 10_000)
    requests(60)  # many requests: copied while the writes go on
    assert len(checkpoints) >= 3
