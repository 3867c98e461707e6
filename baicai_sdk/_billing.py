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
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._text import Text, tr

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
    key_refused: bool = False
    """The relay refused the key itself: the figure (if any) is only the local estimate, and the key needs fixing."""

    @property
    def label(self) -> str:
        return tr("实测", "measured") if self.measured else tr("估算", "estimated")

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: money rounded to 6 decimals (prices are whole multiples of ¥0.000005), so sums of
        float prices print as the amounts they are, not ``0.30000000000000004``."""
        fields = asdict(self)
        for name in ("amount_cny", "granted_cny", "used_cny"):
            if fields[name] is not None:
                fields[name] = round(fields[name], 6)
        return {**fields, "label": self.label}


class _Unavailable(Exception):
    pass


class _KeyRefused(_Unavailable):
    """The relay refused the key itself (HTTP 401, or an authentication / frozen relay code): no other path or
    top-up can help, and the user must hear that the key is the problem, not the balance."""

    def __init__(self, reason: str, hint: Any = None) -> None:
        super().__init__(reason)
        self.hint = hint
        """The relay code's own advice (a ``Text``), or None for a bare 401."""


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


class _Unreachable(Exception):
    """The host did not answer (refused, timed out, TLS failed): asking the other path would fail the same way."""


def _fetch_with_urllib(url: str, headers: dict[str, str], timeout: float, proxy: str | None) -> tuple[int, bytes]:
    """GET ``url`` with the standard library: two small JSON reads do not need httpx2, whose import is most of a
    quick command's start-up (bench/bench_cli.py). Routed like every SDK request (``env_proxy_for``); redirects
    are not followed (the key would travel to wherever they point); TLS trusts the system's store, as httpx2 does
    (``SSL_CERT_FILE``/``SSL_CERT_DIR`` first, then truststore on Windows and macOS, OpenSSL's paths elsewhere)."""
    import urllib.error
    import urllib.request

    class _NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx itself is the answer (an HTTPError below)

    handlers: list[Any] = [urllib.request.ProxyHandler({url.split(":", 1)[0]: proxy} if proxy else {}),
                           _NoRedirects()]
    if url.startswith("https:") or (proxy or "").startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=_tls_context()))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:  # a status: the host answered
        with exc:
            return int(exc.code), exc.read()
    except urllib.error.URLError as exc:
        reason = exc.reason
        raise _Unreachable(type(reason).__name__ if isinstance(reason, BaseException) else str(reason)) from exc
    except (OSError, ValueError) as exc:  # a timeout while reading, a reset, a malformed proxy URL
        raise _Unreachable(type(exc).__name__) from exc


def _tls_context() -> Any:
    """The trust ``httpcore2.default_ssl_context`` gives httpx2, without importing httpcore2 (~0.1 s of start-up)."""
    import os
    import ssl
    import sys

    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    if sys.platform in ("win32", "darwin"):
        import truststore  # the system's trust store, as httpcore2's default context uses there

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return ssl.create_default_context()


def _fetch_with_httpx2(client: Any, url: str) -> tuple[int, bytes]:
    import httpx2

    try:
        response = client.get(url)
    except httpx2.HTTPError as exc:
        raise _Unreachable(type(exc).__name__) from exc
    except ImportError as exc:  # a socks5:// proxy without socksio (doctor says how to fix it)
        raise _Unreachable(f"{exc.name or 'socksio'} is needed for a SOCKS proxy") from exc
    return response.status_code, response.content


def _json_of(status: int, body: bytes) -> dict[str, Any]:
    from ._transport._wire import parse_relay_error  # not ._errors: that imports openai (~1 s cold)

    try:
        data = json.loads(body)
    except ValueError as exc:
        if status == 401:
            raise _KeyRefused("HTTP 401") from exc
        raise _Unavailable(f"HTTP {status}" if status != 200 else "not JSON") from exc
    answer = parse_relay_error(data)  # read on error statuses too: the relay says there whether the key is wrong
    if answer is not None and answer.known is not None and answer.known.group in ("authentication", "frozen"):
        raise _KeyRefused(f"HTTP {status}, relay code {answer.code}", answer.known.hint)
    if status == 401:
        raise _KeyRefused("HTTP 401")
    if status != 200:
        raise _Unavailable(f"HTTP {status}")
    if answer is not None:
        raise _Unavailable(f"relay code {answer.code}")
    if not isinstance(data, dict):
        raise _Unavailable("unexpected shape")
    return data


def _measured(key: str, base: str, *, timeout: float, transport: Any, now: float) -> Balance:
    from urllib.parse import urlencode

    from ._transport._proxy_env import env_proxy_for
    from ._urls import normalise_base_url

    base = normalise_base_url(base)[0].rstrip("/")
    bases = [base]
    if base.endswith("/v1"):
        bases.append(base[: -len("/v1")])  # some relays (and NextChat) serve billing without /v1
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    today = dt.date.fromtimestamp(now)
    query = urlencode({"start_date": "2023-01-01", "end_date": (today + dt.timedelta(days=1)).isoformat()})
    proxy = env_proxy_for(base)
    client: Any = None
    if transport is not None or (proxy is not None and not proxy.lower().startswith(("http:", "https:"))):
        # A transport given by the caller, or a SOCKS proxy (urllib speaks only HTTP proxies): httpx2, routed by
        # the SDK's own transport as every request is.
        import httpx2

        from ._transport._proxies import _EnvProxyTransport

        client = httpx2.Client(timeout=timeout, headers=headers, transport=transport or _EnvProxyTransport())

    def get_json(url: str) -> dict[str, Any]:
        if client is not None:
            return _json_of(*_fetch_with_httpx2(client, url))
        return _json_of(*_fetch_with_urllib(url, headers, timeout, env_proxy_for(url)))

    failures: list[str] = []
    try:
        for root in bases:
            try:
                sub = get_json(f"{root}/dashboard/billing/subscription")
                granted = _number(sub.get("hard_limit_usd"))
                if granted is None:
                    granted = _number(sub.get("system_hard_limit_usd"))
                if granted is None:
                    raise _Unavailable("no hard_limit_usd")
                usage = get_json(f"{root}/dashboard/billing/usage?{query}")
                total = _number(usage.get("total_usage"))
                if total is None:
                    raise _Unavailable("no total_usage")
            except _KeyRefused:
                raise  # the relay answered about the key itself; the other path would say the same
            except _Unavailable as exc:
                failures.append(f"{root}: {exc}")
                continue
            except _Unreachable as exc:
                failures.append(f"{root}: {exc}")
                break  # the host is unreachable; the other path would fail the same way
            used = total / 100.0
            return Balance(
                amount_cny=round(granted - used, 6), measured=True, source="relay", as_of=now,
                detail=tr("中转计费接口（按人民币计）", "the relay's billing endpoints (amounts taken as CNY)"),
                granted_cny=granted, used_cny=used,
            )
    finally:
        if client is not None:
            client.close()
    raise _Unavailable("; ".join(failures) or "no answer")


def estimated_balance(
    *, ledger_path: str | os.PathLike[str] | None = None, reason: str = "", now: float | None = None,
    no_key: bool = False, key_refused: Any = None,
) -> Balance:
    """Recorded top-ups minus the ledger's priced spend since the first top-up. ``no_key``: the relay was not
    asked because no key is configured — said as such, with the command that fixes it (a newcomer's first look).
    ``key_refused``: the relay refused the key (a ``Text`` saying why and what to do) — said first, since recording
    a top-up would not help."""
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
        if key_refused is not None:
            why, why_en = f"（{key_refused.zh}）", f" ({key_refused.en})"
            if not topups:
                return Balance(amount_cny=None, measured=False, source="none", as_of=now,
                               detail=tr(key_refused.zh, key_refused.en), key_refused=True)
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
            granted_cny=granted, used_cny=spent, key_refused=key_refused is not None,
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
    except _KeyRefused as exc:
        return estimated_balance(ledger_path=ledger_path, now=now, key_refused=_refusal(key, str(exc), exc.hint))
    except _Unavailable as exc:
        return estimated_balance(ledger_path=ledger_path, reason=f"billing endpoints: {exc}", now=now)


def _refusal(key: str, reason: str, hint: Any) -> Text:
    """What to say when the relay refused the key: which key (masked), the relay's own words, and how to check."""
    from ._keys.masking import mask_key

    zh = f"中转拒绝了密钥 {mask_key(key)}（{reason}）"
    en = f"the relay refused the key {mask_key(key)} ({reason})"
    if hint is not None:
        zh, en = f"{zh}：{hint.zh}", f"{en}: {hint.en}"
    return Text(f"{zh}。用 baicai key list 查看使用的是哪个密钥，baicai doctor 检查它",
                f"{en}. See which key is in use with `baicai key list`; check it with `baicai doctor`")


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
