"""Routing by the environment's proxy variables, which httpx2 stops doing once a transport is given."""

from __future__ import annotations

import ssl
from typing import Any

import httpx2

from ._proxy_env import env_proxy_for

__all__ = ["env_proxy_for"]


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
