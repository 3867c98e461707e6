"""The sidecar's upstream client for direct connections: HTTP/1.1 on asyncio + httptools, pooled.

Why not aiohttp for every request: measured in-process against the bench's instant upstream (issue 17), one
forwarded request through ``AiohttpTransport`` cost 1.25 ms of CPU — its session, timer contexts, header
multidicts and payload writers per request — while the raw forwarder in ``bench/_replay.py`` does a whole request,
server side included, for 0.5 ms. This client does what the sidecar needs and nothing more: write the request in
one piece, parse the answer with httptools (the C parser uvicorn uses), hand body bytes over as they arrive, keep
the connection for the next request.

What it does not do, it leaves to :class:`~baicai_sidecar._upstream.AiohttpTransport`, which keeps serving those
requests exactly as before: every request an environment proxy applies to (``HTTP(S)_PROXY``, ``ALL_PROXY``,
``NO_PROXY`` decide per request, as in the SDK; SOCKS falls back further, to httpx2). So what must behave as with
httpx2, and is tested (``tests/sidecar/test_upstream.py`` runs against both clients):

* TLS verification on, with the trust the SDK's httpx2 uses (``httpcore2.default_ssl_context``: ``SSL_CERT_FILE``/
  ``SSL_CERT_DIR``, else the OS trust store on Windows and macOS — a python.org build has no CA file of its own —
  else OpenSSL's paths);
* timeouts from the request's ``timeout`` extension — connect (``ConnectTimeout``), read: for the answer's head and
  between body chunks (``ReadTimeout``) — so "nothing was sent" (``ConnectError``/``ConnectTimeout``, safe to
  retry) stays apart from "may have been sent";
* cancellation: cancelling the task, or closing the response before its end, closes the connection — the relay sees
  the client go;
* connection reuse: a connection goes back to the pool only after a complete answer the server did not end with
  ``Connection: close``; it is closed after :data:`KEEPALIVE_SECONDS` idle (below the
  usual servers' 5 s) and at once if the server closes it or sends anything while it is idle (the socket is
  watched, so a dead connection is never picked);
* a slow app: reading from the relay pauses while more than 256 KB wait for the app.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httptools
import httpx2

from baicai_sdk.integration import env_proxy_for, read_response

__all__ = ["DirectTransport", "KEEPALIVE_SECONDS"]

KEEPALIVE_SECONDS = 4.0
"""Idle pooled connections are closed after this long: below uvicorn's 5 s and nginx's 75 s idle close, so the
server never closes a connection in the instant we reuse it (a 502 after an idle gap, seen with aiohttp's 15 s)."""

_OWN_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_PAUSE_BYTES = 256 * 1024
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})


class _ReadTimedOut(Exception):
    pass


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_ReadTimedOut())


class _Connection(asyncio.Protocol):
    """One upstream connection: httptools parses each answer; the response's reader waits on :meth:`wait`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self.loop, self.key = loop, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.error: BaseException | None = None
        self.busy = False
        self.paused = False
        self.idle_timer: asyncio.TimerHandle | None = None
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.read_timer: asyncio.TimerHandle | None = None
        self.wait_started = self.read_due = 0.0
        self.wait_timeout: float | None = None
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.framed = False
        self.keep_alive = True
        self.body: list[bytes] = []
        self.buffered = 0

    # -- asyncio --------------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self.close()  # a server speaking on an idle connection (a timeout notice before it closes): not reused
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = exc
            self.close()
            self._wake()

    def eof_received(self) -> bool:
        if self.headers_done and not self.complete and not self.framed:
            self.complete, self.keep_alive = True, False  # an answer that runs to the connection's end
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()

    def close(self) -> None:
        self.lost = True
        self.stop_read_timer()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if self.transport is not None:
            self.transport.close()

    # -- httptools ------------------------------------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                self.framed = True
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _PAUSE_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()  # the app is slower than the relay: let TCP hold the rest
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- the reader's side ----------------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until the parser or the socket has news; ``_ReadTimedOut`` after ``timeout`` seconds without.

        One timer per connection, not one per wait: it is armed by the first wait and, when it fires, times out
        the wait in progress if that one is ``timeout`` old, else moves to when it will be (a timer set and
        cancelled per streamed chunk cost ~2.7 µs of each)."""
        waiter = self.waiter = self.loop.create_future()
        self.wait_timeout = timeout
        if timeout:
            self.wait_started = now = self.loop.time()
            if self.read_timer is None or self.read_due > now + timeout:
                self.stop_read_timer()
                self.read_due = now + timeout
                self.read_timer = self.loop.call_at(self.read_due, self._read_deadline)
        try:
            await waiter
        finally:
            self.waiter = None

    def _read_deadline(self) -> None:
        self.read_timer = None
        waiter, timeout = self.waiter, self.wait_timeout
        if waiter is None or waiter.done() or not timeout:
            return  # no wait in progress: the next one arms the timer again
        due = self.wait_started + timeout
        if self.loop.time() >= due:
            _time_out(waiter)
        else:
            self.read_due = due
            self.read_timer = self.loop.call_at(due, self._read_deadline)

    def stop_read_timer(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def take_body(self) -> bytes:
        chunk = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk


class DirectTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2.AsyncBaseTransport``: direct requests on pooled asyncio connections parsed by httptools, and
    requests an environment proxy applies to through :class:`AiohttpTransport`."""

    def __init__(self, *, keepalive: float = KEEPALIVE_SECONDS) -> None:
        self._keepalive = keepalive
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._proxied: httpx2.AsyncBaseTransport | None = None
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        if env_proxy_for(url) is not None:
            if self._proxied is None:
                from ._upstream import AiohttpTransport  # loaded for the first proxied request (~6 MB less RSS)

                self._proxied = AiohttpTransport(keepalive=self._keepalive)
            return await self._proxied.handle_async_request(request)
        timeouts = request.extensions.get("timeout") or {}
        scheme = url.scheme
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        conn = self._take(key) or await self._connect(key, timeouts.get("connect"), request)
        conn.reset()
        conn.busy = True
        assert conn.transport is not None
        conn.transport.write(_head(request) + request.content)
        read_timeout = timeouts.get("read")
        try:
            while not conn.headers_done:
                if conn.lost or conn.error is not None:
                    raise httpx2.RemoteProtocolError(_why(conn, "the server closed the connection before answering"),
                                                     request=request)
                await conn.wait(read_timeout)
        except _ReadTimedOut:
            conn.close()
            raise httpx2.ReadTimeout("no answer within the read timeout", request=request) from None
        except BaseException:
            conn.close()
            raise
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": conn.reason}
        if conn.complete and not _event_stream(conn.headers):
            # The whole answer came with its head (a chat answer usually does): handed over as read content, so
            # no stream machinery runs for it, and the connection is free again at once.
            body = conn.take_body() if conn.body else b""
            status, headers = conn.status, conn.headers
            self.release(conn)
            return read_response(status, headers, body, request=request, extensions=extensions)
        return httpx2.Response(conn.status, headers=conn.headers, stream=_Body(self, conn, request, read_timeout),
                               extensions=extensions, request=request)

    async def _connect(self, key: tuple[str, str, int], timeout: float | None,
                       request: httpx2.Request) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                # httpcore2 (with anyio, h11 and truststore: 1.4 MB) only for the SDK's TLS trust, at the first
                # HTTPS connection: a sidecar whose upstream is plain HTTP never needs it.
                import httpcore2

                self._ssl = httpcore2.default_ssl_context()
            context = self._ssl
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop, key), host, port, ssl=context,
                                                       server_hostname=host if context is not None else None)
        except TimeoutError:
            raise httpx2.ConnectTimeout(f"no connection to {host}:{port} within {timeout:g} s",
                                        request=request) from None
        except OSError as exc:  # refused, DNS, TLS verification (ssl.SSLError is an OSError)
            raise httpx2.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return conn

    def _take(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.lost and conn.transport is not None and not conn.transport.is_closing():
                return conn  # its idle timer, if any, stays: when it fires it finds the connection busy
        return None

    def release(self, conn: _Connection) -> None:
        """A complete answer: the connection back to the pool, or closed when it cannot be reused.

        Its timers stay armed across requests rather than being set and cancelled per request (two timers,
        ~3 µs each on uvloop): the read timer finds no wait in progress and stops; the idle timer, armed once
        for a connection going idle, moves to ``keepalive`` after the connection's latest release when it fires
        early (the connection was used since), and closes it when that time has come."""
        conn.busy = False
        if self._closed or conn.lost or not conn.keep_alive or conn.error is not None:
            conn.close()
            return
        if conn.paused and conn.transport is not None:
            conn.paused = False
            conn.transport.resume_reading()
        conn.idle_since = conn.loop.time()
        if conn.idle_timer is None:
            conn.idle_timer = conn.loop.call_at(conn.idle_since + self._keepalive, self._expire, conn)
        self._idle.setdefault(conn.key, []).append(conn)

    def _expire(self, conn: _Connection) -> None:
        conn.idle_timer = None
        if conn.busy or conn.lost:
            return  # in use (release arms the timer again) or closed already
        due = conn.idle_since + self._keepalive
        if conn.loop.time() < due:
            conn.idle_timer = conn.loop.call_at(due, self._expire, conn)  # used since: idle for less than that
            return
        idle = self._idle.get(conn.key)
        if idle is not None and conn in idle:
            idle.remove(conn)
        conn.close()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self._proxied is not None:
            await self._proxied.aclose()


def _head(request: httpx2.Request) -> bytes:
    url = request.url
    method = request.method.encode("ascii")
    lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method, url.raw_path, url.netloc)]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw if name.lower() not in _OWN_HEADERS]
    if request.content or method in _BODY_METHODS:
        lines.append(b"content-length: %d\r\n" % len(request.content))
    lines.append(b"\r\n")
    return b"".join(lines)


def _event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() == b"text/event-stream"
    return False


def _why(conn: _Connection, default: str) -> str:
    return f"{default}: {conn.error}" if conn.error is not None and str(conn.error) else default


class _Body(httpx2.AsyncByteStream):
    """The answer's body as it arrives; bytes that came before a broken end are handed out before the error."""

    def __init__(self, owner: DirectTransport, conn: _Connection, request: httpx2.Request,
                 read_timeout: float | None) -> None:
        self._owner, self._conn, self._request, self._timeout = owner, conn, request, read_timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.body:
                yield conn.take_body()
                continue
            if conn.complete:
                return
            if conn.lost or conn.error is not None:
                error: type[httpx2.TransportError] = (
                    httpx2.ReadError if isinstance(conn.error, OSError) else httpx2.RemoteProtocolError)
                raise error(_why(conn, "the connection closed before the answer ended"), request=self._request)
            try:
                await conn.wait(self._timeout)
            except _ReadTimedOut:
                conn.close()
                raise httpx2.ReadTimeout("no data within the read timeout", request=self._request) from None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._conn.complete:
            self._owner.release(self._conn)
        else:
            self._conn.close()  # cut short (the app left, or an error): the relay sees the connection close


