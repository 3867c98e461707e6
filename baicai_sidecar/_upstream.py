"""The sidecar's upstream HTTP client: aiohttp under httpx2's transport interface.

Why not httpx2 here, when the SDK uses it: the sidecar forwards every app's request, and on this path the HTTP
client is most of the cost. Measured in ``bench/bench_sidecar.py`` (issue 17), httpcore2 + h11 + anyio took 36 % of
the sidecar's CPU for a non-streamed request and 50 % for a stream, and polled every idle pooled socket on each
request start and release. aiohttp's C-accelerated parser and plain asyncio streams do the same work for a fraction.

Only the *bytes on the wire* change hands: :class:`AiohttpTransport` is an ``httpx2.AsyncBaseTransport``, so the
SDK's metered pipeline (quota gate, ledger, stream tally, error rewrite) wraps it exactly as it wraps httpx2's own
transport, and the proxy code above sees the same ``httpx2`` requests, responses and exceptions as before. What
must behave as with httpx2, and is tested:

* environment proxies: the SDK's :func:`env_proxy_for` decides per request (``HTTP(S)_PROXY``, ``ALL_PROXY``,
  ``NO_PROXY``), the same rule as the SDK; a proxy scheme aiohttp cannot speak (``socks5://``) falls back to httpx2;
* TLS verification on, with the system's trust store (``SSL_CERT_FILE`` honoured);
* timeouts from the request's ``timeout`` extension (connect, read between chunks), raised as httpx2's exceptions,
  so "nothing was sent" (``ConnectError``/``ConnectTimeout``, safe to retry) stays apart from "may have been sent";
* cancellation: cancelling the task, or closing the response before its end, closes the connection — the relay sees
  the client go, as it would with httpx2;
* connection reuse, with an idle limit below the usual servers' keep-alive (uvicorn 5 s; httpcore's own default is
  5 s too), so a connection the server is about to close is not picked for a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx2

from baicai_sdk.integration import env_proxy_for

from ._direct import KEEPALIVE_SECONDS

__all__ = ["AiohttpTransport"]


# Headers the transport computes itself; the forwarded values could disagree with the body it actually sends.
_OWN_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2.AsyncBaseTransport`` that sends with one pooled ``aiohttp.ClientSession``."""

    def __init__(self, *, max_connections: int = 1000, keepalive: float = KEEPALIVE_SECONDS,
                 ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._fallbacks: dict[str, httpx2.AsyncHTTPTransport] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop that will use it (aiohttp binds a session to its loop).
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive,
                                         ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO, timeout=aiohttp.ClientTimeout(total=None), trust_env=False)
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        proxy = env_proxy_for(request.url)
        if proxy is not None and not proxy.lower().startswith(("http://", "https://")):
            return await self._fallback(proxy).handle_async_request(request)
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout") or {}
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                   if k.lower() not in _OWN_HEADERS]
        body = request.content if request.content else None  # the sidecar and the SDK pass complete bodies
        try:
            response = await session.request(
                request.method, str(request.url), headers=headers, data=body, proxy=proxy,
                allow_redirects=False, compress=None,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.get("connect"),
                                              sock_read=timeouts.get("read")))
        except Exception as exc:
            raise _as_httpx(exc, request, sent=False) from exc
        return httpx2.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")},
            request=request,
        )

    def _fallback(self, proxy: str) -> httpx2.AsyncHTTPTransport:
        """httpx2 for the proxies aiohttp cannot speak (SOCKS): rare, so no speed is lost where it matters."""
        transport = self._fallbacks.get(proxy)
        if transport is None:
            transport = self._fallbacks[proxy] = httpx2.AsyncHTTPTransport(proxy=proxy)
        return transport

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        for transport in self._fallbacks.values():
            await transport.aclose()


class _ResponseStream(httpx2.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        while True:
            try:
                chunk = await content.readany()
            except Exception as exc:
                # aiohttp raises a broken connection's error *before* handing out bytes that arrived with it (its
                # ``readany`` checks the exception first): those are the last words of an answer the relay did send,
                # so pass them on, then the error — as httpx2 does.
                tail = _buffered(content)
                if tail:
                    yield tail
                raise _as_httpx(exc, self._request, sent=True) from exc
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # complete: the connection goes back to the pool
        else:
            response.close()  # cut short (the app left, or an error): the relay sees the connection close


def _buffered(content: aiohttp.StreamReader) -> bytes:
    """What the reader holds but has not handed out (private in aiohttp; nothing if that ever changes)."""
    buffer = getattr(content, "_buffer", None)
    if not buffer:
        return b""
    data = b"".join(bytes(part) for part in buffer)
    buffer.clear()
    return data


def _as_httpx(exc: BaseException, request: httpx2.Request, *, sent: bool) -> BaseException:
    """aiohttp's exception as the httpx2 one the proxy and the metered transport decide by.

    Before the response started (``sent=False``) a connect failure means nothing reached the relay; any other
    failure may have reached it, and must not be retried as if it had not.
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError) or (not sent and isinstance(exc, asyncio.TimeoutError)
                                                           and not isinstance(exc, aiohttp.SocketTimeoutError)):
        return httpx2.ConnectTimeout(message, request=request)
    if isinstance(exc, (aiohttp.SocketTimeoutError, asyncio.TimeoutError)):
        return httpx2.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake, proxy connect
        return httpx2.ConnectError(message, request=request)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx2.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientOSError):
        return (httpx2.ReadError if sent else httpx2.WriteError)(message, request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx2.TransportError(message)
    return exc
