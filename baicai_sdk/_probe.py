"""Is the relay usable with this key? One ``GET {base}/models``, every outcome a :class:`Check`.

``baicai doctor`` runs it as its last check and ``baicai sidecar`` at start (through
``baicai_sdk.integration.probe_relay``), so both say the same thing about a dead relay or a refused key.
It lives outside ``_commands`` because a CLI command is no API for the layers above the SDK to build on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ._text import Text, tr

__all__ = ["Check", "Status", "probe", "probe_relay", "proxy_env"]

Status = Literal["ok", "info", "warn", "problem"]
_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclass
class Check:
    """One line of the report, in the user's language (``tr``/``Text``, rendered when the check ran). ``fix`` is
    the advice, present for warnings and problems."""

    name: str
    status: Status
    summary: str
    fix: str = ""


def _hide_userinfo(url: str) -> str:
    """Proxy URLs may carry a password: show ``user:***@host``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))


def proxy_env() -> dict[str, str]:
    """The proxy variables in effect (httpx2 reads either case; lower case wins, as in urllib)."""
    found: dict[str, str] = {}
    for name in _PROXY_VARS:
        value = os.environ.get(name.lower()) or os.environ.get(name)
        if value:
            found[name] = value if name == "NO_PROXY" else _hide_userinfo(value)
    return found


def probe_relay(base_url: str, key: str, timeout: float = 5.0) -> Check:
    """The doctor's relay check alone (``baicai sidecar`` runs it at start, so a dead relay is said at once)."""
    return probe(base_url, key, timeout, proxy_env(), label="relay")


def probe(base_url: str, key: str, timeout: float, proxies: dict[str, str], *, label: str) -> Check:
    """``GET {base}/models`` with the key; every outcome becomes a Check, never a traceback."""
    import httpx2

    from ._keys import mask_key

    url = base_url.rstrip("/") + "/models"
    proxy_hint = Text(
        f"已设置代理 {', '.join(k for k in proxies if k != 'NO_PROXY')}：确认代理可用，或把 api.baicaigpt.com 加入 NO_PROXY。",
        "a proxy is set: check it works, or add the relay host to NO_PROXY.",
    ) if set(proxies) - {"NO_PROXY"} else Text(
        "未设置代理：若网络需要代理，请设置 HTTPS_PROXY。",
        "no proxy is set: if your network needs one, set HTTPS_PROXY.",
    )
    started = time.perf_counter()
    try:
        client = httpx2.Client(timeout=timeout, trust_env=True)
    except (ImportError, ValueError) as exc:  # a SOCKS proxy without socksio, a proxy URL httpx2 cannot read
        shown = ", ".join(f"{k}={v}" for k, v in proxies.items() if k != "NO_PROXY") or "?"
        return Check(label, "problem", tr(f"代理设置无法使用（{shown}）：{type(exc).__name__}",
                                          f"the proxy setting cannot be used ({shown}): {type(exc).__name__}"),
                     tr("改用 http:// 代理，或安装 SOCKS 支持：pip install socksio。",
                        "Use an http:// proxy, or install SOCKS support: pip install socksio."))
    try:
        with client:
            response = client.get(url, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    except httpx2.TimeoutException:
        return Check(label, "problem", tr(f"连接中转站超时（{timeout:g} 秒）：{url}",
                                          f"the relay did not answer within {timeout:g} s: {url}"),
                     tr(f"检查网络与 API_BASE；{proxy_hint.zh}", f"Check the network and the base URL; {proxy_hint.en}"))
    except httpx2.HTTPError as exc:
        return Check(label, "problem", tr(f"无法连接中转站：{url}（{type(exc).__name__}）",
                                          f"cannot reach the relay: {url} ({type(exc).__name__})"),
                     tr(f"检查网络与 API_BASE 是否正确；{proxy_hint.zh}",
                        f"Check the network and that the base URL is right; {proxy_hint.en}"))
    elapsed = (time.perf_counter() - started) * 1000
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    answer = _relay_error(body)
    if answer is not None:
        known = answer.known
        text = known.message if known is not None else Text(answer.message, answer.message)
        fix = known.hint if known is not None else (
            Text("未知的中转站错误码，请查看中转站文档或联系客服。", "an undocumented relay code; check the relay's docs or support.")
        )
        if answer.code == 40001 and key.startswith("sk-"):
            fix = Text("这是 OpenAI 的 sk- 密钥，中转站只认 baicai-… 密钥。",
                       "This is an OpenAI sk- key; the relay only accepts baicai-… keys. ") + fix
        return Check(label, "problem", tr(f"中转站返回 {answer.code}：{text.zh}（{url}）",
                                          f"the relay answered {answer.code}: {text.en} ({url})"), str(fix))
    if response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
        return Check(label, "ok", tr(f"中转站可用：{url} — {len(body['data'])} 个模型，{elapsed:.0f} 毫秒，密钥 {mask_key(key)} 有效",
                                     f"relay reachable: {url} — {len(body['data'])} models, {elapsed:.0f} ms, "
                                     f"key {mask_key(key)} accepted"))
    if response.status_code in (401, 403):
        fix = (Text("API_BASE 指向 OpenAI 官方，而密钥是白菜GPT 的：请把 API_BASE 改为 https://api.baicaigpt.com/v1。",
                    "The base URL is OpenAI's but the key is BaicaiGPT's: set the base URL to https://api.baicaigpt.com/v1."))
        from ._urls import is_openai_url

        if not is_openai_url(base_url):
            fix = Text("核对密钥是否正确、是否与 API_BASE 匹配。", "Check the key and that it matches the base URL.")
        return Check(label, "problem", tr(f"密钥被拒绝（HTTP {response.status_code}）：{url}",
                                          f"the key was refused (HTTP {response.status_code}): {url}"), str(fix))
    if response.status_code == 404:
        return Check(label, "problem", tr(f"找不到接口（HTTP 404）：{url}", f"not found (HTTP 404): {url}"),
                     tr("API_BASE 可能有误：应为 https://api.baicaigpt.com/v1，不要重复 /v1。",
                        "The base URL is probably wrong: it should be https://api.baicaigpt.com/v1, with /v1 once."))
    return Check(label, "problem", tr(f"中转站返回异常（HTTP {response.status_code}）：{url}",
                                      f"unexpected answer (HTTP {response.status_code}) from {url}"),
                 tr("稍后重试；若持续出现请检查 API_BASE 与代理。", "Retry later; if it persists, check the base URL and proxy."))


def _relay_error(body: Any) -> Any:
    """The relay's error in ``body``, in any of its envelopes, else None."""
    from ._transport._wire import parse_relay_error  # not ._errors: that imports openai (~1 s cold)

    return parse_relay_error(body)
