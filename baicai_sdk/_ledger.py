"""The ledger: one SQLite file (WAL) shared by every process on the machine.

SDK scripts, the sidecar and the TUI all open the same file (``_paths.ledger_path()``). A request is a row in
``requests``: written as ``pending`` *before* it is sent (its estimate then holds room in the hourly window, so other
processes see requests in flight) and settled after the answer with what it really used. Rows hold counts, costs
and codes only — never prompt or completion text, and a key fingerprint, never the key.

Schema changes are numbered migrations applied in order (``PRAGMA user_version``), each in one transaction; a file
written by a newer baicai is used as is (migrations only ever add columns and tables).

A row left ``pending`` by a killed process becomes ``expired`` after :data:`PENDING_TTL` seconds: it keeps
counting in the window with its *estimate* (the relay may well have served it) until it leaves the hour.
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
    "connect",
    "fingerprint",
    "window_totals",
    "window_entries",
]

PENDING_TTL = 900.0
"""Seconds after which a ``pending`` row whose process never settled it is marked ``expired``."""

SETTLED_STATUSES = ("ok", "error", "cancelled", "dropped", "failed")
"""ok: answered; error: the relay or OpenAI refused; cancelled: the caller closed a stream early; dropped: the
connection broke mid-answer; failed: nothing reached the relay (connect error)."""

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


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """An autocommit connection (we open our own transactions) in WAL mode, migrated to :data:`SCHEMA_VERSION`."""
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
    return conn


def _open_error(path: Path, exc: Exception) -> str:
    return (
        f"无法打开用量账本 {path}（{exc}）。请检查目录权限或设置 BAICAI_HOME。 / "
        f"Cannot open the usage ledger {path} ({exc}); check the folder's permissions or set BAICAI_HOME."
    )


class ThreadConnections:
    """One connection per thread to one ledger file (sqlite3 connections must not be shared across threads)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
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
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


# ---- window queries (all index-only: (family, ts, counted, win_tokens) covers them) ----------------------------

def window_totals(
    conn: sqlite3.Connection, family: str, since: float, key_fp: str | None = None, *, until: float | None = None
) -> tuple[int, int]:
    """(requests, tokens) counted in ``family``'s window after ``since`` (up to ``until``), over all keys or one."""
    where = "family = ? AND ts > ? AND counted = 1"
    args: list[Any] = [family, since]
    if key_fp is not None:
        where = "key_fp = ? AND " + where
        args.insert(0, key_fp)
    if until is not None:
        where += " AND ts <= ?"
        args.append(until)
    row = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(win_tokens), 0) FROM requests WHERE {where}", args).fetchone()
    return int(row[0]), int(row[1])


def window_entries(
    conn: sqlite3.Connection, family: str, since: float, key_fp: str | None = None
) -> Iterator[tuple[float, int]]:
    """(time, tokens) of the counted rows in the window, oldest first (for "when does room free up").

    Lazy: the caller stops as soon as enough has left the window, so a full window of 1,000 rows costs a few reads.
    """
    if key_fp is None:
        cur = conn.execute(
            "SELECT ts, win_tokens FROM requests WHERE family = ? AND ts > ? AND counted = 1 ORDER BY ts",
            (family, since),
        )
    else:
        cur = conn.execute(
            "SELECT ts, win_tokens FROM requests WHERE key_fp = ? AND family = ? AND ts > ? AND counted = 1 "
            "ORDER BY ts",
            (key_fp, family, since),
        )
    return ((float(ts), int(tokens)) for ts, tokens in cur)


def recent_exhaustions(conn: sqlite3.Connection, family: str, since: float) -> list[tuple[Any, ...]]:
    return list(
        conn.execute(
            "SELECT ts, kind, local_requests, local_tokens, code FROM exhaustions WHERE family = ? AND ts > ?",
            (family, since),
        )
    )


def learned_tier(conn: sqlite3.Connection, key_fp: str) -> str | None:
    row = conn.execute("SELECT tier FROM learned_tiers WHERE key_fp = ?", (key_fp,)).fetchone()
    return str(row[0]) if row else None


def expire_pending(conn: sqlite3.Connection, before: float) -> int:
    cur = conn.execute("UPDATE requests SET status = 'expired' WHERE status = 'pending' AND ts < ?", (before,))
    return int(cur.rowcount or 0)


def add_topup(
    conn: sqlite3.Connection, amount_cny: float, *, ts: float, key_fp: str | None = None, note: str | None = None
) -> int:
    cur = conn.execute(
        "INSERT INTO topups (ts, amount_cny, key_fp, note) VALUES (?, ?, ?, ?)", (ts, amount_cny, key_fp, note)
    )
    return int(cur.lastrowid or 0)


def topups(conn: sqlite3.Connection) -> Sequence[tuple[Any, ...]]:
    return list(conn.execute("SELECT id, ts, amount_cny, key_fp, note FROM topups ORDER BY ts"))
