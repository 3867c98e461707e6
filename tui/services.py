"""The only module of the TUI that calls the SDK (and the sidecar): everything else shows what this returns.

Why a layer of its own: screens stay free of SQL, HTTP and keyring details, tests can hand the app a
``Services`` built on a temporary home, and every SDK object is turned into a small frozen dataclass here,
so a change in an SDK type touches this file only. Methods are plain blocking calls: the app runs the slow
ones (relay, sidecar, big ledger reads) in thread workers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from baicai_sdk import KeyStore, Profile, ReportRow, Totals, UsageStore

__all__ = [
    "Services",
    "TotalsView",
    "ReportLine",
    "BalanceView",
    "ProfileView",
    "OverviewView",
    "WindowView",
    "LedgerLine",
    "LedgerPage",
    "SidecarView",
    "TokenView",
    "ApplyAppView",
    "PlanView",
    "ServiceError",
]

Clock = Callable[[], float]
T = TypeVar("T")
_LEDGER_THREAD = "baicai-tui-ledger"
GroupBy = Literal["day", "hour", "model", "key", "source"]
GROUPS: tuple[GroupBy, ...] = ("day", "hour", "model", "key", "source")


class ServiceError(RuntimeError):
    """A failure the screen shows as a status line (bilingual message), never a crash."""


# --------------------------------------------------------------------------- views (plain data for screens)


@dataclass(frozen=True)
class TotalsView:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens: int = 0
    cost_cny: float = 0.0


@dataclass(frozen=True)
class ReportLine:
    label: str
    requests: int
    tokens: int
    cost_cny: float


@dataclass(frozen=True)
class BalanceView:
    amount_cny: float | None
    measured: bool
    source: str
    as_of: float | None = None
    error: str | None = None
    detail: str = ""
    """Bilingual, from the SDK: where the figure comes from, or why there is none."""


@dataclass(frozen=True)
class ProfileView:
    name: str
    tier: str
    masked: str
    base_url: str | None
    active: bool
    demo: bool = False
    """The demo's own key: handed to the services, in no key store — it cannot be changed or removed."""


@dataclass(frozen=True)
class OverviewView:
    today: TotalsView
    month: TotalsView
    by_model: list[ReportLine]
    profile: ProfileView | None


@dataclass(frozen=True)
class WindowView:
    family: str
    tier: str
    requests_used: int
    requests_limit: int | None
    tokens_used: int
    tokens_limit: int | None
    next_free_at: float | None
    runs_out_at: float | None
    """Burn-rate projection: when a budget is used up if the last 10 minutes' pace goes on."""
    runs_out_of: str = ""
    """Which budget runs out first: ``tokens`` or ``requests``."""
    allowed: bool = True
    """False where the tier may not use the family at all (DALL·E on the free tier)."""
    exhausted_until: float | None = None
    """The relay said the window is used up (a limit code): blocked until then."""
    key: str = ""
    """Empty for this IP's window (every local key); else the masked key whose own window this is."""
    free_models: tuple[str, ...] = ()
    """On a free-tier window of a family the free tier may use only in part: those models (the free gpt-4 is
    gpt-4-0125-preview…, not gpt-4), from the SDK's catalogue."""


@dataclass(frozen=True)
class LedgerLine:
    id: int
    time: float
    model: str
    source: str
    app: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    cost_cny: float | None
    """None when the model has no known price (the ledger never guesses 0)."""
    latency_ms: float | None
    relay_code: int | None
    meaning: str
    key: str
    attempt: int = 0
    """0: the app request's first attempt; n: its n-th retry."""
    measured: bool = True
    """False: tokens and cost are the ledger's estimate (the relay reported no usage), or only the price is."""
    cost_mark: str = ""
    """The SDK's mark before the cost (``~`` usage estimated, ``≤`` tier unknown: paid price), as ``usage log``."""


@dataclass(frozen=True)
class LedgerPage:
    lines: list[LedgerLine]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class TokenView:
    app: str
    masked: str


@dataclass(frozen=True)
class SidecarView:
    up: bool
    url: str
    port: int | None
    detail: str
    recent_errors: list[str] = field(default_factory=list)
    tokens: list[TokenView] = field(default_factory=list)
    started_here: bool = False


@dataclass(frozen=True)
class ApplyAppView:
    name: str
    detected: bool
    target: str
    """What was found, or where we looked."""
    status: str
    """What applying would change."""
    title: str = ""


@dataclass(frozen=True)
class PlanView:
    app: str
    diff: str
    changed: bool
    handle: Any = field(repr=False, compare=False, default=None)
    target: str = ""
    """Masked: where the app will point (the sidecar with its token, or the relay with the key)."""
    title: str = ""
    """The preview's title, in the language in effect: "What will change for llm → the local sidecar …"."""


# --------------------------------------------------------------------------- adapters


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _totals(t: Totals) -> TotalsView:
    return TotalsView(requests=t.requests, prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
                      tokens=t.total_tokens, cost_cny=t.cost_cny)


def _report_line(r: ReportRow) -> ReportLine:
    return ReportLine(label=r.key, requests=r.requests, tokens=r.total_tokens, cost_cny=r.cost_cny)


def _meaning(code: int | None) -> str:
    if code is None:
        return ""
    from baicai_sdk.integration import relay_code

    known = relay_code(code)
    return str(known.message) if known is not None else tr_both("未知代码", "unknown code")


def _masked_key(fingerprint: Any) -> str:
    """The ledger stores a fingerprint, never the key: show a short, stable part of it."""
    text = str(fingerprint or "")
    return f"…{text[-6:]}" if len(text) > 6 else text


# --------------------------------------------------------------------------- the services


class Services:
    """Every call the TUI makes to the SDK, the key store, the sidecar and ``apply``.

    Where the files are is the process's business (``BAICAI_HOME``, read by every SDK part), never changed
    here: a constructor that set the environment would move the files of everything else in the process too.
    ``clock`` is the time the app shows and asks about, injected so snapshots and countdowns are deterministic.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tz: dt.tzinfo | None = None,
        sidecar_url: str | None = None,
        demo_credentials: tuple[str, str, str] | None = None,
        export_dir: Path | None = None,
    ) -> None:
        self.clock: Clock = clock or time.time
        self.tz = tz or dt.datetime.now().astimezone().tzinfo or dt.timezone.utc
        self._sidecar_url = sidecar_url or os.environ.get("BAICAI_SIDECAR_URL") or None
        self._store: UsageStore | None = None
        self._ledger_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_LEDGER_THREAD)
        self._sidecar_proc: subprocess.Popen[bytes] | None = None
        self._sidecar_stderr: Any = None
        """Where the sidecar started from here writes its errors: why it stopped, shown on the Sidecar tab."""
        self._demo = demo_credentials
        """(key, base_url, tier) for ``baicai demo``: used instead of the user's profiles, never stored."""
        self._export_dir = export_dir
        """Where exports go; None: the data dir's ``exports`` folder (the demo's is deleted at exit: it passes one)."""

    @property
    def sidecar_url(self) -> str:
        """The one asked for (``--sidecar-url``, ``BAICAI_SIDECAR_URL``), else where the running sidecar says it
        listens (its state file), else the default port — read each time, so a sidecar started later is found."""
        if self._sidecar_url:
            return self._sidecar_url.rstrip("/")
        from baicai_sidecar._state import current_url

        return current_url()

    # ---- ledger (read side)
    def _read(self, query: Callable[[UsageStore], T]) -> T:
        """Run ``query(usage_store)`` on the one ledger thread.

        Why one thread: textual starts a new thread per worker, and a SQLite connection belongs to its thread —
        per-worker connections would be reopened on every refresh, and ``PRAGMA data_version`` (the change
        token) only means something when compared on the same connection.
        """
        if threading.current_thread().name.startswith(_LEDGER_THREAD):
            return query(self._usage_store())
        return self._ledger_thread.submit(lambda: query(self._usage_store())).result()

    def _usage_store(self) -> UsageStore:
        if self._store is None:
            from baicai_sdk import UsageStore
            from baicai_sdk.integration import ledger_path

            self._store = UsageStore(ledger_path(), clock=self.clock)
        return self._store

    def change_token(self) -> tuple[int, int]:
        max_id, version = self._read(lambda u: u.change_token())
        return int(max_id), int(version)

    def _local_midnight(self, now: float) -> float:
        day = dt.datetime.fromtimestamp(now, self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp()

    def _month_start(self, now: float) -> float:
        day = dt.datetime.fromtimestamp(now, self.tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp()

    def overview(self) -> OverviewView:
        now = self.clock()
        midnight, month_start = self._local_midnight(now), self._month_start(now)
        today, month, models = self._read(lambda u: (u.summary(since=midnight), u.summary(since=month_start),
                                                     u.report("model", since=month_start, tz=self.tz)))
        return OverviewView(today=_totals(today), month=_totals(month), by_model=[_report_line(r) for r in models],
                            profile=self.active_profile())

    def range_bounds(self, preset: str) -> tuple[float | None, float | None]:
        """``today`` / ``7d`` / ``30d`` / ``month`` / ``all`` as (since, until) in the local time zone."""
        now = self.clock()
        midnight = self._local_midnight(now)
        if preset == "today":
            return midnight, None
        if preset in ("7d", "30d"):
            days = int(preset[:-1]) - 1
            start = dt.datetime.fromtimestamp(midnight, self.tz) - dt.timedelta(days=days)
            return start.timestamp(), None
        if preset == "month":
            return self._month_start(now), None
        return None, None

    def date_bounds(self, first: str, last: str) -> tuple[float | None, float | None]:
        """``YYYY-MM-DD`` days (inclusive, local time zone; either may be empty) as (since, until).

        Raises ``ValueError`` with a bilingual message for a date it cannot read or a range that runs backwards.
        """
        def day_start(text: str) -> dt.datetime | None:
            text = text.strip()
            if not text:
                return None
            try:
                return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=self.tz)
            except ValueError:
                raise ValueError(tr_both(f"日期应为 YYYY-MM-DD，而不是 {text!r}", f"a date reads YYYY-MM-DD, not {text!r}")) from None

        start, end = day_start(first), day_start(last)
        if start is not None and end is not None and end < start:
            raise ValueError(tr_both("结束日期早于开始日期", "the end date is before the start date"))
        since = start.timestamp() if start is not None else None
        until = (end + dt.timedelta(days=1)).timestamp() if end is not None else None
        return since, until

    def report(self, by: GroupBy, since: float | None = None, until: float | None = None) -> list[ReportLine]:
        rows = self._read(lambda u: u.report(by, since=since, until=until, tz=self.tz))
        return [_report_line(r) for r in rows]

    def export(self, lines: Iterable[ReportLine], fmt: Literal["csv", "json"], path: Path | None = None,
               *, by: str = "report") -> Path:
        """Write a report as CSV or JSON into the data dir (or ``path``); returns where it went."""
        lines = list(lines)
        if path is None:
            from baicai_sdk.integration import data_dir

            stamp = dt.datetime.fromtimestamp(self.clock(), self.tz).strftime("%Y%m%d-%H%M%S")
            path = (self._export_dir or data_dir() / "exports") / f"usage-{by}-{stamp}.{fmt}"
        from baicai_sdk.integration import atomic_write

        if fmt == "json":
            text = json.dumps([asdict(x) for x in lines], ensure_ascii=False, indent=2)
        else:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow([by, "requests", "tokens", "cost_cny"])
            for x in lines:
                writer.writerow([x.label, x.requests, x.tokens, f"{x.cost_cny:.6f}"])
            text = buf.getvalue()
        atomic_write(path, text.encode("utf-8"))  # a kill mid-export never leaves half a file under the final name
        return path

    def ledger_page(self, offset: int = 0, limit: int = 50, *, model: str | None = None,
                    status: str | None = None, source: str | None = None) -> LedgerPage:
        rows, total = self._read(lambda u: (u.rows(offset, limit, model=model, status=status, source=source),
                                            u.count(model=model, status=status, source=source)))
        lines = [
            LedgerLine(
                id=r.id, time=r.time, model=r.model, source=r.source, app=r.app or "", status=r.status,
                prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, cost_cny=r.cost_cny,
                latency_ms=None if r.latency_ms is None else float(r.latency_ms), relay_code=r.relay_code,
                meaning=_meaning(r.relay_code), key=r.key_hint or _masked_key(r.key_fingerprint),
                attempt=r.attempt, measured=r.measured, cost_mark=r.cost_mark,
            )
            for r in rows
        ]
        return LedgerPage(lines=lines, total=total, offset=offset, limit=limit)

    def windows(self) -> list[WindowView]:
        now = self.clock()
        active = self.active_profile()
        tier = active.tier if active is not None and active.tier in ("free", "paid") else None
        key_tiers = self._profile_tiers()
        statuses = self._read(lambda u: u.windows(now=now, tier=tier, key_tiers=key_tiers, per_key=True))  # type: ignore[arg-type]
        from baicai_sdk import load_catalog

        catalog = load_catalog()
        return [
            WindowView(
                family=w.family, tier=w.tier, requests_used=w.requests_used, requests_limit=w.requests_limit,
                tokens_used=w.tokens_used, tokens_limit=w.tokens_limit, next_free_at=w.next_free_at,
                runs_out_at=w.runs_out_at, runs_out_of=w.runs_out_of, allowed=w.allowed,
                exhausted_until=w.exhausted_until if (w.exhausted_until or 0.0) > now else None,
                key=(w.key_hint or _masked_key(w.key_fingerprint)) if w.scope == "key" else "",
                free_models=(catalog.free_models(w.family) or ()) if w.tier == "free" and w.allowed else (),
            )
            for w in statuses
        ]

    def _profile_tiers(self) -> dict[str, str]:
        """Key fingerprint → configured tier, so each key's window shows its own tier's limits."""
        try:
            return {p.fingerprint: p.tier for p in self._keys().list() if p.tier in ("free", "paid")}
        except Exception:  # no store yet, or an unreadable one: the ledger's learned tiers answer
            return {}

    # ---- balance (a relay call: run in a worker)
    def balance(self) -> BalanceView:
        """The relay's figure when its billing endpoints answer (measured), else the ledger's estimate."""
        try:
            from baicai_sdk import balance

            target = None if self._demo is None else (self._demo[0], self._demo[1])
            b = balance(target, clock=self.clock)
        except Exception as exc:  # an unreachable relay or a broken config is a status, not a crash
            return BalanceView(amount_cny=None, measured=False, source="error", error=_short_error(exc))
        return BalanceView(amount_cny=b.amount_cny, measured=b.measured, source=b.source, as_of=b.as_of,
                           detail=b.detail)

    # ---- keys
    def _keys(self) -> KeyStore:
        from baicai_sdk import KeyStore

        return KeyStore()

    def profiles(self) -> list[ProfileView]:
        """The stored profiles; in the demo the demo's own key comes first and is the active one, as the
        overview says (profiles added during the demo live in its temporary folder and are never active)."""
        store = self._keys()
        if self._demo is not None:
            demo = self.active_profile()
            return [p for p in [demo] if p is not None] + [_profile(p, False) for p in store.list()]
        active = store.active()
        active_name = active.name if active is not None else None
        return [_profile(p, p.name == active_name) for p in store.list()]

    def active_profile(self) -> ProfileView | None:
        if self._demo is not None:
            from baicai_sdk import mask_key

            key, base_url, tier = self._demo
            return ProfileView(name="demo", tier=tier, masked=mask_key(key), base_url=base_url, active=True,
                               demo=True)
        try:
            active = self._keys().active()
        except Exception:
            return None
        return None if active is None else _profile(active, True)

    def add_key(self, name: str, key: str, tier: str = "unknown", store: str | None = None) -> None:
        """``store``: ``keyring`` or ``file``; None: the key store's default (``BAICAI_SECRET_STORE``)."""
        self._keys().add(name, key, tier=tier, store=store)

    def key_store_choice(self) -> tuple[str, bool]:
        """(the store a new key should go to by default, whether the OS keyring works here). Without a working
        keyring the file is offered first: the form shows it (plain text, 0600) before anything is saved."""
        keys = self._keys()
        try:
            keys.ensure_usable("keyring")
        except Exception:  # noqa: BLE001 - no backend, locked, or broken: the file is what can work
            return "file", False
        return keys.secret_store, True

    def set_tier(self, name: str, tier: str) -> None:
        self._keys().set_tier(name, tier)

    def use_profile(self, name: str) -> None:
        self._keys().use(name)

    def remove_profile(self, name: str) -> None:
        self._keys().remove(name)

    def key_backend(self) -> str:
        """Where new secrets go: the OS keyring or the 0600 file (``BAICAI_SECRET_STORE``)."""
        backend = str(self._keys().backend_description)
        if self._demo is not None:
            backend += " · " + tr_both("演示密钥只用于本次演示，不保存", "the demo's key is for this demo only, never stored")
        return backend

    # ---- sidecar
    def _token_store(self) -> Any:
        from baicai_sidecar._tokens import TokenStore

        return TokenStore()

    def sidecar_status(self) -> SidecarView:
        import httpx2

        store = self._token_store()
        tokens = [TokenView(app=t.app, masked=t.masked) for t in store.list()]
        started_here = self._sidecar_proc is not None and self._sidecar_proc.poll() is None
        exited = self._exit_reason()
        port = _port_of(self.sidecar_url)
        headers = {}
        default = store.get("default")  # the status page sits behind the same token guard as the proxy
        if default:
            headers["Authorization"] = f"Bearer {default}"
        try:
            with httpx2.Client(timeout=1.5, trust_env=False) as client:
                resp = client.get(f"{self.sidecar_url}/sidecar/status", headers=headers)
            data = resp.json() if resp.status_code == 200 else {}
            if not isinstance(data, dict):
                data = {}
        except httpx2.ConnectError:  # nothing listens there: the usual case, said in words with the way out
            if exited:  # started from here and gone again (no key, port taken): say why, not "press s" once more
                return SidecarView(up=False, url=self.sidecar_url, port=port, detail=exited, tokens=tokens)
            if started_here:  # launched a moment ago, not listening yet
                return SidecarView(up=False, url=self.sidecar_url, port=port, detail=tr_both("正在启动…", "starting…"),
                                   tokens=tokens, started_here=True)
            return SidecarView(up=False, url=self.sidecar_url, port=port, detail=tr_both(
                "没有在运行：按 s 在这里启动，或在终端运行 baicai sidecar",
                "not running: press s to start it here, or run `baicai sidecar` in a terminal"),
                tokens=tokens, started_here=started_here)
        except Exception as exc:
            return SidecarView(up=False, url=self.sidecar_url, port=port, detail=tr_both(
                f"没有回答（{_short_error(exc)}）", f"no answer ({_short_error(exc)})"), tokens=tokens,
                started_here=started_here)
        if resp.status_code != 200:
            return SidecarView(up=False, url=self.sidecar_url, port=port, detail=f"HTTP {resp.status_code}",
                               tokens=tokens, started_here=started_here)
        errors = [_error_line(e, self.tz) for e in data.get("recent_errors") or []]
        detail = f"{data.get('upstream', '')} · {data.get('key', '')} · {_int(data.get('requests'))} req"
        return SidecarView(up=True, url=self.sidecar_url, port=port, detail=detail, recent_errors=errors,
                           tokens=tokens, started_here=started_here)

    def start_sidecar(self) -> None:
        """Start ``baicai sidecar`` as a child process (stopped with the TUI, or with :meth:`stop_sidecar`)."""
        if self._sidecar_proc is not None and self._sidecar_proc.poll() is None:
            return
        import tempfile

        from baicai_sidecar._state import DEFAULT_PORT

        from ._i18n import get_lang

        port = _port_of(self.sidecar_url) or DEFAULT_PORT
        env = {**os.environ, "BAICAI_LANG": get_lang()}  # its messages in the language on screen
        if self._demo is not None:
            # The demo has no profile to find: without these the sidecar exited at once with "no API key found …
            # try `baicai demo`", inside the demo. Environment, not arguments: command lines are readable by all.
            key, base_url, tier = self._demo
            env.update(BAICAI_API_KEY=key, BAICAI_BASE_URL=base_url, BAICAI_TIER=tier)
        self._sidecar_stderr = tempfile.TemporaryFile()  # a file, not a pipe: nobody reads it while it runs
        self._sidecar_proc = subprocess.Popen(
            [sys.executable, "-m", "baicai_sdk.cli", "sidecar", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._sidecar_stderr, env=env,
        )

    def _exit_reason(self) -> str | None:
        """Why the sidecar started from here stopped (its last error line), or None while it runs or if it was
        never started here."""
        proc = self._sidecar_proc
        if proc is None or proc.poll() is None or self._sidecar_stderr is None:
            return None
        self._sidecar_stderr.seek(0)
        lines = [line.strip() for line in self._sidecar_stderr.read().decode("utf-8", "replace").splitlines()]
        last = next((line for line in reversed(lines) if line), "")[:400]
        code = proc.returncode
        said = tr_both(f"从这里启动的边车已退出（代码 {code}）", f"the sidecar started here exited (code {code})")
        # Its last line is already in the language on screen (BAICAI_LANG is passed): once, after both halves.
        return f"{said}: {last}" if last else said

    def stop_sidecar(self) -> bool:
        proc, self._sidecar_proc = self._sidecar_proc, None
        stderr, self._sidecar_stderr = self._sidecar_stderr, None
        if stderr is not None:
            stderr.close()
        if proc is None or proc.poll() is not None:
            return False
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()  # gone for sure (and reaped) before the page asks whether it still answers
        return True

    def issue_token(self, app: str) -> str:
        """A new local token for ``app``; the caller shows it once (it is what the app must be given)."""
        return str(self._token_store().issue(app))

    def revoke_token(self, app: str) -> bool:
        return bool(self._token_store().revoke(app))

    # ---- apply
    def apply_env(self) -> Any | None:
        """Where ``apply`` looks for and writes app configs: the real machine, or in the demo a throw-away home.

        The demo's tokens and profiles vanish at exit, so configs written with them must vanish too: the demo
        never detects or edits the user's real ``~/.codex`` or ``~/.config/...``.
        """
        if self._demo is None:
            return None
        from baicai_sdk.integration import data_dir
        from baicai_sidecar.apply import Env

        root = data_dir() / "demo-home"
        (root / "project").mkdir(parents=True, exist_ok=True)
        environ = {"XDG_CONFIG_HOME": str(root / ".config"), "APPDATA": str(root / "AppData" / "Roaming")}
        return Env(home=root, cwd=root / "project", environ=environ, platform=sys.platform, which=lambda name: None)

    def apply_note(self) -> str | None:
        """What the Apply tab says about where it writes, when that is not the real machine."""
        env = self.apply_env()
        if env is None:
            return None
        return tr_both(f"演示模式：应用配置写入演示的临时主目录 {env.home}，不会改动你真实的应用配置",
                       f"demo: app configs are written to the demo's temporary home {env.home}; "
                       "your real app configs are left alone")

    def apply_apps(self) -> list[ApplyAppView]:
        from baicai_sidecar import apply as apply_api

        return [ApplyAppView(name=a.name, detected=bool(a.detected), target=str(a.where), status=str(a.changes),
                             title=str(a.title)) for a in apply_api.list_apps(self.apply_env())]

    def plan(self, app: str, target: str = "sidecar") -> PlanView:
        """What ``apply`` would write for ``app`` (masked diffs, links, instructions); writes nothing.

        ``target`` ``sidecar``: 127.0.0.1 and a local token for this app; ``relay``: the active profile.
        """
        from baicai_sidecar import apply as apply_api

        port = _port_of(self.sidecar_url) if target == "sidecar" else None
        p = apply_api.plan(app, apply_api.build_target(target, app=app, port=port),  # type: ignore[arg-type]
                           env=self.apply_env())
        parts = [c.diff for c in p.changes if c.changed]
        parts += [f"# {tr_both('链接', 'link')}: {p.masked_link(link)}" for link in p.links]
        parts += [f"# {line}" for line in [*p.instructions, *p.notes]]
        return PlanView(app=app, diff="\n".join(parts), changed=bool(p.changed), handle=p,
                        target=str(p.target.label), title=_plan_title(app, p.target))

    def apply_plan(self, plan: PlanView) -> str:
        """Write the plan (backup once, atomic); returns what happened to each file, for the status line."""
        from baicai_sidecar import apply as apply_api

        record = apply_api.apply(plan.handle)
        return "; ".join(f"{o.action} {o.path}" for o in record.outcomes) or tr_both("无文件改动", "no file changed")

    def undo(self, app: str) -> str:
        from baicai_sidecar import apply as apply_api

        result = apply_api.undo(app)
        return "; ".join(f"{o.action} {o.path}" for o in result.outcomes) or tr_both("无可撤销", "nothing to undo")

    def close(self) -> None:
        self.stop_sidecar()
        self._ledger_thread.shutdown(wait=False, cancel_futures=True)


def _profile(p: Profile, active: bool) -> ProfileView:
    return ProfileView(name=p.name, tier=p.tier, masked=p.masked, base_url=p.base_url, active=active)


def _plan_title(app: str, target: Any) -> str:
    """From the target's parts, not its label: the label is already "中文 / English", and set inside both halves of
    a bilingual title it read "→ 本地 sidecar / sidecar …" in the English half too."""
    from baicai_sidecar.apply import mask_secret

    where = f"{target.base_url} ({mask_secret(target.key)})"
    if target.kind == "sidecar":
        return tr_both(f"{app} 将要写入的改动 → 本地边车 {where}", f"What will change for {app} → the local sidecar {where}")
    return tr_both(f"{app} 将要写入的改动 → 白菜GPT 中转 {where}", f"What will change for {app} → the BaicaiGPT relay {where}")


def tr_both(zh: str, en: str) -> str:
    from ._i18n import tr

    return tr(zh, en)


def _short_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _error_line(e: Any, tz: dt.tzinfo | None) -> str:
    """``21:07:03 429 lobechat 40020 message`` from one of the sidecar's recent errors."""
    if not isinstance(e, dict):
        return str(e)
    parts = []
    at = e.get("at")
    if at is not None:
        parts.append(dt.datetime.fromtimestamp(float(at), tz).strftime("%H:%M:%S"))
    for name in ("status", "app", "code", "message"):
        value = e.get(name)
        if value not in (None, ""):
            parts.append(str(value))
    return " ".join(parts)


def _port_of(url: str) -> int | None:
    try:
        from urllib.parse import urlsplit

        return urlsplit(url).port
    except ValueError:
        return None
