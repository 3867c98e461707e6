"""The ledger: one SQLite file (WAL) shared by every process on the machine.

SDK scripts, the sidecar and the TUI all open the same file (``_paths.ledger_path()``). A request is a row in
``requests``: written as ``pending`` *before* it is sent (its estimate then holds room in the hourly window, so other
processes see requests in flight) and settled after the answer with what it really used. Rows hold counts, costs
and codes only — never prompt or completion text, and a key fingerprint, never the key.

Schema changes are numbered migrations applied in order (``PRAGMA user_version``), each in one transaction; a file
written by a newer baicai is used as is (migrations only ever add columns and tables).

Each row carries the host, pid and process start time of its writer: the next Meter on the machine settles a
``pending`` row whose process is gone at once as ``orphaned`` (bounds, not a worst case held for the hour). Rows
of another host (a ledger on a shared disk) are settled that way after :data:`PENDING_TTL` seconds.

A row counts in the relay's hourly window from ``win_ts``: the reservation time while in flight, then the time
its answer arrived (plus :data:`ARRIVAL_FLOOR`) — an upper bound of when the relay counted it, so the local
window never frees before the relay's does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "SCHEMA_VERSION",
    "PENDING_TTL",
    "SETTLED_STATUSES",
    "TIER_UNKNOWN_REASON",
    "connect",
    "fingerprint",
    "window_totals",
    "window_entries",
]

PENDING_TTL = 900.0
"""Seconds after which a ``pending`` row of another host (whose process we cannot look up) is settled ``orphaned``."""

ARRIVAL_FLOOR = 0.25
"""Seconds added to the time an answer arrived when it becomes the row's window time (clock granularity)."""

TIER_UNKNOWN_REASON = "tier unknown: booked at the paid price, ¥0 (free) as the low end"
"""A row's ``estimate_reason`` when only its price is uncertain (the relay reported the usage, but nobody knows if
the key is free or paid): reports mark it apart from rows whose usage itself is an estimate."""
SETTLED_STATUSES = ("ok", "error", "cancelled", "dropped", "timeout", "orphaned", "failed")
"""ok: answered in full; error: the relay or OpenAI refused (a refusal before any output is not billed; an error
inside a stream is billed for what was sent); cancelled: the caller closed a stream early (the relay bills what it
generated until it noticed); dropped: the connection broke mid-answer; timeout: no answer in time after the request
was sent (it may have been served and billed); orphaned: its process died before settling it; failed: nothing
reached the relay (connect error)."""

_MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE IF NOT EXISTS requests (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,                 -- when the reservation was made (unix seconds)
        settled_at REAL,
        key_fp TEXT NOT NULL,             -- sha256 prefix of the key (never the key)
        key_hint TEXT,                    -- masked form, e.g. baicai-…abcd
        source TEXT NOT NULL,             -- sdk | sidecar | …
        app TEXT,                         -- the desktop app, for sidecar requests
        model TEXT NOT NULL,
        family TEXT,                      -- quota family; NULL when unknown
        endpoint TEXT NOT NULL,
        tier TEXT,                        -- the tier the decision assumed
        stream INTEGER NOT NULL DEFAULT 0,
        prompt_est INTEGER NOT NULL DEFAULT 0,
        completion_est INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        images INTEGER NOT NULL DEFAULT 0,
        cost_est REAL,                    -- CNY, worst case; NULL when the model has no known price
        cost REAL,                        -- CNY, actual; NULL when unknown (never 0 for an unpriced model)
        status TEXT NOT NULL,             -- pending | expired | ok | error | cancelled | dropped | failed
        relay_code INTEGER,
        http_status INTEGER,
        latency_ms INTEGER,
        counted INTEGER NOT NULL DEFAULT 1,   -- counts in the relay's hourly window
        win_tokens INTEGER NOT NULL DEFAULT 0,-- tokens held in the window: estimate while pending, then actual
        pid INTEGER
    );
    CREATE INDEX IF NOT EXISTS requests_family_ts ON requests (family, ts, counted, win_tokens);
    CREATE INDEX IF NOT EXISTS requests_key_family_ts ON requests (key_fp, family, ts, counted, win_tokens);
    CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
    CREATE INDEX IF NOT EXISTS requests_pending ON requests (ts) WHERE status = 'pending';
    CREATE TABLE IF NOT EXISTS learned_tiers (
        key_fp TEXT PRIMARY KEY,
        tier TEXT NOT NULL,
        code INTEGER,
        ts REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS exhaustions (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        key_fp TEXT,
        family TEXT NOT NULL,
        tier TEXT,
        kind TEXT NOT NULL,               -- requests | tokens
        code INTEGER NOT NULL,
        local_requests INTEGER NOT NULL,
        local_tokens INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS exhaustions_family_ts ON exhaustions (family, ts);
    CREATE TABLE IF NOT EXISTS topups (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        amount_cny REAL NOT NULL,
        key_fp TEXT,
        note TEXT
    );
    """,
    # 2: what is known about each row (measured or a bounded estimate), who wrote it (orphans), where it went (the
    # relay or another server), when the relay counted it (win_ts), and what a relay code said about which key.
    """
    ALTER TABLE requests ADD COLUMN win_ts REAL;
    UPDATE requests SET win_ts = ts;
    ALTER TABLE requests ADD COLUMN host TEXT;
    ALTER TABLE requests ADD COLUMN proc_start REAL;
    ALTER TABLE requests ADD COLUMN server TEXT;
    ALTER TABLE requests ADD COLUMN measured INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE requests ADD COLUMN cost_low REAL;
    ALTER TABLE requests ADD COLUMN cost_high REAL;
    ALTER TABLE requests ADD COLUMN completion_low INTEGER;
    ALTER TABLE requests ADD COLUMN completion_high INTEGER;
    ALTER TABLE requests ADD COLUMN estimate_reason TEXT;
    UPDATE requests SET status = 'orphaned', measured = 0, cost = cost_est, cost_low = 0, cost_high = cost_est,
        completion_tokens = completion_est, completion_low = 0, completion_high = completion_est,
        estimate_reason = 'process ended before settling', settled_at = ts WHERE status = 'expired';
    DROP INDEX IF EXISTS requests_family_ts;
    DROP INDEX IF EXISTS requests_key_family_ts;
    CREATE INDEX IF NOT EXISTS requests_family_wts ON requests (family, win_ts, counted, win_tokens);
    CREATE INDEX IF NOT EXISTS requests_key_family_wts ON requests (key_fp, family, win_ts, counted, win_tokens);
    CREATE INDEX IF NOT EXISTS requests_model_id ON requests (model, id);
    ALTER TABLE exhaustions ADD COLUMN key_requests INTEGER;
    ALTER TABLE exhaustions ADD COLUMN key_tokens INTEGER;
    CREATE TABLE IF NOT EXISTS relay_hosts (
        host TEXT PRIMARY KEY,            -- host[:port] of a base URL that answered like the relay
        how TEXT NOT NULL,                -- emulator | relay-code
        ts REAL NOT NULL
    );
    """,
    # 3: the most completion tokens a row's request can produce (its max_tokens × n, else the model's limit): the
    # high end of its estimate when its process dies (completion_est is only what the reservation held). And what a
    # row of a key whose tier is unknown costs if the key is paid (point, low; the high end is cost_high): booked at
    # ¥0 until the tier is learned, then repriced.
    """
    ALTER TABLE requests ADD COLUMN completion_cap INTEGER;
    ALTER TABLE requests ADD COLUMN paid_cost REAL;
    ALTER TABLE requests ADD COLUMN paid_cost_low REAL;
    """,
    # 4: which attempt of its app request a row is (0: the first; a client's retries count on): each attempt the
    # relay saw keeps its row (it counts in the window and may be billed), and reports count app requests.
    """
    ALTER TABLE requests ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: the window log. Every change to what a row counts in its family's hourly window (a row written, settled,
    # moved in time, counted once its server is known as the relay, deleted) adds an entry with the row's
    # contribution before and after; so does any change to the exhaustions and learned tiers a Meter remembers.
    # Triggers keep it, so every writer does — any version of baicai, any other program. A Meter then reads only
    # the entries after the last one it saw (see ``window_changes``) instead of counting the hour again.
    """
    CREATE TABLE IF NOT EXISTS window_log (
        seq INTEGER PRIMARY KEY,          -- max + 1: contiguous, the newest is never trimmed (``trim_window_log``)
        tbl TEXT,                         -- NULL: a requests row; else the table that changed
        old_family TEXT,                  -- the row's family while it counted before the change (NULL: it did not)
        old_win_ts REAL,
        old_tokens INTEGER,
        new_family TEXT,                  -- the row's family if it counts after the change (NULL: it does not)
        new_win_ts REAL,
        new_tokens INTEGER
    );
    CREATE TRIGGER IF NOT EXISTS requests_window_insert AFTER INSERT ON requests WHEN NEW.counted = 1
    BEGIN
        INSERT INTO window_log (new_family, new_win_ts, new_tokens) VALUES (NEW.family, NEW.win_ts, NEW.win_tokens);
    END;
    CREATE TRIGGER IF NOT EXISTS requests_window_update AFTER UPDATE OF family, win_ts, counted, win_tokens
        ON requests
        WHEN (OLD.counted = 1 OR NEW.counted = 1) AND (OLD.family IS NOT NEW.family OR OLD.win_ts IS NOT NEW.win_ts
            OR OLD.counted IS NOT NEW.counted OR OLD.win_tokens IS NOT NEW.win_tokens)
    BEGIN
        INSERT INTO window_log (old_family, old_win_ts, old_tokens, new_family, new_win_ts, new_tokens) VALUES (
            CASE WHEN OLD.counted = 1 THEN OLD.family END, OLD.win_ts, OLD.win_tokens,
            CASE WHEN NEW.counted = 1 THEN NEW.family END, NEW.win_ts, NEW.win_tokens);
    END;
    CREATE TRIGGER IF NOT EXISTS requests_window_delete AFTER DELETE ON requests WHEN OLD.counted = 1
    BEGIN
        INSERT INTO window_log (old_family, old_win_ts, old_tokens) VALUES (OLD.family, OLD.win_ts, OLD.win_tokens);
    END;
    CREATE TRIGGER IF NOT EXISTS exhaustions_window_insert AFTER INSERT ON exhaustions
    BEGIN INSERT INTO window_log (tbl) VALUES ('exhaustions'); END;
    CREATE TRIGGER IF NOT EXISTS exhaustions_window_update AFTER UPDATE ON exhaustions
    BEGIN INSERT INTO window_log (tbl) VALUES ('exhaustions'); END;
    CREATE TRIGGER IF NOT EXISTS exhaustions_window_delete AFTER DELETE ON exhaustions
    BEGIN INSERT INTO window_log (tbl) VALUES ('exhaustions'); END;
    CREATE TRIGGER IF NOT EXISTS learned_tiers_window_insert AFTER INSERT ON learned_tiers
    BEGIN INSERT INTO window_log (tbl) VALUES ('learned_tiers'); END;
    CREATE TRIGGER IF NOT EXISTS learned_tiers_window_update AFTER UPDATE ON learned_tiers
    BEGIN INSERT INTO window_log (tbl) VALUES ('learned_tiers'); END;
    CREATE TRIGGER IF NOT EXISTS learned_tiers_window_delete AFTER DELETE ON learned_tiers
    BEGIN INSERT INTO window_log (tbl) VALUES ('learned_tiers'); END;
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class LedgerError(RuntimeError):
    """The ledger file cannot be opened or migrated."""


def fingerprint(api_key: str) -> str:
    """What the ledger stores instead of a key (the same function as ``_keys.key_fingerprint``)."""
    from ._keys import key_fingerprint

    return key_fingerprint(api_key)


def key_hint(api_key: str) -> str:
    """``baicai-…abcd``: enough for a person to tell keys apart, never enough to use one."""
    from ._keys import mask_key

    return mask_key(api_key)


CHECKPOINT_SECONDS = 0.25
"""How often a writing process's background thread looks at the WAL (``_Checkpointer``)."""
CHECKPOINT_REQUESTS = 150
"""Requests written since the last checkpoint (≈ 2,000 WAL pages, 8 MB, at ~13 pages a request) at which the thread
copies the WAL into the ledger file. Each checkpoint costs ≈ 1.3 ms of CPU whatever it copies (mostly its two
fsyncs), so it runs when there is much to copy, not every round: every 0.25 s it cost the sidecar 0.02–0.13 ms per
request at 300–30 requests a second."""
CHECKPOINT_QUIET_ROUNDS = 20
"""Rounds without a new request (5 s) after which whatever waits in the WAL is copied anyway: the writes paused, and
the ledger file alone (a copy without its ``-wal``) then holds every row."""
CHECKPOINT_IDLE_ROUNDS = 120
"""Rounds with nothing new in the WAL after which the thread ends (its connection closed); the next write starts it."""
WRITER_AUTOCHECKPOINT = 10_000
"""Pages a writer's WAL may reach before that writer checkpoints by itself (SQLite's default is 1,000): only when the
background thread cannot keep up or does not run (a forked child, say)."""


def connect(path: str | os.PathLike[str], *, writer: bool = False) -> sqlite3.Connection:
    """An autocommit connection (we open our own transactions) in WAL mode, migrated to :data:`SCHEMA_VERSION`.

    ``writer``: a connection that writes on a request's path (the Meter's). Its commits then leave the WAL's
    checkpoint — copying pages into the file and two fsyncs, 17–28 ms at the 99th percentile of a request on this
    machine — to a background thread (:class:`_Checkpointer`), instead of the commit that happens to cross 1,000
    pages."""
    import sqlite3

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 30.0
    while True:
        conn = None
        try:
            conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            # Switching to WAL takes a lock that SQLite's busy handler does not wait for, and a process opening
            # the file while another runs WAL recovery can get SQLITE_BUSY at once: set WAL only when it is not
            # already the mode, and retry such transient "locked" errors.
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")  # may be refused on network filesystems: then rollback
            conn.execute("PRAGMA synchronous = NORMAL")
            if writer:
                conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT}")
            break
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            transient = "locked" in str(exc) or "busy" in str(exc)
            if not transient or time.monotonic() > deadline:
                raise LedgerError(_open_error(path, exc)) from exc
            time.sleep(0.01)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise LedgerError(_open_error(path, exc)) from exc
    key = str(path.resolve())
    if key not in _migrated:
        with _migrate_lock:
            if key not in _migrated:
                migrate(conn)
                _migrated.add(key)
    if writer:
        ensure_checkpointer(key)
    return conn


def ensure_checkpointer(key: str) -> None:
    """Make sure this process checkpoints the ledger at ``key`` (its resolved path) in the background, and count a
    request written (what the thread's cadence goes by): cheap enough to call on every request (two dictionary
    operations)."""
    _Checkpointer.requests[key] = _Checkpointer.requests.get(key, 0) + 1
    if _Checkpointer.running.get(key) != os.getpid():
        _Checkpointer.start(key)


class _Checkpointer:
    """A daemon thread per ledger file in a writing process: every :data:`CHECKPOINT_SECONDS` it looks at how many
    requests this process wrote (``ensure_checkpointer`` counts them) and runs a ``PASSIVE`` checkpoint (it never
    waits for, nor blocks, a reader or writer) when :data:`CHECKPOINT_REQUESTS` were written since the last one, or
    the writes paused for :data:`CHECKPOINT_QUIET_ROUNDS`. Python's ``sqlite3`` lets go of the GIL while SQLite works,
    so the sidecar's event loop and the app's threads go on meanwhile.

    (The WAL's own page count is in the ``-shm`` file's header, but this process must never open and close a file
    SQLite has open: closing any descriptor of a file drops every POSIX lock the process holds on it — SQLite's
    too, and two processes then wrote the ledger at once.)"""

    running: dict[str, int] = {}
    """ledger path → pid of the process whose thread runs for it (a forked child starts its own)."""
    requests: dict[str, int] = {}
    """ledger path → requests this process wrote to it (``ensure_checkpointer``)."""
    _lock = threading.Lock()

    @classmethod
    def start(cls, key: str) -> None:
        pid = os.getpid()
        with cls._lock:
            if cls.running.get(key) == pid:
                return
            cls.running[key] = pid
        threading.Thread(target=cls._run, args=(key, pid), name="baicai-ledger-checkpoint", daemon=True).start()

    @classmethod
    def _run(cls, key: str, pid: int) -> None:
        import sqlite3
        from urllib.parse import quote

        conn: sqlite3.Connection | None = None
        seen = copied = -1  # the request count at the last round, at the last checkpoint
        idle = 0
        try:
            while idle < CHECKPOINT_IDLE_ROUNDS:
                time.sleep(CHECKPOINT_SECONDS)
                written = cls.requests.get(key, 0)
                idle = idle + 1 if written == seen else 0
                seen = written
                if written == copied or (written - copied < CHECKPOINT_REQUESTS and idle < CHECKPOINT_QUIET_ROUNDS):
                    continue
                try:
                    if conn is None:  # (mode=rw: never creates a file that went away)
                        conn = sqlite3.connect(f"file:{quote(key)}?mode=rw", uri=True, timeout=5.0,
                                               isolation_level=None, check_same_thread=False)
                    checkpoint(conn)
                    copied = written
                except sqlite3.Error:  # the file moved away (doctor --repair), a full disk…: the writers' own
                    # checkpoint at WRITER_AUTOCHECKPOINT pages still bounds the WAL
                    if conn is not None:
                        conn.close()
                        conn = None
                    if not os.path.exists(key):
                        break
        finally:
            with cls._lock:
                if cls.running.get(key) == pid:
                    del cls.running[key]
            if conn is not None:
                conn.close()


def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """A ``PASSIVE`` checkpoint of the ledger ``conn`` is open on: (busy, pages in the WAL, pages copied)."""
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(copied)


def _open_error(path: Path, exc: Exception) -> str:
    return (
        f"无法打开用量账本 {path}（{exc}）。请检查目录权限或设置 BAICAI_HOME。 / "
        f"Cannot open the usage ledger {path} ({exc}); check the folder's permissions or set BAICAI_HOME."
    )


class ThreadConnections:
    """One connection per thread to one ledger file (sqlite3 connections must not be shared across threads)."""

    def __init__(self, path: str | os.PathLike[str], *, writer: bool = False) -> None:
        self.path = Path(path)
        self.writer = writer
        """Connections that write on a request's path: their WAL checkpoints run in the background."""
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, writer=self.writer)
        return conn

    def close(self) -> None:
        """Close this thread's connection (the others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own ``BEGIN IMMEDIATE`` transaction; returns the new version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                for statement in _split(_MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def _split(script: str) -> list[str]:
    """The statements of a migration (comments dropped); a trigger's body keeps its own semicolons."""
    import sqlite3

    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    statements: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().rstrip(";").strip())
    return statements


# ---- window queries (all index-only: (family, win_ts, counted, win_tokens) covers them) ------------------------

def window_totals(
    conn: sqlite3.Connection, family: str, since: float, key_fp: str | None = None, *, until: float | None = None
) -> tuple[int, int]:
    """(requests, tokens) counted in ``family``'s window after ``since`` (up to ``until``), over all keys or one."""
    where = "family = ? AND win_ts > ? AND counted = 1"
    args: list[Any] = [family, since]
    if key_fp is not None:
        where = "key_fp = ? AND " + where
        args.insert(0, key_fp)
    if until is not None:
        where += " AND win_ts <= ?"
        args.append(until)
    row = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(win_tokens), 0) FROM requests WHERE {where}", args).fetchone()
    return int(row[0]), int(row[1])


def window_span(
    conn: sqlite3.Connection, family: str, since: float, until: float | None = None
) -> tuple[int, int, float | None]:
    """(requests, tokens) counted in ``family``'s window in (``since``, ``until``] (no upper bound when None), and
    the window time of the first counted row after ``until`` (else ``since``): no row leaves the window before it,
    so a caller keeping the totals need not look again until the window's start passes it. One statement."""
    after = since if until is None else until
    bound, args = ("", [family, since]) if until is None else (" AND win_ts <= ?", [family, since, until])
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(win_tokens), 0), (SELECT win_ts FROM requests WHERE family = ? AND win_ts > ? "
        "AND counted = 1 ORDER BY win_ts LIMIT 1) FROM requests WHERE family = ? AND win_ts > ? AND counted = 1"
        + bound, [family, after, *args]).fetchone()
    return int(row[0]), int(row[1]), None if row[2] is None else float(row[2])


def window_entries(
    conn: sqlite3.Connection, family: str, since: float, key_fp: str | None = None
) -> Iterator[tuple[float, int]]:
    """(time, tokens) of the counted rows in the window, oldest first (for "when does room free up").

    Lazy: the caller stops as soon as enough has left the window, so a full window of 1,000 rows costs a few reads.
    """
    if key_fp is None:
        cur = conn.execute(
            "SELECT win_ts, win_tokens FROM requests WHERE family = ? AND win_ts > ? AND counted = 1 ORDER BY win_ts",
            (family, since),
        )
    else:
        cur = conn.execute(
            "SELECT win_ts, win_tokens FROM requests WHERE key_fp = ? AND family = ? AND win_ts > ? AND counted = 1 "
            "ORDER BY win_ts",
            (key_fp, family, since),
        )
    return ((float(ts), int(tokens)) for ts, tokens in cur)


def pending_tokens(conn: sqlite3.Connection, family: str, since: float, key_fp: str | None = None) -> int:
    """Tokens held in the window by reservations still in flight (their estimates; the relay counts none of it
    until they finish). Few rows: the partial ``requests_pending`` index finds them (``+family``: not the family's
    window index, which would read every row of the hour)."""
    where = "status = 'pending' AND ts > ? AND +family = ? AND counted = 1 AND win_ts > ?"
    args: list[Any] = [since - PENDING_TTL, family, since]
    if key_fp is not None:
        where += " AND +key_fp = ?"
        args.append(key_fp)
    row = conn.execute(f"SELECT COALESCE(SUM(win_tokens), 0) FROM requests WHERE {where}", args).fetchone()
    return int(row[0])


WINDOW_LOG_KEEP = 10_000
"""Entries of the window log kept when it is trimmed: a Meter further behind than that counts its windows afresh."""


WINDOW_CHANGES_MAX = 1_000
"""More entries than this since a view's last look are not applied one by one (≈1.5 ms per 1,000): it counts afresh
(0.13 ms at 1,000 rows in the window, ~3 ms at 20,000)."""


def window_changes(conn: sqlite3.Connection, after: int, most: int | None = None) -> list[tuple[Any, ...]] | None:
    """The window log's entries after ``after``, oldest first: (seq, tbl, old_family, old_win_ts, old_tokens,
    new_family, new_win_ts, new_tokens). None when some of them were trimmed away (entries are numbered without
    gaps, so the first one must be ``after + 1``) or there are more than ``most`` (default
    :data:`WINDOW_CHANGES_MAX`): the caller counts afresh."""
    most = WINDOW_CHANGES_MAX if most is None else most
    rows = conn.execute(
        "SELECT seq, tbl, old_family, old_win_ts, old_tokens, new_family, new_win_ts, new_tokens FROM window_log "
        "WHERE seq > ? ORDER BY seq LIMIT ?", (after, most + 1)).fetchall()
    if rows and (rows[0][0] != after + 1 or len(rows) > most):
        return None
    return rows


def window_log_end(conn: sqlite3.Connection) -> int:
    """The newest window log entry's number (0: none yet): counts made now include every change up to it."""
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM window_log").fetchone()[0])


def trim_window_log(conn: sqlite3.Connection, keep: int = WINDOW_LOG_KEEP) -> None:
    """Drop all but the newest ``keep`` entries (never the newest one: numbers are never reused)."""
    conn.execute("DELETE FROM window_log WHERE seq < (SELECT MAX(seq) FROM window_log) - ?", (max(0, keep),))


def recent_exhaustions(conn: sqlite3.Connection, family: str, since: float) -> list[tuple[Any, ...]]:
    return list(
        conn.execute(
            "SELECT ts, kind, local_requests, local_tokens, code, key_fp, tier, key_requests, key_tokens "
            "FROM exhaustions WHERE family = ? AND ts > ?",
            (family, since),
        )
    )


def recent_completions(conn: sqlite3.Connection, model: str, limit: int = 200) -> list[int]:
    """Completion tokens of this model's latest measured answers (newest first), for sizing reservations."""
    return [int(r[0]) for r in conn.execute(
        "SELECT completion_tokens FROM requests WHERE model = ? AND status = 'ok' AND measured = 1 "
        "AND completion_tokens IS NOT NULL ORDER BY id DESC LIMIT ?", (model, limit))]


def relay_hosts(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(h): str(how) for h, how in conn.execute("SELECT host, how FROM relay_hosts")}


def add_relay_host(conn: sqlite3.Connection, host: str, how: str, ts: float) -> None:
    conn.execute("INSERT OR IGNORE INTO relay_hosts (host, how, ts) VALUES (?, ?, ?)", (host, how, ts))


def learned_tier(conn: sqlite3.Connection, key_fp: str) -> str | None:
    row = conn.execute("SELECT tier FROM learned_tiers WHERE key_fp = ?", (key_fp,)).fetchone()
    return str(row[0]) if row else None


def pending_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(id, ts, host, pid, proc_start) of every row still in flight."""
    return list(conn.execute("SELECT id, ts, host, pid, proc_start FROM requests WHERE status = 'pending'"))


def add_topup(
    conn: sqlite3.Connection, amount_cny: float, *, ts: float, key_fp: str | None = None, note: str | None = None
) -> int:
    cur = conn.execute(
        "INSERT INTO topups (ts, amount_cny, key_fp, note) VALUES (?, ?, ?, ?)", (ts, amount_cny, key_fp, note)
    )
    return int(cur.lastrowid or 0)


def topups(conn: sqlite3.Connection) -> Sequence[tuple[Any, ...]]:
    return list(conn.execute("SELECT id, ts, amount_cny, key_fp, note FROM topups ORDER BY ts"))
