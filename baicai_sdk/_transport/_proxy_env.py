"""Which proxy the environment names for a URL: urllib's reading of HTTP(S)_PROXY/ALL_PROXY/NO_PROXY.

Its own module, free of httpx2, so that the billing call (``baicai usage balance``, urllib) and the SDK's transports
(httpx2) route by one rule without the quick command paying for httpx2's import.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any
from urllib.parse import urlsplit

__all__ = ["env_proxy_for"]


def env_proxy_for(url: Any) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP(S)_PROXY``/``ALL_PROXY``, honouring ``NO_PROXY``).

    httpx2 applies these itself, but not once a transport is given — and ours always is. Users in China often
    need a proxy, so the default inner transports route by it, as httpx2 would. Asked per request; urllib's reading
    of the environment (≈0.2 ms) is redone only when a proxy variable has changed since the last request.
    """
    if isinstance(url, str):
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "")
    else:  # an httpx2.URL (or anything with .scheme and .host)
        scheme, host = url.scheme, url.host
    proxies, bypass = _environment_proxies()
    bypassed = bypass.get(host)
    if bypassed is None:
        if len(bypass) > 256:
            bypass.clear()
        bypassed = bypass[host] = bool(urllib.request.proxy_bypass_environment(host, proxies))  # type: ignore[attr-defined]
    if bypassed:
        return None
    return proxies.get(scheme) or proxies.get("all")


_PROXY_VARIABLES = tuple(v for name in ("http", "https", "all", "no") for v in (f"{name}_proxy", f"{name.upper()}_PROXY"))
_proxy_cache: tuple[tuple[Any, ...] | None, dict[str, str], dict[str, bool]] = (None, {}, {})
_ENVIRON = os.environ
_ENVIRON_DATA: dict[Any, Any] | None = getattr(os.environ, "_data", None)
"""The dict behind ``os.environ`` (every change made through it lands there), read with the variables' names as it
stores them: ``os.environ.get`` of an unset variable raises and catches a KeyError inside, and eight of them were
~18 µs of every sidecar request; eight lookups here are ~1 µs."""
_STORED_NAMES = (tuple(os.environ.encodekey(name) for name in _PROXY_VARIABLES)
                 if isinstance(_ENVIRON_DATA, dict) and hasattr(os.environ, "encodekey") else None)


def _proxy_variables() -> tuple[Any, ...]:
    """The proxy variables' current values (as stored: bytes on POSIX), to compare with the last request's."""
    if _STORED_NAMES is not None and os.environ is _ENVIRON and _ENVIRON_DATA is not None:
        return tuple(map(_ENVIRON_DATA.get, _STORED_NAMES))
    return tuple(os.environ.get(name) for name in _PROXY_VARIABLES)  # os.environ replaced (a test), or no _data


def _environment_proxies() -> tuple[dict[str, str], dict[str, bool]]:
    """``urllib.request.getproxies_environment()`` and a per-host NO_PROXY verdict cache, read again only when one
    of the proxy variables changed (a user may export HTTPS_PROXY in a long-running process)."""
    global _proxy_cache
    current = _proxy_variables()
    seen, proxies, bypass = _proxy_cache
    if current != seen:
        proxies, bypass = urllib.request.getproxies_environment(), {}
        _proxy_cache = (current, proxies, bypass)
    return proxies, bypass
