"""The ledger's read side: totals, reports, the expense log, quota windows.

``baicai usage`` and the TUI read the ledger only through :class:`UsageStore` (the TUI runs no SQL of its own),
so both show the same figures. Costs of unpriced models are ``NULL`` in the ledger; sums skip them and say how many
requests were left unpriced (``unpriced``) rather than pretending they were free.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import _ledger
from ._catalog import Tier, load_catalog
from ._quota import WINDOW_SECONDS
from ._text import Text

if TYPE_CHECKING:
    import sqlite3

__all__ = ["UsageStore", "Totals", "ReportRow", "LedgerRow", "WindowStatus", "GroupBy", "COST_MARKS",
           "COST_MARK_NOTES"]

GroupBy = Literal["model", "day", "hour", "key", "source"]
_GROUPS = ("model", "day", "hour", "key", "source")


MONEY_DIGITS = 6
"""Decimals of CNY in machine-readable output: every relay price is a whole number of ¥0.000005 per token (¥0.01 or
¥0.015 per 1K), so six decimals are exact — and drop float noise such as 0.2795000000000005. Tables show four."""


def _money(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its CNY amounts (``cost*`` fields) rounded to :data:`MONEY_DIGITS`; still numbers."""
    return {k: round(v, MONEY_DIGITS) if k.startswith("cost") and isinstance(v, float) else v
            for k, v in data.items()}


@dataclass(frozen=True)
class Totals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0
    cost_cny: float = 0.0
    """Sum over priced requests (settled ones at their actual cost, in-flight ones at their estimate)."""
    unpriced: int = 0
    """Requests whose model has no known price (not included in ``cost_cny``)."""
    pending: int = 0
    errors: int = 0
    cost_measured: float = 0.0
    """Spend on rows whose usage the relay reported (or a complete answer counted locally)."""
    cost_estimated: float = 0.0
    """Spend booked as an estimate (requests in flight, streams cut short, timeouts, orphans, unknown tier)."""
    cost_low: float = 0.0
    """The least the estimated rows can have cost, plus the measured spend."""
    cost_high: float = 0.0
    """The most the estimated rows can have cost, plus the measured spend."""
    retries: int = 0
    """Attempts after an app request's first (a client's own retries): their rows count in the window and cost,
    tokens and errors, but ``requests`` counts app requests (each first attempt) only."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def tokens(self) -> int:
        return self.total_tokens

    def as_dict(self) -> dict[str, Any]:
        return {**_money(asdict(self)), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class ReportRow(Totals):
    key: str = ""
    """The group: a model name, ``YYYY-MM-DD`` / ``YYYY-MM-DD HH:00`` in local time, a key hint, or a source."""

    @property
    def label(self) -> str:
        return self.key

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, **super().as_dict()}


@dataclass(frozen=True)
class LedgerRow:
    id: int
    time: float
    model: str
    family: str | None
    endpoint: str
    source: str
    app: str | None
    key_fingerprint: str
    key_hint: str | None
    status: str
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_estimated: int
    completion_tokens_estimated: int
    images: int
    cost_cny: float | None
    cost_estimated: float | None
    relay_code: int | None
    http_status: int | None
    latency_ms: int | None
    stream: bool
    tier: str | None
    attempt: int = 0
    """0: an app request's first attempt; n: its n-th retry (each attempt the relay saw has its own row)."""
    measured: bool = True
    """False: tokens and cost are an estimate (pending, cancelled, dropped, timed out, orphaned: what the relay
    likely bills, within the row's bounds), not the relay's reported usage — or only the price is (tier unknown)."""
    estimate_reason: str | None = None
    """Why the row is not measured, in English (the ledger's ``estimate_reason``); None for a measured row."""

    @property
    def ts(self) -> float:
        return self.time

    @property
    def cost_mark(self) -> str:
        """``""`` measured; ``"≤"`` the relay's usage at the paid price, the key's tier unknown (¥0 if free);
        ``"~"`` the usage itself is an estimate. :data:`COST_MARKS` explains each."""
        if self.measured:
            return ""
        if self.estimate_reason == _ledger.TIER_UNKNOWN_REASON:
            return "≤" if self.cost_cny else ""  # ¥0 whatever the tier (a refusal before any model ran): exact
        return "~"

    def as_dict(self) -> dict[str, Any]:
        return _money(asdict(self))


def _estimate_reason(status: str, measured: bool, reason: str | None) -> str | None:
    if status in ("pending", "expired"):
        return reason or "in flight: counted at its reservation until the answer settles it"
    return None if measured else reason


COST_MARKS: dict[str, Text] = {
    "~": Text("~ 估算：中转未报告用量（进行中、取消、中断、超时、进程退出），按中转可能计费的数目记账",
              "~ estimated: the relay reported no usage (in flight, cancelled, dropped, timed out, process ended); "
              "booked at what the relay likely bills"),
    "≤": Text("≤ 至多：用量是中转报告的，但不知道密钥是免费还是付费会员，按付费价记账（免费会员为 ¥0）；"
              "设置等级后新的记录按实价：baicai key tier 名称 free|paid，或环境变量 BAICAI_TIER",
              "≤ at most: the relay reported the usage, but the key's tier is unknown, so it is booked at the paid "
              "price (¥0 if the key is free); set the tier to price new rows exactly: baicai key tier NAME free|paid, "
              "or BAICAI_TIER"),
}
"""The legend of :attr:`LedgerRow.cost_mark`, for every view of the expense log."""

COST_MARK_NOTES: dict[str, Text] = {
    "~": Text("估算：中转未报告用量", "estimated: the relay reported no usage"),
    "≤": Text("等级未知：按付费价，免费则 ¥0", "tier unknown: paid price, ¥0 if free"),
}
"""The same, short enough for a table cell."""


@dataclass(frozen=True)
class WindowStatus:
    """One family's sliding hour: over all local keys (``scope="ip"``, the IP budget, judged by ``tier``'s limits)
    or over one key (``scope="key"``, judged by that key's own tier). The relay admits a request when both the
    key's window and the IP's are below the limits of the requesting key's tier."""

    family: str
    tier: Tier
    tier_source: str
    requests_used: int
    requests_limit: int | None
    tokens_used: int
    tokens_limit: int | None
    next_free_at: float | None
    """When the oldest counted request leaves the window (None when the window is empty)."""
    pending: int
    allowed: bool
    """False when the tier may not use this family at all (free tier and DALL·E)."""
    exhausted_until: float | None = None
    """Set while the relay's "limit reached" answer keeps the predictor conservative."""
    runs_out_at: float | None = None
    """Burn-rate projection: when a budget of this window is used up if the last 10 minutes' pace goes on."""
    runs_out_of: str = ""
    """Which budget ``runs_out_at`` speaks of: ``requests`` or ``tokens`` ("" when there is no projection)."""
    scope: str = "ip"
    """``ip``: every local key's requests (this machine's share of the IP budget); ``key``: one key's."""
    key_hint: str | None = None
    """The key of a ``key`` row, masked (``baicai-…abcd``)."""
    key_fingerprint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_SELECT_TOTALS = (
    "SELECT COALESCE(SUM(CASE WHEN attempt > 0 THEN 0 ELSE 1 END), 0), "
    "COALESCE(SUM(COALESCE(prompt_tokens, prompt_est)), 0), "
    "COALESCE(SUM(CASE WHEN status IN ('pending', 'expired') THEN 0 ELSE COALESCE(completion_tokens, 0) END), 0), "
    "COALESCE(SUM(images), 0), "
    "COALESCE(SUM(CASE WHEN status IN ('pending', 'expired') THEN cost_est ELSE cost END), 0), "
    "SUM(CASE WHEN (CASE WHEN status IN ('pending', 'expired') THEN cost_est ELSE cost END) IS NULL "
    "THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN status IN ('pending', 'expired') THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN status IN ('error', 'failed') THEN 1 ELSE 0 END), "
    "COALESCE(SUM(CASE WHEN status NOT IN ('pending', 'expired') AND measured = 1 THEN cost END), 0), "
    "COALESCE(SUM(CASE WHEN status IN ('pending', 'expired') THEN cost_est WHEN measured = 0 THEN cost END), 0), "
    "COALESCE(SUM(CASE WHEN status IN ('pending', 'expired') THEN 0 ELSE COALESCE(cost_low, cost) END), 0), "
    "COALESCE(SUM(CASE WHEN status IN ('pending', 'expired') THEN cost_est ELSE COALESCE(cost_high, cost) END), 0), "
    "COALESCE(SUM(CASE WHEN attempt > 0 THEN 1 ELSE 0 END), 0) "
)
_GROUP_COLUMN = 13
"""Index of the group key in a grouped ``_SELECT_TOTALS`` row."""


def _totals(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "requests": int(row[0] or 0),
        "prompt_tokens": int(row[1] or 0),
        "completion_tokens": int(row[2] or 0),
        "images": int(row[3] or 0),
        "cost_cny": float(row[4] or 0.0),
        "unpriced": int(row[5] or 0),
        "pending": int(row[6] or 0),
        "errors": int(row[7] or 0),
        "cost_measured": float(row[8] or 0.0),
        "cost_estimated": float(row[9] or 0.0),
        "cost_low": float(row[10] or 0.0),
        "cost_high": float(row[11] or 0.0),
        "retries": int(row[12] or 0),
    }


class UsageStore:
    """Read the ledger. One SQLite connection per thread (the TUI reads from workers)."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        if path is None:
            from ._paths import ledger_path

            path = ledger_path()
        self.path = Path(path)
        self.clock = clock
        # Reads the in-memory ledger only when a writer in this process has degraded to it; otherwise a damaged file
        # raises, and the CLI names the damage (see _ledger_health).
        from ._ledger_health import FallbackConnections

        self._connections = FallbackConnections(self.path, degrade_on_error=False, clock=clock)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    @staticmethod
    def _range(since: float | None, until: float | None) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if since is not None:
            clauses.append("ts >= ?")
            args.append(float(since))
        if until is not None:
            clauses.append("ts < ?")
            args.append(float(until))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def summary(self, since: float | None = None, until: float | None = None) -> Totals:
        where, args = self._range(since, until)
        row = self._conn().execute(_SELECT_TOTALS + "FROM requests" + where, args).fetchone()
        return Totals(**_totals(row))

    def report(
        self,
        by: GroupBy = "day",
        since: float | None = None,
        until: float | None = None,
        tz: dt.tzinfo | None = None,
    ) -> list[ReportRow]:
        """Totals grouped by model, local day, local hour, key or source. Days and hours are in ``tz`` (default:
        this machine's local zone), computed in Python so that DST and odd offsets are right."""
        if by not in _GROUPS:
            raise ValueError(Text(f"无法按 {by!r} 分组；可用 {'、'.join(_GROUPS)}",
                                  f"cannot group by {by!r}; use one of {', '.join(_GROUPS)}"))
        where, args = self._range(since, until)
        conn = self._conn()
        if by in ("model", "key", "source"):
            column = {"model": "model", "key": "COALESCE(key_hint, key_fp)", "source":
                      "source || COALESCE(':' || app, '')"}[by]
            cur = conn.execute(
                _SELECT_TOTALS + f", {column} AS grp FROM requests{where} GROUP BY grp ORDER BY grp", args
            )
            return [ReportRow(key=str(r[_GROUP_COLUMN]), **_totals(r)) for r in cur]
        # Day/hour: bucket by quarter hours in SQL, then fold the buckets into local days/hours in Python. Every
        # real zone's offset is a multiple of 15 min (India +5:30, Nepal +5:45), so no bucket straddles a boundary.
        step = 900
        cur = conn.execute(
            _SELECT_TOTALS + f", CAST(ts / {step} AS INTEGER) AS b FROM requests{where} GROUP BY b ORDER BY b", args
        )
        tz = tz or local_zone()
        fmt = "%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00"
        merged: dict[str, dict[str, Any]] = {}
        for r in cur:
            # tz None: the system's local rules for that instant (DST-correct), not today's offset.
            label = dt.datetime.fromtimestamp(int(r[_GROUP_COLUMN]) * step, tz).strftime(fmt)
            t = _totals(r)
            acc = merged.setdefault(label, dict.fromkeys(t, 0))
            for k, v in t.items():
                acc[k] += v
        return [ReportRow(key=k, **v) for k, v in sorted(merged.items())]

    def _filters(self, model: str | None, status: str | None, source: str | None) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if model:  # a part of the name, any case: "gpt-4" finds gpt-4-0125-preview too, as a user typing it expects
            clauses.append("instr(lower(model), ?) > 0")  # not LIKE: "_" and "%" in a name are not wildcards
            args.append(model.lower())
        if status:
            clauses.append("status = ?")
            args.append(status)
        if source:  # where a request came from: "sdk", "sidecar", "autogen"… or the app behind a sidecar token
            clauses.append("(source = ? OR app = ?)")
            args += [source, source]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def rows(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        model: str | None = None,
        status: str | None = None,
        source: str | None = None,
        before_id: int | None = None,
    ) -> list[LedgerRow]:
        """The expense log, newest first. ``before_id`` pages by key (constant time at any depth); ``offset`` is
        kept for simple callers and walks the ``id`` index."""
        where, args = self._filters(model, status, source)
        if before_id is not None:
            where += (" AND " if where else " WHERE ") + "id < ?"
            args.append(int(before_id))
        cur = self._conn().execute(
            "SELECT id, ts, model, family, endpoint, source, app, key_fp, key_hint, status, prompt_tokens, "
            "completion_tokens, prompt_est, completion_est, images, cost, cost_est, relay_code, http_status, "
            f"latency_ms, stream, tier, attempt, measured, estimate_reason FROM requests{where} "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            [*args, int(limit), int(offset)],
        )
        return [
            LedgerRow(
                id=int(r[0]), time=float(r[1]), model=r[2], family=r[3], endpoint=r[4], source=r[5], app=r[6],
                key_fingerprint=r[7], key_hint=r[8], status=r[9],
                prompt_tokens=int(r[10] if r[10] is not None else r[12] or 0),
                completion_tokens=int(r[11] or 0),
                prompt_tokens_estimated=int(r[12] or 0), completion_tokens_estimated=int(r[13] or 0),
                images=int(r[14] or 0), cost_cny=r[15], cost_estimated=r[16], relay_code=r[17],
                http_status=r[18], latency_ms=r[19], stream=bool(r[20]), tier=r[21], attempt=int(r[22] or 0),
                measured=bool(r[23]) and r[9] not in ("pending", "expired"),
                estimate_reason=_estimate_reason(r[9], bool(r[23]), r[24]),
            )
            for r in cur
        ]

    def count(self, *, model: str | None = None, status: str | None = None, source: str | None = None) -> int:
        where, args = self._filters(model, status, source)
        return int(self._conn().execute(f"SELECT COUNT(*) FROM requests{where}", args).fetchone()[0])

    def windows(self, now: float | None = None, *, tier: Tier | None = None,
                key_tiers: dict[str, str] | None = None, per_key: bool = False) -> list[WindowStatus]:
        """Each family's sliding hour across all local keys (the IP's, with ``tier``'s limits); with ``per_key``,
        then each key that used the family this hour, with its own tier's limits (``scope="key"`` rows).

        ``tier``: the limits for the IP rows; default: the tier a relay code revealed most recently, else unknown
        (judged, like the gate does, by the limits both tiers share: the paid ones). With ``per_key``, the IP rows are one per tier of the keys that used the family this hour
        (the relay judges the one IP count by the asking key's tier), ``tier`` only when no key did. ``key_tiers``: key fingerprint → configured tier (profiles); a key
        not in it shows the tier the relay revealed for it, else unknown."""
        now = self.clock() if now is None else now
        conn = self._conn()
        since = now - WINDOW_SECONDS
        tier_source = "configured" if tier else "unknown"
        if tier is None:
            row = conn.execute("SELECT tier FROM learned_tiers ORDER BY ts DESC LIMIT 1").fetchone()
            tier = row[0] if row and row[0] in ("free", "paid") else "unknown"
            tier_source = "learned" if tier != "unknown" else "unknown"
        catalog = load_catalog()
        out = []
        if not per_key:
            for family in catalog.limits:
                out.append(self._window(conn, family, since, now, tier, tier_source, catalog))
            return out
        keys_out = self._key_windows(conn, since, now, key_tiers, catalog, tuple(catalog.limits))
        # The IP's window is one count, but the relay judges it by the limits of the tier of the key that asks: a
        # free key's request by 60 gpt-3.5 an hour, a paid key's by 1,000. One IP row per tier in use this hour.
        for family in catalog.limits:
            # (an unknown tier is judged by the limits both tiers share — the paid ones — so it shows there)
            in_use: list[tuple[Tier, str]] = [
                (t, "keys") for t in dict.fromkeys("paid" if w.tier == "unknown" else w.tier for w in keys_out
                                                   if w.family == family)]
            for ip_tier, source in in_use or [(tier, tier_source)]:
                out.append(self._window(conn, family, since, now, ip_tier, source, catalog))
        return out + keys_out

    def _key_windows(self, conn: sqlite3.Connection, since: float, now: float, key_tiers: dict[str, str] | None,
                     catalog: Any, families: tuple[str, ...]) -> list[WindowStatus]:
        """Each key that used a family this hour, by its own tier (configured, else learned, else the tier its rows
        were judged by, else unknown).

        Rows are found through the families' window index (``family IN (…) AND win_ts > ?``: the hour's rows only,
        not a scan of every row the ledger ever held — 70 ms at 100,000 rows)."""
        out: list[WindowStatus] = []
        if not families:
            return out
        learned = {str(fp): str(t) for fp, t in conn.execute("SELECT key_fp, tier FROM learned_tiers")}
        marks = ", ".join("?" for _ in families)
        # The tier the gate last judged each key by (a configured tier is stored with its rows).
        assumed = {str(fp): str(t) for fp, t in conn.execute(
            f"SELECT key_fp, tier FROM requests WHERE id IN (SELECT MAX(id) FROM requests WHERE family IN ({marks}) "
            "AND win_ts > ? AND counted = 1 GROUP BY key_fp)", (*families, since))}
        keys = conn.execute(
            f"SELECT key_fp, MAX(key_hint), family FROM requests WHERE family IN ({marks}) AND win_ts > ? "
            "AND counted = 1 GROUP BY key_fp, family ORDER BY MAX(key_hint), family", (*families, since)).fetchall()
        for key_fp, hint, family in keys:
            key_tier = (key_tiers or {}).get(key_fp)
            source = "configured"
            if key_tier not in ("free", "paid"):
                key_tier, source = learned.get(key_fp, "unknown"), "learned"
            if key_tier not in ("free", "paid"):
                key_tier, source = assumed.get(key_fp, "unknown"), "configured"
            if key_tier not in ("free", "paid"):
                key_tier, source = "unknown", "unknown"
            out.append(self._window(conn, family, since, now, key_tier, source, catalog,  # type: ignore[arg-type]
                                    key_fp=key_fp, key_hint=hint))
        return out

    def _window(self, conn: sqlite3.Connection, family: str, since: float, now: float, tier: Tier,
                tier_source: str, catalog: Any, *, key_fp: str | None = None, key_hint: str | None = None
                ) -> WindowStatus:
        # What the gate applies: an unknown tier is judged by the limits both tiers share (the paid ones).
        limits = catalog.limits_for(family, "paid" if tier == "unknown" else tier)
        key_clause, key_args = ("", []) if key_fp is None else (" AND key_fp = ?", [key_fp])
        requests, tokens = _ledger.window_totals(conn, family, since, key_fp)
        oldest = conn.execute(
            f"SELECT MIN(win_ts) FROM requests WHERE family = ? AND win_ts > ? AND counted = 1{key_clause}",
            (family, since, *key_args)).fetchone()[0]
        # (+family, +key_fp: through the few in-flight rows' index, not every row of the family the ledger holds)
        pending = conn.execute(
            f"SELECT COUNT(*) FROM requests WHERE +family = ? AND ts > ? AND status = 'pending'"
            f"{key_clause.replace('key_fp', '+key_fp')}", (family, since, *key_args)).fetchone()[0]
        # A relay code speaks of one key and one tier: it shows on that key's row, and on the IP row of its tier.
        ex_clause, ex_args = "", []
        if key_fp is not None:
            ex_clause, ex_args = " AND (key_fp = ? OR key_fp IS NULL)", [key_fp]
        if tier in ("free", "paid"):
            ex_clause += " AND (tier = ? OR tier IS NULL)"
            ex_args.append(tier)
        ex = conn.execute(f"SELECT MAX(ts) FROM exhaustions WHERE family = ? AND ts > ?{ex_clause}",
                          (family, since, *ex_args)).fetchone()[0]
        recent_requests, recent_tokens = _ledger.window_totals(conn, family, now - PACE_SECONDS, key_fp)
        runs_out_at, runs_out_of = project_exhaustion(
            now, recent_requests / PACE_SECONDS, recent_tokens / PACE_SECONDS, requests,
            limits.requests_per_hour if limits else None, tokens, limits.tokens_per_hour if limits else None,
            samples=recent_requests,
        )
        return WindowStatus(
            family=family, tier=tier, tier_source=tier_source,
            requests_used=requests, requests_limit=limits.requests_per_hour if limits else 0,
            tokens_used=tokens, tokens_limit=limits.tokens_per_hour if limits else None,
            next_free_at=None if oldest is None else float(oldest) + WINDOW_SECONDS,
            pending=int(pending), allowed=limits is not None,
            exhausted_until=None if ex is None else float(ex) + WINDOW_SECONDS,
            runs_out_at=runs_out_at, runs_out_of=runs_out_of,
            scope="ip" if key_fp is None else "key", key_hint=key_hint, key_fingerprint=key_fp,
        )

    def change_token(self) -> tuple[int, int]:
        """Changes when any process writes: (highest row id, SQLite's data_version for this connection)."""
        conn = self._conn()
        max_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM requests").fetchone()[0]
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        return int(max_id), int(version)

    def spend(self, since: float | None = None) -> tuple[float, int]:
        """(CNY spent on priced requests, number of unpriced requests) — for the estimated balance."""
        t = self.summary(since=since)
        return t.cost_cny, t.unpriced

    def topups(self) -> list[tuple[float, float, str | None]]:
        """(time, CNY, note) of recorded top-ups, oldest first."""
        return [(float(r[1]), float(r[2]), r[4]) for r in _ledger.topups(self._conn())]


PACE_SECONDS = 600.0
"""The recent stretch whose pace the burn-rate projection extends."""
MIN_PACE_SAMPLES = 3
"""Requests in that stretch below which there is no pace to speak of (one request is not a rate)."""


def project_exhaustion(
    now: float, requests_per_second: float, tokens_per_second: float,
    requests_used: int, requests_limit: int | None, tokens_used: int, tokens_limit: int | None,
    *, samples: int | None = None,
) -> tuple[float | None, str]:
    """When the window's first budget runs out if the recent pace goes on, and which one (None: no projection).

    Only a pace that can run it out: the window slides, so a steady pace holds ``pace × 3600`` at most and a budget
    larger than that never runs out, however near it is now (one that can runs it out within the hour). Not from
    fewer than :data:`MIN_PACE_SAMPLES` requests.
    Pessimistic within that: what leaves the window meanwhile is not counted back.
    """
    if samples is not None and samples < MIN_PACE_SAMPLES:
        return None, ""
    candidates = []
    for what, pace, used, limit in (("tokens", tokens_per_second, tokens_used, tokens_limit),
                                    ("requests", requests_per_second, requests_used, requests_limit)):
        if not limit or pace <= 0 or pace * WINDOW_SECONDS < limit:
            continue  # (and when it can, it does within the hour)
        candidates.append((now + max(0, limit - used) / pace, what))
    if not candidates:
        return None, ""
    at, what = min(candidates)
    return max(at, now), what


def local_zone() -> dt.tzinfo | None:
    """The user's real zone as a ``zoneinfo`` zone (``TZ``, else the system's ``/etc/localtime`` link), with its
    daylight-saving rules; None when it cannot be named — then callers use naive local time, which the C library
    also converts with the zone's rules for each instant. Never today's UTC offset applied to every date."""
    import zoneinfo

    names = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            names.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in names:
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return None
