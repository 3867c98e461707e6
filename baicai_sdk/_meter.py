"""The ledger's write side: decide and reserve atomically, settle, learn from relay codes.

Every metered HTTP attempt calls :meth:`Meter.reserve` before it is sent. The decision and the ``pending`` row are
made in one ``BEGIN IMMEDIATE`` transaction: SQLite then lets one writer at a time through, so four processes
asking for the last slot of an hour cannot all get it. :meth:`Reservation.settle` replaces the estimate with what
the request really used; :meth:`Meter.observe` records what a relay code revealed (the key's tier; a window the
relay says is full although we predicted room).

The tier of a key: ``tier=`` given to the Meter (configured), else what a relay code revealed (learned, kept in the
ledger per key fingerprint), else unknown — predicted with the free tier's limits, and said so.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from . import _ledger
from ._catalog import Catalog, Tier, load_catalog
from ._ledger_health import FallbackConnections, degrades
from ._quota import WINDOW_SECONDS, Decision, Exhaustion, RequestInfo, TierSource, Window, decide, describe_request

if TYPE_CHECKING:
    import sqlite3

__all__ = ["Meter", "Reservation", "Decision", "RequestInfo", "describe_request", "QuotaMode"]

QuotaMode = Literal["wait", "raise", "off"]

_SWEEP_EVERY = 60.0
_MODEL_CHARS = 100
"""A model name as stored: real ones are far shorter, and a megabyte "model" sent to the sidecar must not land in
every report."""
_CATALOG_TTL = 5.0


class Reservation:
    """A ``pending`` ledger row for one attempt. :meth:`settle` it exactly once (extra calls are ignored)."""

    def __init__(self, meter: Meter, row_id: int, info: RequestInfo, decision: Decision, key_fp: str = "", *,
                 at: float = 0.0, window_tokens: int = 0) -> None:
        self._meter = meter
        self.id = row_id
        self.info = info
        self.decision = decision
        self.key_fp = key_fp
        self.at = at
        self.window_tokens = window_tokens
        """What the row counts in its window until settled."""
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
    ) -> None:
        """Record what the request used. ``None`` counts fall back to the estimate for the prompt (it was sent)
        and 0 for the completion; a relay-coded error or a ``failed`` send is taken out of the window."""
        with self._lock:
            if self._settled:
                return
            self._settled = True
        self._meter._settle(
            self, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, images=images, status=status,
            relay_code=relay_code, http_status=http_status, latency_ms=latency_ms, stream=stream,
        )

    def __repr__(self) -> str:
        return f"<Reservation id={self.id} model={self.info.model!r} settled={self._settled}>"


class _LedgerView:
    """What one connection has read of the ledger, kept while nobody else writes to it.

    Counting a family's window afresh scans up to an hour of rows (≈0.25 ms per request at 1,000 rows). SQLite's
    ``PRAGMA data_version`` moves when another connection commits, and ``total_changes`` when this one writes. While
    neither has moved since we last looked (our own writes are applied here as we make them), what we read is
    current, and a later window only needs the few rows that have left it since.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.version = -1
        self.changes = -1
        self.totals: dict[str, tuple[float, int, int]] = {}
        """family → (since, requests, tokens) of its window after ``since``."""
        self.exhaustions: dict[str, tuple[float, list[Exhaustion]]] = {}
        self.tiers: dict[str, str | None] = {}

    def sync(self) -> None:
        """Forget everything if another connection committed, or this one wrote without telling us."""
        version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self.version or self.conn.total_changes != self.changes:
            self.version, self.changes = version, self.conn.total_changes
            self.totals.clear()
            self.exhaustions.clear()
            self.tiers.clear()

    def window(self, family: str, since: float) -> tuple[int, int]:
        cached = self.totals.get(family)
        if cached is None or since < cached[0]:
            requests, tokens = _ledger.window_totals(self.conn, family, since)
        else:
            left = _ledger.window_totals(self.conn, family, cached[0], until=since) if since > cached[0] else (0, 0)
            requests, tokens = cached[1] - left[0], cached[2] - left[1]
        self.totals[family] = (since, requests, tokens)
        return requests, tokens

    def recent_exhaustions(self, family: str, since: float) -> list[Exhaustion]:
        cached = self.exhaustions.get(family)
        if cached is None or since < cached[0]:
            rows = [Exhaustion(at=float(ts), kind=kind, local_requests=int(lr), local_tokens=int(lt), code=int(code))
                    for ts, kind, lr, lt, code in _ledger.recent_exhaustions(self.conn, family, since)]
            cached = self.exhaustions[family] = (since, rows)
        return [e for e in cached[1] if e.at > since]

    def learned_tier(self, key_fp: str) -> str | None:
        if key_fp not in self.tiers:
            self.tiers[key_fp] = _ledger.learned_tier(self.conn, key_fp)
        return self.tiers[key_fp]

    def wrote(self, changes_before: int, *, family: str | None = None, at: float = 0.0, requests: int = 0,
              tokens: int = 0) -> None:
        """Our own write, which changed ``family``'s counted rows by this much (a row written ``at``).

        Only when the view was current just before it: a write it was not told of keeps it stale until ``sync``.
        """
        if self.changes != changes_before:
            return
        cached = self.totals.get(family) if family is not None else None
        if family is not None and cached is not None and at > cached[0]:
            self.totals[family] = (cached[0], cached[1] + requests, cached[2] + tokens)
        self.changes = self.conn.total_changes


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
    ) -> None:
        if quota not in ("wait", "raise", "off"):
            raise ValueError(f"quota 只能是 wait/raise/off / quota must be wait, raise or off, not {quota!r}")
        if tier not in (None, "free", "paid", "unknown"):
            raise ValueError(f"tier 只能是 free/paid / tier must be free or paid, not {tier!r}")
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
        self._last_sweep = 0.0

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

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._connections.close()

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

    # ---- deciding -------------------------------------------------------------------------------------------
    def _decide(
        self, conn: sqlite3.Connection, api_key: str, info: RequestInfo, now: float, *, when: bool = True
    ) -> Decision:
        """``when=False``: the decision without what only an enforced refusal needs (the time room frees up, which
        reads the window's rows, and the key's own window for the reason's wording)."""
        view = self._view(conn)
        view.sync()
        key_fp = _ledger.fingerprint(api_key)
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

        def run(key_window: Window) -> Decision:
            return decide(
                info, tier=tier, tier_source=tier_source, ip_window=Window(*ip), key_window=key_window, now=now,
                catalog=catalog, exhaustions=exhaustions, max_wait=self.max_wait,
                entries_loader=entries if when else None,
            )

        # The per-key budget equals the IP's and a key's rows are a subset of the IP's, so the key window can only
        # bind when the IP window does: count it only then (for the reason's wording), not on every request.
        decision = run(Window(0, 0))
        if decision.kind != "allow" and when:
            decision = run(Window(*_ledger.window_totals(conn, family, since, key_fp)))
        return decision

    @degrades
    def decide(self, api_key: str, request: RequestInfo) -> Decision:
        """The decision for ``request`` now, without reserving anything (``baicai estimate``, status pages)."""
        return self._decide(self._conn(), api_key, request, self.clock())

    @degrades
    def reserve(
        self, api_key: str, request: RequestInfo, *, app: str | None = None, enforce: bool | None = None
    ) -> Reservation | Decision:
        """Decide and, when allowed (or not enforced), write the ``pending`` row — in one transaction.

        Returns the :class:`Reservation` to settle, or the ``wait``/``refuse`` :class:`Decision` (nothing written).
        ``enforce=False`` (or ``quota="off"``) records the request whatever the decision.
        """
        if enforce is None:
            enforce = self.quota != "off"
        conn = self._conn()
        now = self.clock()
        view = self._view(conn)
        if now - self._last_sweep > _SWEEP_EVERY:
            self._last_sweep = now
            before = conn.total_changes
            _ledger.expire_pending(conn, now - _ledger.PENDING_TTL)
            view.wrote(before)  # a status change: no window moves
        key_fp = _ledger.fingerprint(api_key)
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Not enforced (quota="off"): recorded whatever the decision, so its wait time is never needed.
            decision = self._decide(conn, api_key, request, now, when=enforce)
            if enforce and decision.kind != "allow":
                conn.execute("COMMIT")
                return decision
            window_tokens = decision.request_tokens or request.estimated_tokens
            before = conn.total_changes
            cur = conn.execute(
                "INSERT INTO requests (ts, key_fp, key_hint, source, app, model, family, endpoint, tier, stream, "
                "prompt_est, completion_est, images, cost_est, status, counted, win_tokens, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?)",
                (
                    now, key_fp, _ledger.key_hint(api_key), self.source, app, request.model[:_MODEL_CHARS],
                    request.family,
                    request.endpoint, decision.tier, int(request.stream), request.prompt_tokens,
                    request.max_completion_tokens, request.images, request.estimated_cost(self.catalog),
                    window_tokens, os.getpid(),
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        view.wrote(before, family=request.family, at=now, requests=1, tokens=window_tokens)
        return Reservation(self, int(cur.lastrowid or 0), request, decision, key_fp, at=now,
                           window_tokens=window_tokens)

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
    ) -> None:
        info = reservation.info
        if status not in _ledger.SETTLED_STATUSES:
            status = "error" if status not in ("pending", "expired") else "dropped"
        prompt = info.prompt_tokens if prompt_tokens is None else int(prompt_tokens)
        completion = 0 if completion_tokens is None else int(completion_tokens)
        n_images = info.images if images is None else int(images)
        # The relay's own codes are refusals before any model ran; a failed send never reached it.
        counted = 0 if (relay_code is not None or status == "failed") else 1
        cost = self._actual_cost(info, prompt, completion, n_images) if counted else 0.0
        if reservation.decision.tier == "free":
            cost = 0.0  # the free membership is free: the relay bills nothing (its README: 价格：免费)
        if counted and status == "error" and (http_status or 0) >= 400:
            cost = 0.0  # an OpenAI error passed through (e.g. context too long) is not billed
        win_tokens = (prompt + completion) if counted else 0
        conn = self._conn()
        view = self._view(conn)
        before = conn.total_changes
        cur = conn.execute(
            "UPDATE requests SET settled_at = ?, prompt_tokens = ?, completion_tokens = ?, images = ?, cost = ?, "
            "status = ?, relay_code = ?, http_status = ?, latency_ms = ?, counted = ?, win_tokens = ?, "
            "stream = COALESCE(?, stream) WHERE id = ? AND status IN ('pending', 'expired')",
            (
                self.clock(), prompt, completion, n_images, cost, status, relay_code, http_status,
                None if latency_ms is None else int(latency_ms), counted, win_tokens,
                None if stream is None else int(stream), reservation.id,
            ),
        )
        if cur.rowcount != 1:
            return  # settled already (by another process's sweep, say): nothing changed
        if counted and status == "ok" and self.catalog.allowed_on_free(info.model) is False:
            self._learn_tier(conn, reservation.key_fp, "paid", None)
        view.wrote(before, family=info.family, at=reservation.at, requests=counted - 1,
                   tokens=win_tokens - reservation.window_tokens)

    @degrades
    def forget_failed(self, row_id: int) -> None:
        """Drop the row of an attempt that failed — a send that raised, or an error answer the retry policy resends
        (``error``) — now that its request is being sent again: one request, one row."""
        self._conn().execute("DELETE FROM requests WHERE id = ? AND status IN ('failed', 'error')", (row_id,))

    def _learn_tier(self, conn: sqlite3.Connection, key_fp: str, tier: str, code: int | None) -> None:
        """Remember what the relay revealed: a code (40020 → free), or a paid-only model that worked (→ paid)."""
        conn.execute(
            "INSERT INTO learned_tiers (key_fp, tier, code, ts) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key_fp) DO UPDATE SET tier = excluded.tier, code = excluded.code, ts = excluded.ts",
            (key_fp, tier, code, self.clock()),
        )
        self._view(conn).tiers[key_fp] = tier

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
                    requests, tokens = _ledger.window_totals(conn, family, now - WINDOW_SECONDS)
                    conn.execute(
                        "INSERT INTO exhaustions (ts, key_fp, family, tier, kind, code, local_requests, local_tokens) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (now, key_fp, family, known.reveals_tier,
                         "tokens" if known.group == "token_limit" else "requests", known.code, requests, tokens),
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
