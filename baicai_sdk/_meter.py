"""The ledger's write side: decide and reserve atomically, settle, learn from relay codes.

Every metered HTTP attempt calls :meth:`Meter.reserve` before it is sent. The decision and the ``pending`` row are
made in one ``BEGIN IMMEDIATE`` transaction: SQLite then lets one writer at a time through, so four processes
asking for the last slot of an hour cannot all get it. :meth:`Reservation.settle` replaces the estimate with what
the request really used; :meth:`Meter.observe` records what a relay code revealed (the key's tier; a window the
relay says is full although we predicted room).

The tier of a key: ``tier=`` given to the Meter (configured), else what a relay code revealed (learned, kept in the
ledger per key fingerprint), else unknown — judged as paid until the relay says otherwise: by the limits both tiers
share (a free-only limit is left to the relay's code, which teaches the tier), and booked at the paid price with ¥0
(free) as the low end; its rows are repriced when the tier is learned.

Relay rules (the hourly limits) apply only where the relay is: a base URL on the relay's host, an address that
answered like the relay (the emulator's marker header, a relay code), or when the user says so
(``relay_rules=True``, ``BAICAI_RELAY_RULES=on``). Against any other OpenAI-compatible server the gate is off and the
ledger still records (rows that do not count in the relay's windows).

Every row says what is known: ``measured`` (the relay's usage, or a complete answer counted locally) or a bounded
estimate (``completion_low``/``completion_high``, ``cost_low``/``cost_high``) with its reason. The next Meter on the
machine settles rows whose process died as ``orphaned`` at once (pid + process start time + host).
"""

from __future__ import annotations

import bisect
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _ledger
from ._catalog import Catalog, Tier, load_catalog
from ._ledger_health import FallbackConnections, degrades
from ._quota import (
    WINDOW_SECONDS,
    Decision,
    Exhaustion,
    QuotaMode,
    RequestInfo,
    TierSource,
    Window,
    decide,
    describe_request,
)
from ._text import Text

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "Meter", "Reservation", "Decision", "RequestInfo", "describe_request", "QuotaMode",
    "register_relay_host", "RELAY_HOST_SUFFIX",
]


RELAY_HOST_SUFFIX = "baicaigpt.com"
"""Base URLs on this host (or a subdomain) are the relay's: its hourly limits apply."""
_RELAY_HOSTS: set[str] = set()
"""``host:port`` of relays known in this process (an emulator started here registers itself)."""
_RESERVE_PERCENTILE = 0.95
_CLOCK_STEP = 5.0
"""Seconds the wall clock may drift from the monotonic one between two requests before it counts as a step."""
_MIN_SAMPLES = 5
_SAMPLES_TTL = 10.0


def register_relay_host(netloc: str) -> None:
    """Say that ``host:port`` is the relay (or its emulator): requests to it follow the relay's hourly limits."""
    _RELAY_HOSTS.add(netloc.lower())


def _netloc(url: Any) -> str:
    """``host:port`` of a URL (``httpx2.URL`` or text), lower-case, default ports included."""
    if isinstance(url, str):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        host, port, scheme = parts.hostname or "", parts.port, parts.scheme
    else:
        host, port, scheme = url.host or "", url.port, url.scheme
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{host.lower()}:{port}"


_process_identity: tuple[int, str, float | None] | None = None


def process_identity() -> tuple[int, str, float | None]:
    """(pid, host, process start time) that a row carries, so a later Meter can tell whether its writer lives."""
    global _process_identity
    pid = os.getpid()
    if _process_identity is None or _process_identity[0] != pid:  # computed again after a fork
        _process_identity = (pid, socket.gethostname(), _start_time(pid))
    return _process_identity


def _start_time(pid: int) -> float | None:
    if pid == os.getpid() and os.path.exists("/proc/self/stat"):
        try:
            return _own_start_time_linux()
        except (OSError, ValueError, IndexError):
            pass  # an unusual /proc: psutil knows
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # no such process, or no permission to look: unknown
        return None


def _own_start_time_linux() -> float:
    """This process's start time, computed as psutil computes ``Process().create_time()`` on Linux (the
    ``starttime`` ticks of ``/proc/self/stat`` after the boot time of ``/proc/stat``), so another process checking
    the row with psutil finds the same value. Without psutil's import: 0.8 MB of a sidecar's memory, for one
    number per process (bench/bench_memory.py); psutil stays for other processes and other systems."""
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    ticks = int(stat[stat.rindex(b")") + 2:].split()[19])  # field 22, counted after "pid (comm)"
    with open("/proc/stat", "rb") as f:
        boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime"))
    return ticks / os.sysconf("SC_CLK_TCK") + boot


def _process_alive(pid: int, started: float | None) -> bool:
    """Whether process ``pid`` still runs and is the one that started at ``started`` (pids are reused)."""
    try:
        import psutil

        if not psutil.pid_exists(pid):
            return False
        if started is None:
            return True
        return abs(float(psutil.Process(pid).create_time()) - started) < 1.0
    except ImportError:  # pragma: no cover - psutil is a dependency; keep the row until its TTL
        return True
    except Exception:  # it ended between the two calls
        return False

_SWEEP_EVERY = 60.0
_ESTIMATED = ("cancelled", "dropped", "timeout", "orphaned")
"""Statuses whose usage the relay did not report: booked as a point estimate within bounds."""
_IMAGE_UNKNOWN = "images of unknown size: the prompt counted at 1024×1024 each, bounded by the smallest and largest"
_TIER_UNKNOWN = _ledger.TIER_UNKNOWN_REASON
_REASONS = {
    "cancelled": "stream closed early: the relay bills what it generated until it noticed",
    "dropped": "connection broke mid-answer: the relay bills what it generated",
    "timeout": "no answer in time after sending: it may have been served and billed",
    "orphaned": "its process ended before settling: it may have been served and billed",
}
_MODEL_CHARS = 100
"""A model name as stored: real ones are far shorter, and a megabyte "model" sent to the sidecar must not land in
every report."""
_CATALOG_TTL = 5.0
SETTLE_FLUSH_SECONDS = 0.05
"""At most this long a deferred settle waits for the next reservation before it is written alone
(:meth:`Meter.flush_settles_soon`)."""
_SETTLE_UPDATE = (
    "UPDATE requests SET settled_at = ?, prompt_tokens = ?, completion_tokens = ?, images = ?, cost = ?, "
    "status = ?, relay_code = ?, http_status = ?, latency_ms = ?, "
    "counted = CASE WHEN counted = 2 AND ? != 0 THEN 2 ELSE ? END, win_tokens = ?, "
    "stream = COALESCE(?, stream), win_ts = MAX(COALESCE(win_ts, ts), ?), measured = ?, cost_low = ?, "
    "cost_high = ?, completion_low = ?, completion_high = ?, estimate_reason = ?, tier = ?, paid_cost = ?, "
    "paid_cost_low = ? WHERE id = ? AND status IN ('pending', 'expired')")
"""A settled row's ``UPDATE`` (see ``Meter._write_settled``)."""


class Reservation:
    """A ``pending`` ledger row for one attempt. :meth:`settle` it exactly once (extra calls are ignored)."""

    def __init__(self, meter: Meter, row_id: int, info: RequestInfo, decision: Decision, key_fp: str = "", *,
                 at: float = 0.0, window_tokens: int = 0, counted: bool = True) -> None:
        self._meter = meter
        self.id = row_id
        self.info = info
        self.decision = decision
        self.key_fp = key_fp
        self.at = at
        self.window_tokens = window_tokens
        """What the row counts in its window until settled."""
        self.counted = counted
        """False when the server is not the relay: the row is recorded but counts in no relay window."""
        self._settled = False
        self._lock = threading.Lock()

    @property
    def settled(self) -> bool:
        return self._settled

    def settle(
        self,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        images: int | None = None,
        status: str = "ok",
        relay_code: int | None = None,
        http_status: int | None = None,
        latency_ms: float | None = None,
        stream: bool | None = None,
        measured: bool = True,
        counted: bool | None = None,
        answered_at: float | None = None,
        deferred: bool = False,
    ) -> None:
        """Record what the request used. ``None`` counts fall back to the estimate for the prompt (it was sent)
        and 0 for the completion; a relay-coded error or a ``failed`` send is taken out of the window.

        ``deferred``: the row's ``UPDATE`` waits for this Meter's next transaction — the next reservation's, or
        :meth:`Meter.flush_settles` — instead of a commit of its own (see there).

        ``measured=False``: ``completion_tokens`` is only what was seen (a stream cut short, a timeout): the row
        gets bounds and a point estimate by its status. ``counted``: overrides whether the row counts in the
        relay's window (an error inside a stream that had begun does). ``answered_at``: when the answer arrived,
        the latest moment the relay can have counted the request (the row's window time)."""
        with self._lock:
            if self._settled:
                return
            self._settled = True
        self._meter._settle(
            self, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, images=images, status=status,
            relay_code=relay_code, http_status=http_status, latency_ms=latency_ms, stream=stream,
            measured=measured, counted=counted, answered_at=answered_at, deferred=deferred,
        )

    def __repr__(self) -> str:
        return f"<Reservation id={self.id} model={self.info.model!r} settled={self._settled}>"


class _LedgerView:
    """What one connection has read of the ledger, kept up to date from the window log.

    Counting a family's window afresh scans up to an hour of rows (≈0.25 ms per request at 1,000 rows, 2.8 ms at
    20,000). Every write that changes what a row counts — by this process, another one, any program — adds an
    entry to ``window_log`` (schema triggers, migration 5) with the row's contribution before and after. A view
    applies the entries after the last one it saw to its totals, so a window only needs the entries since the last
    request plus the rows that have left it — and none of those before the first counted row's window time (kept
    with the totals: while the window's start has not passed it, nothing has left). When the log no longer
    reaches back to the last entry seen (trimmed while this view was idle), everything is read afresh.

    ``sync`` and the reads after it must see one snapshot of the file: call them inside a transaction.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.seen = -1
        """The last window log entry applied (-1: nothing read yet)."""
        self.totals: dict[str, list[Any]] = {}
        """family → [since, requests, tokens, first] of its window after ``since``; ``first``: no counted row's
        window time after ``since`` is earlier (None: no row counts)."""
        self.exhaustions: dict[str, tuple[float, list[Exhaustion]]] = {}
        self.tiers: dict[str, str | None] = {}

    def sync(self) -> None:
        """Apply the changes made since the last look, or forget everything if they can no longer be read."""
        if self.seen >= 0:
            changes = _ledger.window_changes(self.conn, self.seen)
            if changes is not None:
                if changes:
                    self._apply(changes)
                return
        self.totals.clear()
        self.exhaustions.clear()
        self.tiers.clear()
        self.seen = _ledger.window_log_end(self.conn)

    def _apply(self, changes: list[tuple[Any, ...]]) -> None:
        totals = self.totals
        for _seq, table, old_family, old_at, old_tokens, new_family, new_at, new_tokens in changes:
            if table is not None:
                (self.exhaustions if table == "exhaustions" else self.tiers).clear()
                continue
            if old_family is not None:
                cached = totals.get(old_family)
                if cached is not None and old_at is not None and old_at > cached[0]:
                    cached[1] -= 1
                    cached[2] -= old_tokens
            if new_family is not None:
                cached = totals.get(new_family)
                if cached is not None and new_at is not None and new_at > cached[0]:
                    cached[1] += 1
                    cached[2] += new_tokens
                    # ``first`` stays a lower bound when a row stops counting or moves later; a row that starts
                    # counting may be the new first.
                    if cached[3] is None or new_at < cached[3]:
                        cached[3] = new_at
        self.seen = changes[-1][0]

    def window(self, family: str, since: float) -> tuple[int, int]:
        cached = self.totals.get(family)
        if cached is None or since < cached[0]:
            requests, tokens, first = _ledger.window_span(self.conn, family, since)
            self.totals[family] = [since, requests, tokens, first]
            return requests, tokens
        if cached[3] is not None and since >= cached[3]:
            left_requests, left_tokens, cached[3] = _ledger.window_span(self.conn, family, cached[0], since)
            cached[1] -= left_requests
            cached[2] -= left_tokens
        # else no row has left the window since: nothing to read
        cached[0] = since
        return cached[1], cached[2]

    def recent_exhaustions(self, family: str, since: float) -> list[Exhaustion]:
        cached = self.exhaustions.get(family)
        if cached is None or since < cached[0]:
            rows = [Exhaustion(at=float(ts), kind=kind, local_requests=int(lr), local_tokens=int(lt), code=int(code),
                               key_fp=kfp, tier=tier, key_requests=None if kr is None else int(kr),
                               key_tokens=None if kt is None else int(kt))
                    for ts, kind, lr, lt, code, kfp, tier, kr, kt
                    in _ledger.recent_exhaustions(self.conn, family, since)]
            cached = self.exhaustions[family] = (since, rows)
        return [e for e in cached[1] if e.at > since]

    def learned_tier(self, key_fp: str) -> str | None:
        if key_fp not in self.tiers:
            self.tiers[key_fp] = _ledger.learned_tier(self.conn, key_fp)
        return self.tiers[key_fp]


class Meter:
    """Quota gate and ledger writer for one source (``sdk``, ``sidecar``…). Thread-safe: one SQLite connection
    per thread. ``max_wait``: a wait longer than this is returned as a refusal (``None``: the caller decides)."""

    def __init__(
        self,
        source: str = "sdk",
        *,
        ledger_path: str | os.PathLike[str] | None = None,
        tier: Tier | None = None,
        quota: QuotaMode = "wait",
        max_wait: float | None = None,
        clock: Callable[[], float] = time.time,
        catalog: Catalog | None = None,
        relay_rules: bool | None = None,
    ) -> None:
        """``relay_rules``: True/False forces the relay's hourly limits on/off for every server; None (default)
        applies them where the relay is (see the module docstring), or as ``BAICAI_RELAY_RULES=on|off`` says."""
        if quota not in ("wait", "raise", "off"):
            raise ValueError(Text(f"quota 只能是 wait/raise/off，而不是 {quota!r}", f"quota must be wait, raise or off, not {quota!r}"))
        if tier not in (None, "free", "paid", "unknown"):
            raise ValueError(Text(f"tier 只能是 free/paid，而不是 {tier!r}", f"tier must be free or paid, not {tier!r}"))
        if ledger_path is None:
            from ._paths import ledger_path as default_path

            ledger_path = default_path()
        self.path = Path(ledger_path)
        self.source = source
        self.tier: Tier | None = None if tier == "unknown" else tier
        self.quota: QuotaMode = quota
        self.max_wait = max_wait
        self.clock = clock
        self._fixed_catalog = catalog
        self._catalog: Catalog | None = None
        self._catalog_at = 0.0
        # A ledger that cannot be opened or written degrades to memory for this process (one warning), never
        # stopping a request: see _ledger_health.
        self._connections = FallbackConnections(self.path, clock=clock)
        self._views = threading.local()
        self._last_sweep: float | None = None
        self._sweep_lock = threading.Lock()
        self.relay_rules = relay_rules
        self._relay_cache: dict[str, tuple[bool, Text, float]] = {}
        self._samples: dict[str, tuple[float, list[int]]] = {}
        self._key_id_cache: dict[str, tuple[str, str]] = {}
        self._anchor: tuple[float, float] | None = None
        """(wall, monotonic) at this Meter's last request: a step of the wall clock shows against it."""
        self._monotonic: Callable[[], float] | None = time.monotonic if clock is time.time else None
        self._deferred: list[tuple[tuple[Any, ...], str, str, dict[str, Any]]] = []
        """Settles waiting for the next transaction: (the ``UPDATE``'s parameters, model, status, values)."""
        self._deferred_lock = threading.Lock()
        self._flush_scheduled = False

    # ---- plumbing -------------------------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        """The catalogue, re-read at most every few seconds (a user's override file may change under us)."""
        if self._fixed_catalog is not None:
            return self._fixed_catalog
        tick = time.monotonic()
        if self._catalog is None or tick - self._catalog_at > _CATALOG_TTL:
            self._catalog = load_catalog()
            self._catalog_at = tick
        return self._catalog

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _view(self, conn: sqlite3.Connection) -> _LedgerView:
        """This thread's view of the ledger through ``conn`` (read ``sync`` before trusting it)."""
        view: _LedgerView | None = getattr(self._views, "view", None)
        if view is None or view.conn is not conn:
            view = self._views.view = _LedgerView(conn)
        return view

    def _key_ids(self, api_key: str) -> tuple[str, str]:
        """(fingerprint, masked hint) of a key, as rows store it: worked out once per key, not on every request
        (a SHA-256 and the masking were ~5 % of a reservation)."""
        ids = self._key_id_cache.get(api_key)
        if ids is None:
            if len(self._key_id_cache) >= 64:
                self._key_id_cache.clear()
            ids = self._key_id_cache[api_key] = (_ledger.fingerprint(api_key), _ledger.key_hint(api_key))
        return ids

    def close(self) -> None:
        """Write the deferred settles, then close this thread's connection (others close when their thread ends)."""
        self.flush_settles()
        self._connections.close()

    # ---- settles that wait for the next transaction ---------------------------------------------------------------
    @degrades
    def flush_settles(self) -> None:
        """Write the settles made with ``deferred=True`` that no reservation has written yet, in one transaction.

        A deferred settle's ``UPDATE`` goes into the next reservation's transaction (``BEGIN IMMEDIATE`` … the
        ``INSERT`` … ``COMMIT``), so a busy sidecar commits once per request instead of twice — the two commits
        rewrite mostly the same pages (the table's and each index's last page, the window log's), ~13 WAL pages a
        request in two commits against ~8 in one. Until then the row stays ``pending`` at its reservation's
        estimate, which is what the gate counts for a request in flight anyway, and a reservation of this Meter
        writes the waiting settles *before* it decides. When no reservation comes, this writes them: the caller
        schedules it (:meth:`flush_settles_soon`), and :meth:`close` calls it. A process killed meanwhile leaves
        the rows pending; the next Meter settles them as ``orphaned`` with bounds, like any request in flight."""
        if not self._deferred:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        batch = self._take_deferred()
        try:
            self._write_deferred(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._put_back(batch)
            raise

    def flush_settles_soon(self, call_later: Callable[[float, Callable[[], Any]], Any]) -> None:
        """Make sure :meth:`flush_settles` runs within :data:`SETTLE_FLUSH_SECONDS` (unless a reservation writes the
        settles first): ``call_later`` is the caller's timer — an event loop's ``call_later``, on the thread that
        reserves, so the flush never waits for that thread's write lock. One timer at a time."""
        if self._flush_scheduled or not self._deferred:
            return
        self._flush_scheduled = True

        def flush() -> None:
            self._flush_scheduled = False
            self.flush_settles()

        call_later(SETTLE_FLUSH_SECONDS, flush)

    def _take_deferred(self) -> list[tuple[tuple[Any, ...], str, str, dict[str, Any]]]:
        with self._deferred_lock:
            batch, self._deferred = self._deferred, []
        return batch

    def _put_back(self, batch: list[tuple[tuple[Any, ...], str, str, dict[str, Any]]]) -> None:
        """A transaction that was to write ``batch`` rolled back: the settles wait for the next one."""
        if batch:
            with self._deferred_lock:
                self._deferred[:0] = batch

    def _write_deferred(self, conn: sqlite3.Connection,
                        batch: list[tuple[tuple[Any, ...], str, str, dict[str, Any]]]) -> None:
        for args, model, status, values in batch:
            if conn.execute(_SETTLE_UPDATE, args).rowcount > 0:
                self._sampled(model, status, values)

    @degrades
    def tier_for(self, api_key: str) -> tuple[Tier, TierSource]:
        conn = self._conn()
        view = self._view(conn)
        view.sync()
        return self._tier(view, _ledger.fingerprint(api_key))

    def _tier(self, view: _LedgerView, key_fp: str) -> tuple[Tier, TierSource]:
        if self.tier is not None:
            return self.tier, "configured"
        learned = view.learned_tier(key_fp)
        if learned in ("free", "paid"):
            return learned, "learned"  # type: ignore[return-value]
        return "unknown", "unknown"

    # ---- where the relay's rules apply --------------------------------------------------------------------------
    @degrades
    def relay_rules_for(self, url: Any, api_key: str | None = None) -> tuple[bool, Text]:
        """(whether the relay's hourly limits apply to requests sent to ``url``, why) — the reason a :class:`Text`.

        A relay key (``baicai-…``) says the relay too: only the relay issues them, and gating a request that goes
        elsewhere by mistake costs nothing (that server refuses the key)."""
        forced = self.relay_rules
        if forced is None:
            env = os.environ.get("BAICAI_RELAY_RULES", "").strip().lower()
            if env in ("on", "1", "true", "yes"):
                forced = True
            elif env in ("off", "0", "false", "no"):
                forced = False
        if forced is not None:
            return forced, Text("按设置（BAICAI_RELAY_RULES 或 relay_rules=）", "as configured (BAICAI_RELAY_RULES or relay_rules=)")
        if url is None:
            return True, Text("按设置", "as configured")
        netloc = _netloc(url)
        host = netloc.rsplit(":", 1)[0]
        if host == RELAY_HOST_SUFFIX or host.endswith("." + RELAY_HOST_SUFFIX):
            return True, Text("白菜GPT 中转地址", "the BaicaiGPT relay's address")
        if netloc in _RELAY_HOSTS:
            return True, Text("白菜GPT 模拟器", "the BaicaiGPT emulator")
        if api_key is not None and api_key.startswith("baicai-"):
            return True, Text("白菜GPT 的密钥", "a BaicaiGPT relay key")
        cached = self._relay_cache.get(netloc)
        tick = time.monotonic()
        if cached is None or (not cached[0] and tick - cached[2] > _CATALOG_TTL):
            # Only a ledger that exists can remember an address (asking must not create one: `baicai doctor`).
            how = _ledger.relay_hosts(self._conn()).get(netloc) if self.path.exists() else None
            reason = (Text(f"该地址曾像白菜GPT 中转一样应答（{how}）", f"this address answered like the relay ({how})")
                      if how else Text("不是白菜GPT 中转：不限额，只记账", "not the BaicaiGPT relay: no hourly limits, recorded only"))
            cached = self._relay_cache[netloc] = (how is not None, reason, tick)
        return cached[0], cached[1]

    @degrades
    def learn_relay_host(self, url: Any, how: str) -> None:
        """Remember that ``url``'s server answered like the relay (its emulator's marker, a relay code)."""
        netloc = _netloc(url)
        cached = self._relay_cache.get(netloc)
        if cached is not None and cached[0]:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            _ledger.add_relay_host(conn, netloc, how, self.clock())
            # Requests already sent there before we knew now count in the relay's windows.
            conn.execute("UPDATE requests SET counted = 1 WHERE server = ? AND counted = 2", (netloc,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._relay_cache.pop(netloc, None)

    # ---- sizing a reservation -----------------------------------------------------------------------------------
    def _completion_samples(self, conn: sqlite3.Connection, model: str) -> list[int]:
        """This machine's recent measured completions of ``model``, sorted (re-read every few seconds)."""
        tick = time.monotonic()
        cached = self._samples.get(model)
        if cached is None or tick - cached[0] > _SAMPLES_TTL:
            cached = self._samples[model] = (tick, sorted(_ledger.recent_completions(conn, model)))
        return cached[1]

    def typical_completion(self, model: str, *, percentile: float = 0.5, conn: sqlite3.Connection | None = None
                           ) -> int | None:
        """The ``percentile`` of this machine's recent completions of ``model`` (None: too few to say)."""
        samples = self._completion_samples(conn or self._conn(), model)
        if len(samples) < _MIN_SAMPLES:
            return None
        index = min(len(samples) - 1, max(0, math.ceil(percentile * len(samples)) - 1))
        return samples[index]

    def completion_limit(self, info: RequestInfo) -> int:
        """The most completion tokens ``info`` can produce: its ``max_tokens`` (× n), else the model's limit."""
        if info.max_tokens_given:
            return info.max_completion_tokens
        chat = self.catalog.chat(info.model)
        if chat is not None and chat.context:
            return max(0, chat.context - info.prompt_tokens)
        return info.max_completion_tokens

    def _sized(self, conn: sqlite3.Connection, info: RequestInfo) -> RequestInfo:
        """Without ``max_tokens``, reserve what this model's answers here usually need (a high percentile of the
        recent ones, capped by the model's limit) instead of a fixed default."""
        if info.max_tokens_given or info.endpoint not in ("chat", "completions") or not info.model:
            return info
        high = self.typical_completion(info.model, percentile=_RESERVE_PERCENTILE, conn=conn)
        if high is None:
            return info
        import dataclasses

        per_request = min(self.completion_limit(info), max(16, math.ceil(high * 1.25)))
        return dataclasses.replace(info, max_completion_tokens=per_request)

    # ---- deciding -------------------------------------------------------------------------------------------
    def _decide(
        self, conn: sqlite3.Connection, api_key: str, info: RequestInfo, now: float, *, when: bool = True
    ) -> Decision:
        """``when=False``: the decision without what only an enforced refusal needs (the time room frees up, which
        reads the window's rows, and the key's own window for the reason's wording)."""
        view = self._view(conn)
        view.sync()
        key_fp = self._key_ids(api_key)[0]
        tier, tier_source = self._tier(view, key_fp)
        family = info.family
        if family is None:
            return decide(info, tier=tier, tier_source=tier_source, ip_window=Window(0, 0), key_window=Window(0, 0),
                          now=now, catalog=self.catalog, max_wait=self.max_wait)
        catalog = self.catalog
        since = now - WINDOW_SECONDS
        ip = view.window(family, since)
        exhaustions = view.recent_exhaustions(family, since)

        def entries(scope: str) -> Iterator[tuple[float, int]]:
            return _ledger.window_entries(conn, family, since, key_fp if scope == "key" else None)

        def pending(scope: str) -> int:
            return _ledger.pending_tokens(conn, family, since, key_fp if scope == "key" else None)

        def run(key_window: Window) -> Decision:
            return decide(
                info, tier=tier, tier_source=tier_source, ip_window=Window(*ip), key_window=key_window, now=now,
                catalog=catalog, exhaustions=exhaustions, max_wait=self.max_wait,
                entries_loader=entries if when else None, pending_loader=pending, key_fp=key_fp,
            )

        # Both windows are judged by this key's tier's limits and a key's rows are a subset of the IP's, so the key
        # window binds only when the IP's does — or when the relay told this key its window was full: count it
        # only then, not on every request.
        own_exhaustion = any(e.key_fp == key_fp for e in exhaustions)
        decision = run(Window(*_ledger.window_totals(conn, family, since, key_fp)) if own_exhaustion
                       else Window(0, 0))
        if decision.kind != "allow" and when and not own_exhaustion:
            decision = run(Window(*_ledger.window_totals(conn, family, since, key_fp)))
        return decision

    @degrades
    def decide(self, api_key: str, request: RequestInfo, *, url: Any = None) -> Decision:
        """The decision for ``request`` now, without reserving anything (``baicai estimate``, status pages).
        ``url``: where it would be sent (no hourly limits unless that is the relay)."""
        conn = self._conn()
        applies, why = self.relay_rules_for(url, api_key)
        if not applies:
            return self._no_rules_decision(conn, api_key, request, why)
        if conn.in_transaction:
            return self._decide(conn, api_key, self._sized(conn, request), self.clock())
        conn.execute("BEGIN")  # the window log and the rows it adjusts read in one snapshot
        try:
            return self._decide(conn, api_key, self._sized(conn, request), self.clock())
        finally:
            conn.execute("COMMIT")

    def _no_rules_decision(self, conn: sqlite3.Connection, api_key: str, request: RequestInfo, why: Text) -> Decision:
        view = self._view(conn)
        view.sync()
        tier, tier_source = self._tier(view, self._key_ids(api_key)[0])
        return Decision("allow", family=request.family, tier=tier, tier_source=tier_source, relay_rules=False,
                        request_tokens=request.estimated_tokens, notes=(why.en,))

    @degrades
    def reserve(
        self, api_key: str, request: RequestInfo, *, app: str | None = None, enforce: bool | None = None,
        url: Any = None, attempt: int = 0,
    ) -> Reservation | Decision:
        """Decide and, when allowed (or not enforced), write the ``pending`` row — in one transaction.

        Returns the :class:`Reservation` to settle, or the ``wait``/``refuse`` :class:`Decision` (nothing written).
        ``enforce=False`` (or ``quota="off"``) records the request whatever the decision. ``url``: where it is
        sent; when that is not the relay, the request is recorded but neither gated nor counted in a window.
        ``attempt``: which try of its app request this is (0: the first; a client's retries count on).
        """
        if enforce is None:
            enforce = self.quota != "off"
        conn = self._conn()
        now = self.clock()
        self._watch_clock(conn, now)
        if self._last_sweep is None or now - self._last_sweep > _SWEEP_EVERY or now < self._last_sweep:
            self._last_sweep = now
            self._settle_orphans(conn, now)
            _ledger.trim_window_log(conn)
        if not self._connections.degraded:
            _ledger.ensure_checkpointer(self._connections.key)  # (it ends after 30 s without writes)
        applies, why = self.relay_rules_for(url, api_key)
        server = None if url is None else _netloc(url)
        key_fp, key_hint = self._key_ids(api_key)
        pid, host, started = process_identity()
        conn.execute("BEGIN IMMEDIATE")
        batch = self._take_deferred() if self._deferred else None
        try:
            if batch:
                self._write_deferred(conn, batch)  # before deciding: the window sees what they settled
            request = self._sized(conn, request)
            if applies:
                # Not enforced (quota="off"): recorded whatever the decision, so its wait time is never needed.
                decision = self._decide(conn, api_key, request, now, when=enforce)
            else:
                decision = self._no_rules_decision(conn, api_key, request, why)
            if enforce and decision.kind != "allow":
                conn.execute("COMMIT")
                return decision
            # Not the relay as far as we know: recorded, counted in no window (2: would count, should the server
            # turn out to be the relay — then learn_relay_host counts it).
            counted = 1 if applies else 2
            window_tokens = decision.request_tokens or request.estimated_tokens
            cur = conn.execute(
                "INSERT INTO requests (ts, win_ts, key_fp, key_hint, source, app, model, family, endpoint, tier, "
                "stream, prompt_est, completion_est, images, cost_est, status, counted, win_tokens, pid, host, "
                "proc_start, server, completion_cap, attempt) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now, now, key_fp, key_hint, self.source, app, request.model[:_MODEL_CHARS],
                    request.family,
                    request.endpoint, decision.tier, int(request.stream), request.prompt_tokens,
                    request.max_completion_tokens, request.images, request.estimated_cost(self.catalog),
                    counted, window_tokens, pid, host, started, server,
                    self.completion_limit(request) if request.endpoint in ("chat", "completions") else None,
                    max(0, int(attempt)),
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            if batch:
                self._put_back(batch)
            raise
        return Reservation(self, int(cur.lastrowid or 0), request, decision, key_fp, at=now,
                           window_tokens=window_tokens, counted=applies)

    # ---- the wall clock stepping ----------------------------------------------------------------------------
    def _watch_clock(self, conn: sqlite3.Connection, now: float) -> None:
        """Keep the window right when the wall clock is stepped (NTP, a user setting the time).

        The relay's hour runs on its own clock; ours is only a ruler. A step shows as the wall clock moving
        differently from the monotonic one between two requests of this process. Forward by D: rows made before it
        look D older than they are and would leave the window early (requests the relay refuses) — they are moved
        D later. Backward: rows made before it lie in the future and would count for the hour *plus* the step
        (two hours of refusals) — they are brought back to now, so they count for at most one more hour. Rows in
        the future are brought back also when no process saw the step happen (on a Meter's first request)."""
        if self._monotonic is None:
            return  # an injected clock (tests, the emulator's) is the ruler itself
        tick = self._monotonic()
        anchor, self._anchor = self._anchor, (now, tick)
        drift = 0.0 if anchor is None else (now - anchor[0]) - (tick - anchor[1])
        if drift > _CLOCK_STEP and anchor is not None:
            conn.execute("UPDATE requests SET win_ts = win_ts + ? WHERE ts > ? AND win_ts <= ? AND win_ts > ? "
                         "AND counted = 1", (drift, anchor[0] - 2 * WINDOW_SECONDS, anchor[0],
                                             anchor[0] - WINDOW_SECONDS))
        elif anchor is None or drift < -_CLOCK_STEP:
            # (ts > now - …: the rows in the future were made in it too, and the ts index finds them)
            conn.execute("UPDATE requests SET win_ts = ? WHERE ts > ? AND win_ts > ?",
                         (now, now - WINDOW_SECONDS, now + _CLOCK_STEP))

    # ---- rows nobody will settle ----------------------------------------------------------------------------
    @degrades
    def settle_orphans(self) -> int:
        """Settle, as ``orphaned`` with bounds, the in-flight rows whose process has ended (this host), or that
        are older than :data:`_ledger.PENDING_TTL` (another host's, whose process we cannot look up)."""
        return self._settle_orphans(self._conn(), self.clock())

    def _settle_orphans(self, conn: sqlite3.Connection, now: float) -> int:
        pid, host, started = process_identity()
        dead = []
        for row_id, ts, row_host, row_pid, row_start in _ledger.pending_rows(conn):
            if row_host == host and row_pid is not None:
                if int(row_pid) != pid:
                    if _process_alive(int(row_pid), row_start):
                        continue
                # Our pid, but maybe an earlier process's: a container's sidecar restarts as the same pid (often 1)
                # on the same host name, and the killed one's rows must not hold the window as if they were ours.
                elif row_start is None or started is None or abs(float(row_start) - started) < 1.0:
                    continue
            elif float(ts) > now - _ledger.PENDING_TTL:
                continue
            dead.append(int(row_id))
        for row_id in dead:
            self._settle_row(conn, row_id, status="orphaned", answered_at=None, measured=False)
        return len(dead)

    # ---- after the answer -----------------------------------------------------------------------------------
    @degrades
    def _settle(
        self,
        reservation: Reservation,
        *,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        images: int | None,
        status: str,
        relay_code: int | None,
        http_status: int | None,
        latency_ms: float | None,
        stream: bool | None,
        measured: bool = True,
        counted: bool | None = None,
        answered_at: float | None = None,
        deferred: bool = False,
    ) -> None:
        """Settle a row this Meter reserved: what the row holds is known from the reservation, so it is one
        ``UPDATE`` (its own transaction, or the next one's when ``deferred``), not a read and a write in one.

        Only what another writer may have changed since the reservation is left to the statement: whether the row
        still waits (another process's sweep may have settled it: then nothing changes), whether its server became
        known as the relay (``counted`` 2 → 1), its window time (a clock step moves it). What the row counts in its
        window before and after goes to the window log (a trigger), whoever changed it."""
        if status not in _ledger.SETTLED_STATUSES:
            status = "error" if status not in ("pending", "expired") else "dropped"
        conn = self._conn()
        info, decision = reservation.info, reservation.decision
        values = self._outcome(
            info, key_fp=reservation.key_fp, row_tier=decision.tier, decision=decision, status=status,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, images=images, relay_code=relay_code,
            http_status=http_status, measured=measured, counted=counted, relay_counted=reservation.counted, conn=conn,
        )
        learn = bool(values["learned_paid"])
        if deferred and not learn:
            args = self._settled_args(reservation.id, status, values, relay_code=relay_code, http_status=http_status,
                                      latency_ms=latency_ms, stream=stream, answered_at=answered_at)
            with self._deferred_lock:
                self._deferred.append((args, info.model, status, values))
            return
        if learn:
            conn.execute("BEGIN IMMEDIATE")  # the row and the tier it teaches in one transaction
        try:
            updated = self._write_settled(conn, reservation.id, status, values, relay_code=relay_code,
                                          http_status=http_status, latency_ms=latency_ms, stream=stream,
                                          answered_at=answered_at)
            if learn and updated:
                self._learn_tier(conn, reservation.key_fp, "paid", None)
            if learn:
                conn.execute("COMMIT")
        except BaseException:
            if learn:
                conn.execute("ROLLBACK")
            raise
        if not updated:
            return  # settled already (by another process's sweep, say): nothing changed
        self._sampled(info.model, status, values)

    def _sampled(self, model: str, status: str, values: dict[str, Any]) -> None:
        """A new measured answer of ``model`` joins its samples at once; the list is read afresh when the TTL ends
        (re-reading 200 rows on every settle was ~7 % of the sidecar's CPU)."""
        if status == "ok" and values["measured"]:
            cached = self._samples.get(model)
            if cached is not None and values["completion"] is not None:
                bisect.insort(cached[1], int(values["completion"]))

    def _write_settled(self, conn: sqlite3.Connection, row_id: int, status: str, values: dict[str, Any], *,
                       relay_code: int | None, http_status: int | None, latency_ms: float | None,
                       stream: bool | None, answered_at: float | None) -> bool:
        """The settled row's ``UPDATE``, if it still waits; whether it did. ``counted`` stays 2 for a server not
        known to be the relay, and the window time only moves later (to when the answer arrived)."""
        cur = conn.execute(_SETTLE_UPDATE, self._settled_args(
            row_id, status, values, relay_code=relay_code, http_status=http_status, latency_ms=latency_ms,
            stream=stream, answered_at=answered_at))
        return cur.rowcount > 0

    def _settled_args(self, row_id: int, status: str, values: dict[str, Any], *, relay_code: int | None,
                      http_status: int | None, latency_ms: float | None, stream: bool | None,
                      answered_at: float | None) -> tuple[Any, ...]:
        """The parameters of :data:`_SETTLE_UPDATE` for a row."""
        return (
            self.clock(), values["prompt"], values["completion"], values["images"], values["cost"], status,
            relay_code, http_status, None if latency_ms is None else int(latency_ms), values["counted"],
            values["counted"], values["win_tokens"], None if stream is None else int(stream),
            0.0 if answered_at is None else float(answered_at) + _ledger.ARRIVAL_FLOOR,
            int(values["measured"]), values["cost_low"], values["cost_high"], values["completion_low"],
            values["completion_high"], values["reason"], values["tier"], values["paid_cost"],
            values["paid_cost_low"], row_id,
        )

    def _settle_row(
        self,
        conn: sqlite3.Connection,
        row_id: int,
        *,
        status: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        images: int | None = None,
        relay_code: int | None = None,
        http_status: int | None = None,
        latency_ms: float | None = None,
        stream: bool | None = None,
        measured: bool = True,
        counted: bool | None = None,
        answered_at: float | None = None,
        info: RequestInfo | None = None,
        decision: Decision | None = None,
    ) -> None:
        """Replace a pending row's estimate with what is known, in one transaction (see ``_ledger`` statuses)."""
        if status not in _ledger.SETTLED_STATUSES:
            status = "error" if status not in ("pending", "expired") else "dropped"
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT counted, key_fp, model, family, endpoint, tier, prompt_est, "
                "completion_est, images, stream, completion_cap FROM requests "
                "WHERE id = ? AND status IN ('pending', 'expired')",
                (row_id,),
            ).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return  # settled already (by another process's sweep, say): nothing changed
            (old_counted, key_fp, model, family, endpoint, row_tier, prompt_est, completion_est, est_images,
             row_stream, completion_cap) = row
            if info is None:
                from ._quota import RequestInfo as _Info

                info = _Info(endpoint=endpoint, model=model, family=family, prompt_tokens=int(prompt_est or 0),
                             max_completion_tokens=int(completion_cap if completion_cap is not None
                                                       else completion_est or 0), max_tokens_given=True,
                             images=int(est_images or 0), stream=bool(row_stream))
            values = self._outcome(
                info, key_fp=key_fp, row_tier=row_tier, decision=decision, status=status,
                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, images=images,
                relay_code=relay_code, http_status=http_status, measured=measured, counted=counted,
                relay_counted=int(old_counted) == 1, conn=conn,
            )
            self._write_settled(conn, row_id, status, values, relay_code=relay_code, http_status=http_status,
                                latency_ms=latency_ms, stream=stream, answered_at=answered_at)
            if values["learned_paid"]:
                self._learn_tier(conn, key_fp, "paid", None)
            conn.execute("COMMIT")
            self._sampled(model, status, values)
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _estimate(self, info: RequestInfo, *, status: str, seen: int, answer_read: bool,
                  conn: sqlite3.Connection) -> tuple[int, int, int, bool, str]:
        """(point, low, high completion tokens, whether it may never have been served, reason) of a row whose usage the relay did not
        report: the point is the most likely billed figure given what the relay does (docs/internals.md,
        "Row statuses"), the bounds what it can have billed at all.

        The relay counts a request when it arrives and bills what the model generated; its upstream call does not
        stop because the client left. A non-streamed answer is generated and billed in full. A stream stops when
        the relay notices the client has gone, at its next writes: soon after the client left."""
        limit = max(seen, self.completion_limit(info))
        typical = self.typical_completion(info.model, conn=conn) if info.endpoint != "images" else None
        usual = min(limit, typical) if typical is not None else None
        reason = _REASONS.get(status, "usage not reported: estimated")
        if answer_read and status != "orphaned":
            # Part of the answer came. Cancelled: the relay had generated more than the app read before it noticed
            # the close (a short answer is complete by then), so this machine's typical answer, never less than
            # what was read. Dropped (the relay or the network ended it): what arrived is what was sent.
            point = max(seen, usual or seen) if status == "cancelled" else seen
            return point, seen, limit, False, reason
        # Nothing of the answer was read (a timeout, a connection closed or a caller that gave up before the
        # answer, a process that died): it may never have been served (low: ¥0), else the relay billed the
        # prompt and what it generated.
        if status == "orphaned":
            # It died at an unknown moment: a non-streamed request is served in full regardless; a stream was cut
            # when the process died, on average halfway through a typical answer.
            point = (usual or 0) if not info.stream else (usual or 0) // 2
        else:
            # The client left before the answer: a non-streamed one is served in full anyway; a stream stops at
            # the relay's first writes (the prompt and a token or so).
            point = (usual or 0) if not info.stream else 0
        return point, 0, limit, True, reason

    def _outcome(
        self, info: RequestInfo, *, key_fp: str, row_tier: str | None, decision: Decision | None, status: str,
        prompt_tokens: int | None, completion_tokens: int | None, images: int | None, relay_code: int | None,
        http_status: int | None, measured: bool, counted: bool | None, relay_counted: bool,
        conn: sqlite3.Connection,
    ) -> dict[str, Any]:
        """Tokens, cost, bounds and window figures of a settled row."""
        prompt = info.prompt_tokens if prompt_tokens is None else int(prompt_tokens)
        # Not reported by the relay: our own count, a range when it has images of unknown size.
        prompt_low = prompt_high = prompt
        if prompt_tokens is None and info.prompt_low is not None and info.prompt_high is not None:
            prompt_low, prompt_high = info.prompt_low, info.prompt_high
        seen = 0 if completion_tokens is None else int(completion_tokens)
        n_images = info.images if images is None else int(images)
        if counted is None:
            # The relay's own codes are refusals before any model ran; a failed send never reached it.
            counted = not (relay_code is not None or status == "failed")
        reason = None
        low = high = point = seen
        maybe_unserved = False
        if status in _ESTIMATED or not measured:
            measured = False
            point, low, high, maybe_unserved, reason = self._estimate(
                info, status=status, seen=seen, answer_read=completion_tokens is not None, conn=conn)
        # The tier this answer shows: a paid-only model that worked means a paid key, priced as such now.
        tier = row_tier or (decision.tier if decision else None)
        learned_paid = bool(status == "ok" and counted and self.catalog.allowed_on_free(info.model) is False)
        if learned_paid:
            tier = "paid"
        if prompt_low != prompt_high and status not in ("error", "failed"):
            measured = False
            reason = (reason + "; " if reason else "") + _IMAGE_UNKNOWN
        cost = cost_low = cost_high = paid_cost = paid_cost_low = None
        if counted:
            cost = self._actual_cost(info, prompt, point, n_images)
            cost_high = self._actual_cost(info, prompt_high, high, n_images if n_images else info.images)
            cost_low = (0.0 if maybe_unserved and info.endpoint == "images"
                        else self._actual_cost(info, 0 if maybe_unserved else prompt_low, low, n_images))
        else:
            cost = cost_low = cost_high = 0.0
        if counted and status == "error" and (http_status or 0) >= 400 and relay_code is None:
            cost = cost_low = cost_high = 0.0  # an OpenAI error passed through (e.g. context too long) is not billed
        if tier == "free":
            cost = cost_low = cost_high = 0.0  # the free membership is free: the relay bills nothing
        elif tier not in ("paid", "free") and cost is not None:
            # Nobody knows the key's tier. Judged like the gate judges it — as paid, until the relay says free —
            # it is booked at the paid price with ¥0 (free) as the low end, and repriced when its tier is learned
            # (_learn_tier): never ¥0 while a paying user's money leaves.
            paid_cost, paid_cost_low = cost, cost_low
            cost_low = 0.0
            measured = False
            reason = (reason + "; " if reason else "") + _TIER_UNKNOWN
        return {
            "prompt": prompt, "completion": point, "images": n_images, "cost": cost, "cost_low": cost_low,
            "cost_high": cost_high, "completion_low": low, "completion_high": high, "measured": measured,
            "reason": reason, "counted": int(counted), "win_tokens": (prompt + point) if counted else 0,
            "tier": tier, "learned_paid": learned_paid, "paid_cost": paid_cost, "paid_cost_low": paid_cost_low,
        }

    @degrades
    def forget_failed(self, row_id: int) -> None:
        """Drop the row of an attempt that failed — a send that raised, or an error answer the retry policy resends
        (``error``) — now that its request is being sent again: one request, one row.

        Only an attempt that produced nothing: an error inside a stream that had begun (counted, billed for what was
        sent) keeps its row whatever comes after it, or the ledger would lose spend and window."""
        self._conn().execute(
            "DELETE FROM requests WHERE id = ? AND status IN ('failed', 'error') "
            "AND COALESCE(completion_tokens, 0) = 0 AND COALESCE(cost, 0) = 0", (row_id,))

    def _learn_tier(self, conn: sqlite3.Connection, key_fp: str, tier: str, code: int | None) -> None:
        """Remember what the relay revealed: a code (40020 → free), or a paid-only model that worked (→ paid).

        The key's rows booked while its tier was unknown are repriced: to ¥0 for free; for paid, their bounds close
        on the paid price they carry (a key topped up long after its first requests has those repriced too: the
        ledger cannot tell when the top-up happened)."""
        conn.execute(
            "INSERT INTO learned_tiers (key_fp, tier, code, ts) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key_fp) DO UPDATE SET tier = excluded.tier, code = excluded.code, ts = excluded.ts",
            (key_fp, tier, code, self.clock()),
        )
        self._view(conn).tiers[key_fp] = tier
        unknown = ("key_fp = ? AND (tier IS NULL OR tier = 'unknown') "
                   "AND status NOT IN ('pending', 'expired')")
        strip = ("CASE WHEN estimate_reason = ? THEN NULL ELSE REPLACE(estimate_reason, '; ' || ?, '') END")
        if tier == "paid":
            conn.execute(
                f"UPDATE requests SET tier = 'paid', cost = COALESCE(paid_cost, cost), "
                f"cost_low = COALESCE(paid_cost_low, cost_low), measured = (estimate_reason = ?), "
                f"estimate_reason = {strip}, paid_cost = NULL, paid_cost_low = NULL WHERE {unknown}",
                (_TIER_UNKNOWN, _TIER_UNKNOWN, _TIER_UNKNOWN, key_fp),
            )
        elif tier == "free":
            conn.execute(
                f"UPDATE requests SET tier = 'free', cost = CASE WHEN cost IS NULL THEN NULL ELSE 0 END, "
                f"cost_low = 0, cost_high = 0, measured = (estimate_reason = ?), estimate_reason = {strip}, "
                f"paid_cost = NULL, paid_cost_low = NULL WHERE {unknown}",
                (_TIER_UNKNOWN, _TIER_UNKNOWN, _TIER_UNKNOWN, key_fp),
            )

    def _actual_cost(self, info: RequestInfo, prompt: int, completion: int, images: int) -> float | None:
        if info.endpoint == "images":
            model = self.catalog.image(info.model)
            price = model.price(info.size, info.quality) if model else None
            return None if price is None else price * images
        chat = self.catalog.chat(info.model)
        return chat.cost(prompt, completion) if chat else None

    @degrades
    def observe(self, api_key: str, model: str, relay_code: int | None) -> None:
        """Learn from a relay code: the tier it reveals, and a window the relay says is full."""
        if relay_code is None:
            return
        from ._codes import relay_code as lookup

        known = lookup(int(relay_code))
        if known is None:
            return
        conn = self._conn()
        now = self.clock()
        key_fp = _ledger.fingerprint(api_key)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if known.reveals_tier is not None:
                self._learn_tier(conn, key_fp, known.reveals_tier, known.code)
            if known.group in ("rate_limit", "token_limit"):
                family = known.family or self.catalog.family(model)
                if family is not None:
                    since = now - WINDOW_SECONDS
                    requests, tokens = _ledger.window_totals(conn, family, since)
                    key_requests, key_tokens = _ledger.window_totals(conn, family, since, key_fp)
                    conn.execute(
                        "INSERT INTO exhaustions (ts, key_fp, family, tier, kind, code, local_requests, local_tokens, "
                        "key_requests, key_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (now, key_fp, family, known.reveals_tier,
                         "tokens" if known.group == "token_limit" else "requests", known.code, requests, tokens,
                         key_requests, key_tokens),
                    )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @degrades
    def record_topup(self, amount_cny: float, *, api_key: str | None = None, note: str | None = None) -> int:
        """Remember money paid in (for the estimated balance when the relay's billing endpoints do not answer)."""
        return _ledger.add_topup(
            self._conn(), float(amount_cny), ts=self.clock(),
            key_fp=_ledger.fingerprint(api_key) if api_key else None, note=note,
        )
