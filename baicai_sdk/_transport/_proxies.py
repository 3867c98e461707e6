"""Routing by the environment's proxy variables, which httpx2 stops doing once a transport is given."""

from __future__ import annotations

import os
import ssl
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


def _route(url: httpx2.URL) -> tuple[str | None, bool]:
    """(the proxy for ``url``, whether any TLS is spoken: to the server — also through a proxy's tunnel — or to
    an ``https://`` proxy): the key of one inner transport."""
    proxy = env_proxy_for(url)
    return proxy, url.scheme == "https" or (proxy is not None and proxy.lower().startswith("https:"))


_NO_TLS: ssl.SSLContext | None = None


def _plain_hop_context() -> ssl.SSLContext:
    """The context given to a transport that only speaks plain HTTP (an ``http://`` URL, no proxy or an
    ``http://`` one): httpx2 would otherwise load the CA bundle for it (~50 ms, a third of a quick command's start).
    It trusts no certificate, so were it ever used for TLS the handshake would fail, never pass unverified."""
    global _NO_TLS
    if _NO_TLS is None:
        _NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _NO_TLS


def _transport_options(options: dict[str, Any], tls: bool) -> dict[str, Any]:
    if tls or "verify" in options:
        return options
    return {**options, "verify": _plain_hop_context()}


class _EnvProxyTransport(httpx2.BaseTransport):
    """httpx2's default transport, one per proxy the environment names for a request's URL (and per plain or TLS
    first hop: the CA bundle is read only when a request needs it)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._by_route: dict[tuple[str | None, bool], httpx2.HTTPTransport] = {}

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        route = _route(request.url)
        transport = self._by_route.get(route)
        if transport is None:
            proxy, tls = route
            transport = self._by_route[route] = httpx2.HTTPTransport(
                proxy=proxy, **_transport_options(self._options, tls))
        return transport.handle_request(request)

    def close(self) -> None:
        for transport in self._by_route.values():
            transport.close()


class _AsyncEnvProxyTransport(httpx2.AsyncBaseTransport):
    """The async twin of :class:`_EnvProxyTransport`."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._by_route: dict[tuple[str | None, bool], httpx2.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        route = _route(request.url)
        transport = self._by_route.get(route)
        if transport is None:
            proxy, tls = route
            transport = self._by_route[route] = httpx2.AsyncHTTPTransport(
                proxy=proxy, **_transport_options(self._options, tls))
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._by_route.values():
            await transport.aclose()
