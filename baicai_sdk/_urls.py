"""Base-URL rules for the relay.

The relay's most common support case is a base URL that is almost right: ``/v1`` typed twice (error 48004), ``/v1``
forgotten, a trailing slash, or a whole endpoint URL pasted in (``…/v1/chat/completions``). ``openai`` joins paths
onto whatever it is given, so each of these turns into a 404 far from its cause. We repair the URL once, up front,
and return the list of repairs so callers can print one warning line instead of failing silently or loudly.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from ._text import Text

__all__ = [
    "DEFAULT_BASE_URL",
    "OPENAI_HOST",
    "normalise_base_url",
    "is_openai_url",
    "has_double_v1",
    "format_changes",
    "is_loopback_host",
    "is_loopback_url",
]

DEFAULT_BASE_URL = "https://api.baicaigpt.com/v1"
OPENAI_HOST = "api.openai.com"

# Endpoint paths people paste together with the base; longest first so "chat/completions" wins over "completions".
_ENDPOINT_SUFFIXES = (
    "/chat/completions",
    "/images/generations",
    "/images/edits",
    "/images/variations",
    "/completions",
    "/embeddings",
    "/models",
)
_LOOPBACK = re.compile(r"(?i)(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?(/|$)")
_REPEATED_V1 = re.compile(r"(?:/v1)(?:/v1)+(?=/|$)")


def has_double_v1(url: str) -> bool:
    """True when the path holds ``/v1/v1`` — the mistake behind relay error 48004."""
    return bool(_REPEATED_V1.search(urlsplit(url.strip()).path))


def is_openai_url(url: str) -> bool:
    """True for OpenAI's own API host: a relay key sent there fails, and so does an OpenAI key sent to the relay."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    return host == OPENAI_HOST


def normalise_base_url(url: str) -> tuple[str, list[Text]]:
    """Return the relay base URL ``url`` should have been, and what was changed (empty when nothing was).

    Rules: surrounding spaces dropped; a missing scheme becomes ``https://``; the host is lower-cased; a pasted
    endpoint path (``/chat/completions``…) is cut off; ``/v1/v1`` collapses to ``/v1``; trailing slashes go; and
    ``/v1`` is added when the path does not end with it. Query strings and fragments are dropped (openai would
    append paths after them). Each change is a short :class:`Text` for ``format_changes``.

    >>> normalise_base_url("https://api.baicaigpt.com/v1/v1/")[1][0].en
    'removed a repeated /v1'
    """
    changes: list[Text] = []
    text = url.strip()
    if text != url:
        changes.append(Text("去掉首尾空白", "removed surrounding spaces"))
    if not text:
        raise ValueError(Text("API_BASE 为空", "the base URL is empty"))
    if "://" not in text:
        # a local sidecar or emulator speaks plain http; anything else is the relay or a proxy in front of it
        scheme_guess = "http" if _LOOPBACK.match(text.lstrip("/")) else "https"
        text = f"{scheme_guess}://" + text.lstrip("/")
        changes.append(Text(f"补上 {scheme_guess}://", f"added {scheme_guess}://"))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            Text(f"API_BASE 必须以 http:// 或 https:// 开头：{text!r}", f"the base URL must start with http:// or https://: {text!r}")
        )
    if not parts.netloc:
        raise ValueError(Text(f"API_BASE 缺少主机名：{text!r}", f"the base URL has no host name: {text!r}"))
    netloc = parts.netloc.lower() if "@" not in parts.netloc else parts.netloc
    if netloc != parts.netloc:
        changes.append(Text("主机名改为小写", "lower-cased the host name"))
    if parts.query or parts.fragment:
        changes.append(Text("去掉 ? 或 # 之后的部分", "removed the query or fragment"))

    path = parts.path
    trimmed = path.rstrip("/")
    # reported after the other repairs, so the messages read in the order of the URL
    had_trailing_slash = trimmed != path and path not in ("", "/")
    path = trimmed
    lowered = path.lower()
    for suffix in _ENDPOINT_SUFFIXES:
        if lowered.endswith(suffix) and len(path) > len(suffix):
            path = path[: -len(suffix)].rstrip("/")
            changes.append(Text(f"去掉接口路径 {suffix}", f"removed the endpoint path {suffix}"))
            break
    collapsed = _REPEATED_V1.sub("/v1", path)
    if collapsed != path:
        changes.append(Text("去掉重复的 /v1", "removed a repeated /v1"))
        path = collapsed
    if had_trailing_slash:
        changes.append(Text("去掉末尾斜杠", "removed the trailing slash"))
    if not path.endswith("/v1"):
        path = path + "/v1"
        changes.append(Text("补上 /v1", "added /v1"))
    return urlunsplit((scheme, netloc, path, "", "")), changes


def format_changes(original: str, normalised: str, changes: list[Text]) -> Text:
    """The one-line warning shown when ``normalise_base_url`` changed something."""
    return Text(
        f"API_BASE 已自动修正为 {normalised}（{'；'.join(c.zh for c in changes)}）",
        f"base URL {original.strip()!r} corrected to {normalised} ({'; '.join(c.en for c in changes)})",
    )


def is_loopback_host(host: str, *, resolve: bool = True) -> bool:
    """Whether ``host`` stays on this machine: decided by the address(es) it resolves to, never by its spelling
    ("127.example.net" or a hosts-file name may resolve to a LAN address). A name that does not resolve is not
    loopback. ``resolve=False`` (no DNS: for a warning, not a security decision) accepts only literal loopback
    addresses and ``localhost`` names (RFC 6761 reserves them for loopback)."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return _loopback_address(name)
    except ValueError:
        pass
    if not resolve:
        lowered = name.lower().rstrip(".")
        return lowered == "localhost" or lowered.endswith(".localhost")
    import socket

    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(_loopback_address(a) for a in addresses)


def _loopback_address(text: str) -> bool:
    """A literal address (a zone index allowed) in 127.0.0.0/8 or ::1, also IPv4-mapped; ValueError if not one."""
    import ipaddress

    address = ipaddress.ip_address(text.split("%", 1)[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def is_loopback_url(url: str, *, resolve: bool = True) -> bool:
    """:func:`is_loopback_host` for the host of ``url``; a URL without a host is not loopback."""
    host = urlsplit(url).hostname
    return host is not None and host != "" and is_loopback_host(host, resolve=resolve)
