"""Balance: measured from the relay where it answers, else estimated from the ledger — and always labelled.

The relay documents only its web shop. Many OpenAI-compatible relays (one-api, new-api) also answer OpenAI's legacy
billing endpoints: ``GET {base}/dashboard/billing/subscription`` (``hard_limit_usd``: what was granted) and
``GET {base}/dashboard/billing/usage`` (``total_usage``: lifetime spend in hundredths). Despite the ``usd`` in the
name these are in the relay's own currency, which for BaicaiGPT is CNY; we say so in ``detail``.

When the relay does not answer them (any failure: network, status, shape, a relay error code), the balance is
estimated: top-ups recorded with ``baicai usage topup`` minus what the ledger priced since the first of them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._text import tr

if TYPE_CHECKING:
    import httpx2

__all__ = ["Balance", "balance", "estimated_balance", "record_topup"]

_TIMEOUT = 5.0


@dataclass(frozen=True)
class Balance:
    amount_cny: float | None
    """None when neither the relay nor the ledger can tell (no top-up recorded)."""
    measured: bool
    """True: the relay's own figure. False: our estimate from the ledger."""
    source: str
    """``relay`` (billing endpoints), ``ledger`` (top-ups minus spend) or ``none``."""
    as_of: float
    detail: str
    """Bilingual: where the figure comes from, and why the relay's was not used."""
    granted_cny: float | None = None
    used_cny: float | None = None

    @property
    def label(self) -> str:
        return tr("实测", "measured") if self.measured else tr("估算", "estimated")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


class _Unavailable(Exception):
    pass


def _key_and_base(target: Any) -> tuple[str, str]:
    """(key, base URL) from ``Credentials``, an ``openai`` client, a ``(key, base)`` tuple, or None (resolve)."""
    if target is None:
        from ._keys import resolve_credentials

        target = resolve_credentials()
    if isinstance(target, tuple):
        key, base = target
    else:
        key = getattr(target, "key", None) or getattr(target, "api_key", None)
        base = getattr(target, "base_url", None)
    if not key or not base:
        raise TypeError("balance() needs Credentials, an openai client, or (key, base_url)")
    return str(key), str(base)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _get_json(client: httpx2.Client, url: str, params: dict[str, str] | None = None) -> Any:
    from ._transport._wire import parse_relay_error  # not ._errors: that imports openai (~1 s cold)

    response = client.get(url, params=params)
    if response.status_code != 200:
        raise _Unavailable(f"HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise _Unavailable("not JSON") from exc
    answer = parse_relay_error(data)
    if answer is not None:
        raise _Unavailable(f"relay code {answer.code}")
    if not isinstance(data, dict):
        raise _Unavailable("unexpected shape")
    return data


def _measured(key: str, base: str, *, timeout: float, transport: Any, now: float) -> Balance:
    import httpx2

    from ._urls import normalise_base_url

    base = normalise_base_url(base)[0].rstrip("/")
    bases = [base]
    if base.endswith("/v1"):
        bases.append(base[: -len("/v1")])  # some relays (and NextChat) serve billing without /v1
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    today = dt.date.fromtimestamp(now)
    params = {"start_date": "2023-01-01", "end_date": (today + dt.timedelta(days=1)).isoformat()}
    failures: list[str] = []
    if transport is None:  # routed by the proxy variables like every SDK request; no CA bundle for http://
        from ._transport._proxies import _EnvProxyTransport

        transport = _EnvProxyTransport()
    with httpx2.Client(timeout=timeout, headers=headers, transport=transport) as client:
        for root in bases:
            try:
                sub = _get_json(client, f"{root}/dashboard/billing/subscription")
                granted = _number(sub.get("hard_limit_usd"))
                if granted is None:
                    granted = _number(sub.get("system_hard_limit_usd"))
                if granted is None:
                    raise _Unavailable("no hard_limit_usd")
                usage = _get_json(client, f"{root}/dashboard/billing/usage", params)
                total = _number(usage.get("total_usage"))
                if total is None:
                    raise _Unavailable("no total_usage")
            except _Unavailable as exc:
                failures.append(f"{root}: {exc}")
                continue
            except httpx2.HTTPError as exc:
                failures.append(f"{root}: {type(exc).__name__}")
                break  # the host is unreachable; the other path would fail the same way
            used = total / 100.0
            return Balance(
                amount_cny=round(granted - used, 6), measured=True, source="relay", as_of=now,
                detail=tr("中转计费接口（按人民币计）", "the relay's billing endpoints (amounts taken as CNY)"),
                granted_cny=granted, used_cny=used,
            )
    raise _Unavailable("; ".join(failures) or "no answer")


def estimated_balance(
    *, ledger_path: str | os.PathLike[str] | None = None, reason: str = "", now: float | None = None,
    no_key: bool = False,
) -> Balance:
    """Recorded top-ups minus the ledger's priced spend since the first top-up. ``no_key``: the relay was not
    asked because no key is configured — said as such, with the command that fixes it (a newcomer's first look)."""
    from ._usage import UsageStore

    now = time.time() if now is None else now
    store = UsageStore(ledger_path)
    try:
        topups = store.topups()
        why = f"（{reason}）" if reason else ""
        why_en = f" ({reason})" if reason else ""
        if no_key:
            why, why_en = "（没有配置密钥，未向中转查询）", " (no key is configured, the relay was not asked)"
        if not topups and no_key:
            return Balance(
                amount_cny=None, measured=False, source="none", as_of=now,
                detail=tr("还没有配置密钥，没有向中转查询余额：用 baicai key add 名称 保存密钥",
                          "no key is configured, so the relay was not asked: save one with `baicai key add NAME`"),
            )
        if not topups:
            return Balance(
                amount_cny=None, measured=False, source="none", as_of=now,
                detail=tr(f"中转未提供余额{why}，且未记录充值：运行 baicai usage topup 金额",
                          f"the relay gave no balance{why_en} and no top-up is recorded: run `baicai usage topup AMOUNT`"),
            )
        granted = sum(amount for _, amount, _ in topups)
        spent, unpriced = store.spend(since=topups[0][0])
        note_zh = f"；{unpriced} 个请求的模型价格未知，未计入" if unpriced else ""
        note_en = f"; {unpriced} requests of unpriced models not included" if unpriced else ""
        return Balance(
            amount_cny=round(granted - spent, 6), measured=False, source="ledger", as_of=now,
            detail=tr(f"估算：记录的充值减去本机账本消费{why}{note_zh}",
                      f"estimated: recorded top-ups minus this machine's ledger spend{why_en}{note_en}"),
            granted_cny=granted, used_cny=spent,
        )
    finally:
        store.close()


def balance(
    credentials_or_client: Any = None,
    *,
    ledger_path: str | os.PathLike[str] | None = None,
    timeout: float = _TIMEOUT,
    transport: Any = None,
    clock: Callable[[], float] = time.time,
) -> Balance:
    """The balance: the relay's billing endpoints if they answer (measured), else top-ups minus ledger spend
    (estimated, with the reason). Never raises for a relay that does not answer."""
    now = clock()
    try:
        key, base = _key_and_base(credentials_or_client)
    except Exception:  # no key configured: the ledger can still answer
        return estimated_balance(ledger_path=ledger_path, now=now, no_key=True)
    try:
        return _measured(key, base, timeout=timeout, transport=transport, now=now)
    except _Unavailable as exc:
        return estimated_balance(ledger_path=ledger_path, reason=f"billing endpoints: {exc}", now=now)


def record_topup(
    amount_cny: float, *, note: str | None = None, ledger_path: str | os.PathLike[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Remember a top-up (money paid into the relay) for the estimated balance."""
    from . import _ledger

    if ledger_path is None:
        from ._paths import ledger_path as default_path

        ledger_path = default_path()
    conn = _ledger.connect(Path(ledger_path))
    try:
        return _ledger.add_topup(conn, float(amount_cny), ts=clock(), note=note)
    finally:
        conn.close()
