"""When the ledger file cannot be used: keep serving from memory and say so once; check and repair it for ``doctor``.

The ledger is bookkeeping, never a gate on availability. A truncated or garbled file, a file of another schema, a
read-only data folder or a full disk used to fail every request before it left the machine. Now:

* :class:`FallbackConnections` hands out the ledger's per-thread connections. When opening or writing the file
  fails with a SQLite error, :meth:`FallbackConnections.degrade` switches this *process* (for that file) to an
  in-memory ledger — SQLite's ``memdb`` VFS, shared by every thread, with the same schema and locking — seeded with
  the last hour's rows when the file is still readable (so the quota gate stays as safe as it can), and warns once
  (:class:`BaicaiLedgerWarning`, Chinese first, with the fix). It stays in memory until the process ends: a ledger
  that flips back and forth would count a window twice or not at all.
* :func:`degrades` wraps the Meter's methods that touch the file: a failure degrades, then the call runs again on
  the in-memory ledger. Nothing else in the Meter knows about it.
* :func:`check` is ``baicai doctor``'s view: ``PRAGMA quick_check``, the schema, and a real write to the folder.
* :func:`repair` moves the damaged file aside (renamed, never deleted), salvages what rows it can read, and starts
  a fresh ledger holding them.
* :func:`problem_line` is the one bilingual line every CLI command prints for a damaged ledger.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from . import _ledger
from ._keys.errors import _user_stacklevel
from ._ledger import LedgerError, ThreadConnections
from ._text import Text

__all__ = [
    "BaicaiLedgerWarning",
    "advice",
    "FallbackConnections",
    "LedgerCheck",
    "RepairResult",
    "check",
    "classify",
    "degrades",
    "degraded_reason",
    "is_ledger_failure",
    "problem_line",
    "repair",
]

Damage = Literal["corrupt", "schema", "readonly", "full", "locked", "other"]

LEDGER_FAILURES: tuple[type[BaseException], ...] = (sqlite3.DatabaseError, LedgerError)
"""What "the ledger cannot be used" looks like (``OperationalError`` and ``IntegrityError`` are DatabaseErrors)."""
_OPEN_FAILURES: tuple[type[BaseException], ...] = (*LEDGER_FAILURES, OSError)
"""Opening may fail before SQLite runs at all: the data folder cannot even be made (OSError)."""

_SEED_SECONDS = 3600.0 + _ledger.PENDING_TTL
"""How far back the in-memory ledger copies rows from a readable file: the quota window, plus rows still pending."""


_DISK_VFS = "win32" if os.name == "nt" else "unix"

LOCKED_RETRY_SECONDS = 300.0
"""How long a process serves from memory after the ledger file stayed locked past the busy timeout."""


class BaicaiLedgerWarning(UserWarning):
    """The ledger file cannot be used: this process keeps serving with an in-memory ledger (shown once)."""


def is_ledger_failure(exc: BaseException) -> bool:
    return isinstance(exc, LEDGER_FAILURES)


def classify(exc: BaseException, path: str | os.PathLike[str] | None = None) -> Damage:
    """What kind of trouble an error from opening or writing the ledger means (it decides the advice).

    With ``path``, a full disk is recognised by its free space too: SQLite reports one that cannot hold the WAL
    index as "unable to open database file"."""
    kind = _classify_text(exc)
    if path is not None and kind in ("readonly", "other", "corrupt") and _disk_full(Path(path)):
        return "full"
    return kind


def _disk_full(path: Path) -> bool:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < 64 * 1024
    except OSError:
        return False


def _classify_text(exc: BaseException) -> Damage:
    text = " ".join(str(e) for e in _chain(exc)).lower()
    if any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in _chain(exc)):
        return "full"
    if any(isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) for e in _chain(exc)):
        return "readonly"
    if "disk is full" in text or "no space" in text or "sqlite_full" in text:
        return "full"
    if "readonly" in text or "read-only" in text or "permission denied" in text or "unable to open" in text:
        return "readonly"
    if "no such column" in text or "no such table" in text or "has no column" in text or "schema" in text:
        return "schema"
    if "not a database" in text or "malformed" in text or "corrupt" in text or "disk i/o" in text:
        return "corrupt"
    if "locked" in text or "busy" in text:
        return "locked"
    return "other"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _sqlite_reason(exc: BaseException) -> str:
    """The SQLite message behind ``exc`` (LedgerError wraps it in a sentence of its own)."""
    for e in _chain(exc):
        if isinstance(e, sqlite3.Error):
            return str(e)
    return str(exc)


def _advice(kind: Damage, path: Path) -> tuple[str, str, str, str]:
    """(what, what in English, fix, fix in English)."""
    folder = path.parent
    repair_zh = "运行 `baicai doctor --repair`（损坏的文件会改名保留，不会删除，能读出的记录会搬到新账本）"
    repair_en = "run `baicai doctor --repair` (the damaged file is renamed and kept, never deleted; readable rows " \
                "move to a fresh ledger)"
    if kind == "corrupt":
        return "用量账本文件已损坏", "the usage ledger file is damaged", repair_zh, repair_en
    if kind == "schema":
        return ("用量账本不是 baicai 能读的格式（表结构不符）", "the usage ledger has a schema baicai cannot use",
                repair_zh, repair_en)
    if kind == "readonly":
        return (f"用量账本所在目录不可写（{folder}）", f"the usage ledger's folder is not writable ({folder})",
                f"让该目录可写（如 chmod u+w {folder}），或用 BAICAI_HOME 换一个目录",
                f"make the folder writable (e.g. chmod u+w {folder}) or point BAICAI_HOME elsewhere")
    if kind == "full":
        return ("磁盘已满，用量账本写不进去", "the disk is full: the usage ledger cannot be written",
                f"在 {folder} 所在磁盘上腾出空间，或用 BAICAI_HOME 换一个磁盘",
                f"free some space on the disk holding {folder}, or point BAICAI_HOME to another disk")
    if kind == "locked":
        return ("用量账本被另一个程序长时间锁住", "the usage ledger is held locked by another program",
                "关闭卡住的 baicai 进程后重试；仍不行再运行 `baicai doctor`",
                "close the stuck baicai process and retry; if that does not help, run `baicai doctor`")
    return ("用量账本无法使用", "the usage ledger cannot be used",
            "运行 `baicai doctor` 查看原因；必要时 `baicai doctor --repair`",
            "run `baicai doctor` to see why; if needed `baicai doctor --repair`")


def advice(kind: Damage, path: str | os.PathLike[str]) -> tuple[str, str]:
    """The fix for a kind of damage: (Chinese, English)."""
    _, _, fix, fix_en = _advice(kind, Path(path))
    return fix, fix_en


def problem_line(path: str | os.PathLike[str], exc: BaseException) -> str:
    """One line naming the trouble and the fix, in the user's language (CLI commands print this instead of a
    traceback)."""
    path = Path(path)
    what, what_en, fix, fix_en = _advice(classify(exc, path), path)
    reason = _sqlite_reason(exc)[:160]
    return str(Text(f"{what}：{path}（{reason}）。{fix}。", f"{what_en}: {path} ({reason}). To fix: {fix_en}."))


def _degraded_line(path: Path, exc: BaseException) -> str:
    kind = classify(exc, path)
    what, what_en, fix, fix_en = _advice(kind, path)
    reason = _sqlite_reason(exc)[:160]
    if kind == "locked":
        minutes = int(LOCKED_RETRY_SECONDS // 60)
        return str(Text(f"{what}（{reason}）：本进程在 {minutes} 分钟内改用内存账本继续发送请求，之后再用 {path}。修复：{fix}。",
                        f"{what_en} ({reason}): this process keeps sending requests with an in-memory ledger for "
                        f"{minutes} minutes, then uses {path} again. To fix: {fix_en}."))
    return str(Text(f"{what}（{reason}）：本进程改用内存账本继续发送请求，本次运行的用量不会写入 {path}。修复：{fix}。",
                    f"{what_en} ({reason}): this process keeps sending requests with an in-memory ledger; its usage "
                    f"will not be saved to {path}. To fix: {fix_en}."))


# -- the in-memory ledger ----------------------------------------------------------------------------------------
@dataclass
class _Fallback:
    uri: str
    reason: BaseException
    anchor: sqlite3.Connection
    """Kept open for the life of the process: a memdb database lives while one connection to it does."""
    retry_file_at: float | None = None
    """For a file that was only locked (another process held it past the busy timeout): when to use it again.
    Damage stays in memory for the process's life; a lock passes, and a gate that stopped seeing the other
    processes' bookings for good would be worse than one request waiting on the lock again."""


_fallbacks: dict[str, _Fallback] = {}
_fallback_lock = threading.Lock()
_counter = 0


def _key(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path.absolute())


def degraded_reason(path: str | os.PathLike[str]) -> BaseException | None:
    """Why this process serves ``path``'s ledger from memory, or None when it uses the file."""
    found = _fallbacks.get(_key(Path(path)))
    return None if found is None else found.reason


def _memory_connect(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _seed(conn: sqlite3.Connection, path: Path, since: float) -> int:
    """Copy the recent rows of a still-readable file (disk full, read-only folder); 0 when nothing can be read."""
    if not path.exists():
        return 0
    copied = 0
    for options in ("mode=ro", "immutable=1"):  # immutable: a read-only folder where the WAL index cannot be made
        try:
            # The file's own VFS: without it the attached database would be another in-memory one.
            conn.execute("ATTACH DATABASE ? AS old", (f"file:{quote(str(path))}?{options}&vfs={_DISK_VFS}",))
        except sqlite3.Error:
            continue
        try:
            for table, where, args in (("requests", "ts > ?", (since,)), ("exhaustions", "ts > ?", (since,)),
                                       ("learned_tiers", "1", ())):
                try:
                    ours = [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")]
                    theirs = {r[1] for r in conn.execute(f"PRAGMA old.table_info({table})")}
                    columns = ", ".join(c for c in ours if c in theirs)
                    if not columns:
                        continue
                    cur = conn.execute(f"INSERT OR IGNORE INTO main.{table} ({columns}) "
                                       f"SELECT {columns} FROM old.{table} WHERE {where}", args)
                    copied += max(cur.rowcount, 0)
                except sqlite3.Error:
                    continue
        finally:
            try:
                conn.execute("DETACH DATABASE old")
            except sqlite3.Error:
                pass
        if copied:
            break
    return copied


def _start_fallback(path: Path, exc: BaseException, now: float) -> _Fallback:
    global _counter
    with _fallback_lock:
        key = _key(path)
        found = _fallbacks.get(key)
        if found is not None:
            return found
        _counter += 1
        uri = f"file:/baicai-ledger-{os.getpid()}-{_counter}?vfs=memdb"
        anchor = _memory_connect(uri)
        _ledger.migrate(anchor)
        _seed(anchor, path, now - _SEED_SECONDS)
        retry_at = now + LOCKED_RETRY_SECONDS if classify(exc) == "locked" else None
        found = _fallbacks[key] = _Fallback(uri=uri, reason=exc, anchor=anchor, retry_file_at=retry_at)
    # at the user's own line (a fixed level pointed into _meter.py, under openai's and httpx2's frames)
    warnings.warn(_degraded_line(path, exc), BaicaiLedgerWarning, stacklevel=_user_stacklevel())
    return found


class FallbackConnections(ThreadConnections):
    """The ledger's per-thread connections, which fall back to an in-memory ledger when the file fails.

    ``degrade_on_error=False`` (readers such as ``UsageStore``): use the in-memory ledger only when a writer in this
    process has degraded already, and otherwise let the error reach the caller (the CLI names the damage).
    """

    def __init__(self, path: str | os.PathLike[str], *, degrade_on_error: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, writer=degrade_on_error)
        self._fallback_key = _key(Path(path))  # resolved once: realpath on every request cost ~4 % of the sidecar's CPU
        self.degrade_on_error = degrade_on_error
        self.clock = clock
        self._memory = threading.local()

    @property
    def degraded(self) -> bool:
        return self._fallback_key in _fallbacks

    @property
    def key(self) -> str:
        """The ledger file's resolved path."""
        return self._fallback_key

    def get(self) -> sqlite3.Connection:
        fallback = _fallbacks.get(self._fallback_key)
        if fallback is not None:
            if fallback.retry_file_at is None or self.clock() < fallback.retry_file_at:
                return self._memory_conn(fallback)
            with _fallback_lock:  # the lock has had time to pass: back to the file, shared with the other processes
                if _fallbacks.get(self._fallback_key) is fallback:
                    del _fallbacks[self._fallback_key]
        try:
            return super().get()
        except _OPEN_FAILURES as exc:
            if not self.degrade_on_error:
                if isinstance(exc, OSError):
                    raise LedgerError(str(exc)) from exc
                raise
            self.degrade(exc)
            return self.get()

    def _memory_conn(self, fallback: _Fallback) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._memory, "conn", None)
        if conn is None or getattr(self._memory, "uri", None) != fallback.uri:
            conn = self._memory.conn = _memory_connect(fallback.uri)
            self._memory.uri = fallback.uri
        return conn

    def degrade(self, exc: BaseException) -> None:
        """From now on this process uses an in-memory ledger for this file (warns the first time)."""
        try:
            super().close()  # this thread's file connection; the others are never handed out again
        except sqlite3.Error:
            pass
        _start_fallback(self.path, exc, self.clock())

    def close(self) -> None:
        super().close()
        conn = getattr(self._memory, "conn", None)
        if conn is not None:
            conn.close()
            self._memory.conn = None


F = TypeVar("F", bound=Callable[..., Any])


def degrades(method: F) -> F:
    """For a method of an object with ``_connections: FallbackConnections``: when the ledger file fails, degrade to
    memory and run the method again there (once; an in-memory failure is a bug and is raised)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        connections: FallbackConnections = self._connections
        try:
            return method(self, *args, **kwargs)
        except LEDGER_FAILURES as exc:
            if connections.degraded:
                raise  # the in-memory ledger failed: a bug, not damage
            connections.degrade(exc)
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- doctor: check and repair ------------------------------------------------------------------------------------
@dataclass
class LedgerCheck:
    status: Literal["ok", "missing", "damaged", "unwritable"]
    kind: Damage | None = None
    detail: str = ""
    rows: int | None = None
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "missing")


@dataclass(frozen=True)
class _Expected:
    columns: dict[str, set[str]]
    """Every table of the current schema and its columns."""
    since: dict[tuple[str, str], int]
    """(type, name) of each table and trigger → the schema version that made it: a file of an older version lacks
    it rightly (its next Meter migrates), a file at that version or later is damaged without it."""


def _expected_schema() -> _Expected:
    """The schema the migrations build, applied one version at a time to an in-memory file."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    since: dict[tuple[str, str], int] = {}
    try:
        for version, script in enumerate(_ledger._MIGRATIONS, start=1):
            for statement in _ledger._split(script):
                conn.execute(statement)
            for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')"):
                since.setdefault((kind, name), version)
        tables = [name for kind, name in since if kind == "table"]
        return _Expected({t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}, since)
    finally:
        conn.close()


def _schema_problem(conn: sqlite3.Connection) -> str | None:
    """What the file's schema lacks for its version (``PRAGMA user_version``), in words; None when complete. A
    missing window-log trigger would leave every Meter's window counts stale without a word: it is named here."""
    expected = _expected_schema()
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    present = set(conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')"))
    for (kind, name), since in expected.since.items():
        if (kind, name) not in present and version >= since:
            return f"{kind} {name} is missing"
    for table, columns in expected.columns.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if have and not columns <= have:
            return f"table {table} lacks {', '.join(sorted(columns - have)[:5])}"
    return None


def _write_probe(folder: Path) -> OSError | None:
    """A real write in the ledger's folder (64 KiB, fsync'd): a read-only folder or a full disk shows here."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".baicai-write-check-") as probe:
            probe.write(b"\0" * 65536)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return exc
    return None


def check(path: str | os.PathLike[str]) -> LedgerCheck:
    """Integrity (``PRAGMA quick_check``), schema and writability of the ledger at ``path``; never raises."""
    path = Path(path)
    folder = path.parent
    if not path.exists():
        if folder.exists():
            problem = _write_probe(folder)
            if problem is not None:
                return LedgerCheck("unwritable", classify(problem, path), str(problem))
        return LedgerCheck("missing")
    size = path.stat().st_size
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        conn = None
        opened: BaseException | None = exc
    else:
        opened = None
    if conn is None:
        assert opened is not None
        return _failed_check(path, opened, size)
    try:
        result = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
        if result != ["ok"]:
            return LedgerCheck("damaged", "corrupt", "; ".join(result[:3])[:300], size=size)
        missing = _schema_problem(conn)
        if missing is not None:
            return LedgerCheck("damaged", "schema", missing, size=size)
        rows = None
        try:
            rows = int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
        except sqlite3.Error:
            pass
    except sqlite3.Error as exc:
        return _failed_check(path, exc, size)
    finally:
        conn.close()
    problem = _write_probe(folder)
    if problem is None and not os.access(path, os.W_OK):
        problem = PermissionError(f"{path} is read-only")
    if problem is not None:
        return LedgerCheck("unwritable", classify(problem, path), str(problem), rows=rows, size=size)
    return LedgerCheck("ok", rows=rows, size=size)


def _failed_check(path: Path, exc: BaseException, size: int) -> LedgerCheck:
    kind = classify(exc, path)
    if kind in ("readonly", "full", "locked"):
        return LedgerCheck("unwritable", kind, str(exc), size=size)
    return LedgerCheck("damaged", "corrupt" if kind == "other" else kind, str(exc), size=size)


@dataclass
class RepairResult:
    moved_to: Path | None
    salvaged: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    """Rows seen but not readable or not fitting the schema (only counted where the file still says how many)."""

    @property
    def rows(self) -> int:
        return sum(self.salvaged.values())


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return candidate


def _readable_rows(conn: sqlite3.Connection, table: str, columns: list[str], bound: int) -> tuple[list[tuple[Any, ...]], int]:
    """Every row of ``table`` that can still be read, in rowid order, stepping over unreadable stretches; (rows, ids
    skipped). Like sqlite3's ``.recover`` in spirit, without ever guessing a value. ``bound``: no rowid beyond it."""
    select = ", ".join(columns)
    try:
        return list(conn.execute(f"SELECT {select} FROM {table}")), 0
    except sqlite3.Error:
        pass
    rows: list[tuple[Any, ...]] = []
    skipped = 0
    rowid = 0
    while rowid < bound:
        try:
            for found in conn.execute(f"SELECT rowid, {select} FROM {table} WHERE rowid > ? ORDER BY rowid", (rowid,)):
                if int(found[0]) <= rowid or int(found[0]) > bound:
                    raise sqlite3.DatabaseError("rowids out of order")  # a damaged page: never loop on it
                rows.append(tuple(found[1:]))
                rowid = int(found[0])
            break  # read to the end
        except sqlite3.Error:
            rowid += 1  # the next row sits on a page that cannot be read: step past it
            skipped += 1
    return rows, skipped


def _row_bound(path: Path) -> int:
    """More rowids than the file can hold (from the page count its header claims, or its size): where to stop."""
    try:
        with path.open("rb") as f:
            header = f.read(100)
        page_size = int.from_bytes(header[16:18], "big") or 4096
        page_size = 65536 if page_size == 1 else page_size
        pages = max(int.from_bytes(header[28:32], "big"), path.stat().st_size // page_size + 1)
    except OSError:
        return 1_000_000
    return min(pages * page_size // 32, 50_000_000)


def repair(path: str | os.PathLike[str]) -> RepairResult:
    """Move the ledger (and its ``-wal``/``-shm``) aside, start a fresh one, and copy in every row that can be read.

    Never deletes: the damaged file stays next to the new one as ``<name>.damaged-<time>``.
    """
    path = Path(path)
    if not path.exists():
        _ledger.connect(path).close()
        return RepairResult(None)
    aside = _aside_name(path)
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, aside.with_name(aside.name + suffix))
    _ledger._migrated.discard(_key(path))
    with _fallback_lock:
        _fallbacks.pop(_key(path), None)  # this process may use the fresh file again
    fresh = _ledger.connect(path)
    result = RepairResult(aside)
    try:
        old = sqlite3.connect(f"file:{quote(str(aside))}?mode=ro", uri=True, timeout=5.0)
        # Read the schema even where SQLite's own check of it fails (a root page beyond a truncated end).
        old.execute("PRAGMA writable_schema = ON")
    except sqlite3.Error:
        fresh.close()
        return result
    bound = _row_bound(aside)
    try:
        for table in ("requests", "learned_tiers", "exhaustions", "topups"):
            try:
                ours = [r[1] for r in fresh.execute(f"PRAGMA table_info({table})")]
                theirs = {r[1] for r in old.execute(f"PRAGMA table_info({table})")}
            except sqlite3.Error:
                continue
            columns = [c for c in ours if c in theirs]
            if not columns:
                continue
            rows, _ = _readable_rows(old, table, columns, bound)
            marks = ", ".join("?" for _ in columns)
            kept = 0
            fresh.execute("BEGIN IMMEDIATE")
            for row in rows:
                try:
                    fresh.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({marks})", row)
                    kept += 1
                except sqlite3.Error:
                    result.lost[table] = result.lost.get(table, 0) + 1
            fresh.execute("COMMIT")
            result.salvaged[table] = kept
        # The copies went through the window log's triggers; no reader has seen this file yet (each counts afresh).
        _ledger.trim_window_log(fresh, 0)
    finally:
        old.close()
        fresh.close()
    return result
