"""Routing by the environment's proxy variables, which httpx2 stops doing once a transport is given."""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import httpx2

__all__ = ["env_proxy_for"]


def env_proxy_for(url: httpx2.URL | str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP(S)_PROXY``/``ALL_PROXY``, honouring ``NO_PROXY``).

    httpx2 applies these itself, but not once a transport is given — and ours always is. Users in China often
    need a proxy, so the default inner transports route by it, as httpx2 would. Asked per request; urllib's reading
    of the environment (≈0.2 ms) is redone only when a proxy variable has changed since the last request.
    """
    parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(str(url))
    proxies, bypass = _environment_proxies()
    host = parsed.host
    bypassed = bypass.get(host)
    if bypassed is None:
        if len(bypass) > 256:
            bypass.clear()
        bypassed = bypass[host] = bool(urllib.request.proxy_bypass_environment(host, proxies))  # type: ignore[attr-defined]
    if bypassed:
        return None
    return proxies.get(parsed.scheme) or proxies.get("all")


_PROXY_VARIABLES = tuple(v for name in ("http", "https", "all", "no") for v in (f"{name}_proxy", f"{name.upper()}_PROXY"))
_proxy_cache: tuple[tuple[str | None, ...] | None, dict[str, str], dict[str, bool]] = (None, {}, {})


def _environment_proxies() -> tuple[dict[str, str], dict[str, bool]]:
    """``urllib.request.getproxies_environment()`` and a per-host NO_PROXY verdict cache, read again only when one
    of the proxy variables changed (a user may export HTTPS_PROXY in a long-running process)."""
    global _proxy_cache
    current = tuple(os.environ.get(name) for name in _PROXY_VARIABLES)
    seen, proxies, bypass = _proxy_cache
    if current != seen:
        proxies, bypass = urllib.request.getproxies_environment(), {}
        _proxy_cache = (current, proxies, bypass)
    return proxies, bypass


class _EnvProxyTransport(httpx2.BaseTransport):
    """httpx2's default transport, one per proxy the environment names for a request's URL."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._by_proxy: dict[str | None, httpx2.HTTPTransport] = {}

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        proxy = env_proxy_for(request.url)
        transport = self._by_proxy.get(proxy)
        if transport is None:
            transport = self._by_proxy[proxy] = httpx2.HTTPTransport(proxy=proxy, **self._options)
        return transport.handle_request(request)

    def close(self) -> None:
        for transport in self._by_proxy.values():
            transport.close()


class _AsyncEnvProxyTransport(httpx2.AsyncBaseTransport):
    """The async twin of :class:`_EnvProxyTransport`."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._by_proxy: dict[str | None, httpx2.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        proxy = env_proxy_for(request.url)
        transport = self._by_proxy.get(proxy)
        if transport is None:
            transport = self._by_proxy[proxy] = httpx2.AsyncHTTPTransport(proxy=proxy, **self._options)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._by_proxy.values():
            await transport.aclose()
