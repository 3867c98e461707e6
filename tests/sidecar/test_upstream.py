"""The sidecar's aiohttp upstream behaves like the httpx2 transport it replaced: same exceptions for the same
failures, environment proxies, TLS verification, connection reuse, and a closed connection when a stream is left.

Each test runs a small raw-socket server on 127.0.0.1, so what is asserted is what went over the wire.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from baicai_sidecar._upstream import AiohttpTransport

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class RawServer:
    """Accepts connections on a free port; ``handler(conn, server)`` runs per connection in a thread."""

    def __init__(self, handler: Callable[[socket.socket, RawServer], None],
                 wrap: ssl.SSLContext | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler, self.wrap = handler, wrap
        self.connections = 0
        self.seen: list[bytes] = []
        self.events: list[str] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.wrap is not None:
                try:
                    conn = self.wrap.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    self.events.append("tls-refused")
                    conn.close()
                    continue
            threading.Thread(target=self.handler, args=(conn, self), daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(handler: Callable[[socket.socket, RawServer], None], **kw: object) -> RawServer:
        server = RawServer(handler, **kw)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def keep_answering(conn: socket.socket, server: RawServer) -> None:
    while True:
        request = read_request(conn)
        if not request:
            conn.close()
            return
        server.seen.append(request)
        conn.sendall(OK)


def request(url: str, *, method: str = "POST", content: bytes = b"{}", read: float = 5.0,
            connect: float = 2.0) -> httpx2.Request:
    return httpx2.Request(method, url, headers={"content-type": "application/json", "authorization": "Bearer k"},
                          content=content, extensions={"timeout": {"connect": connect, "read": read}})


async def send(transport: AiohttpTransport, req: httpx2.Request) -> httpx2.Response:
    response = await transport.handle_async_request(req)
    await response.aread()
    await response.aclose()
    return response


async def test_answer_headers_and_body_pass_through_and_the_connection_is_reused(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(keep_answering)
    transport = AiohttpTransport()
    try:
        for _ in range(3):
            response = await send(transport, request(f"http://127.0.0.1:{server.port}/v1/chat/completions",
                                                     content=b'{"model":"m"}'))
            assert response.status_code == 200
            assert response.content == b"{}"
            assert response.headers["content-type"] == "application/json"
    finally:
        await transport.aclose()
    assert server.connections == 1
    head, _, body = server.seen[0].partition(b"\r\n\r\n")
    assert body == b'{"model":"m"}'
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"post /v1/chat/completions http/1.1"
    assert b"authorization: bearer k" in lines
    assert not any(line.startswith((b"user-agent", b"accept-encoding")) for line in lines)  # only what we send


async def test_refused_connection_is_connect_error_so_the_proxy_may_retry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    transport = AiohttpTransport()
    try:
        with pytest.raises(httpx2.ConnectError):
            await transport.handle_async_request(request(f"http://127.0.0.1:{port}/v1/models"))
    finally:
        await transport.aclose()


async def test_silent_server_is_read_timeout_not_connect_error(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(lambda conn, srv: (read_request(conn), srv.events.append("got it")))
    transport = AiohttpTransport()
    try:
        with pytest.raises(httpx2.ReadTimeout):
            await transport.handle_async_request(request(f"http://127.0.0.1:{server.port}/v1/models", read=0.3))
    finally:
        await transport.aclose()
    assert server.events == ["got it"]  # it was sent: not a failure a retry could hide


async def test_leaving_a_stream_early_closes_the_upstream_connection(serve) -> None:  # type: ignore[no-untyped-def]
    closed = threading.Event()

    def slow_stream(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            for i in range(100):
                event = b"data: {\"i\": %d}\n\n" % i
                conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
                threading.Event().wait(0.05)
        except OSError:
            closed.set()
        conn.close()

    server = serve(slow_stream)
    transport = AiohttpTransport()
    try:
        response = await transport.handle_async_request(request(f"http://127.0.0.1:{server.port}/v1/chat"))
        async for chunk in response.aiter_raw():
            assert chunk.startswith(b"data:")
            break
        await response.aclose()
        assert await asyncio.to_thread(closed.wait, 5.0), "the server kept streaming to a closed client"
    finally:
        await transport.aclose()


async def test_a_stream_cut_mid_answer_raises_httpx_read_error(serve) -> None:  # type: ignore[no-untyped-def]
    def cut(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 1000\r\n\r\ndata: {}\n\n")
        conn.close()

    server = serve(cut)
    transport = AiohttpTransport()
    try:
        response = await transport.handle_async_request(request(f"http://127.0.0.1:{server.port}/v1/chat"))
        with pytest.raises(httpx2.TransportError):
            async for _ in response.aiter_raw():
                pass
        await response.aclose()
    finally:
        await transport.aclose()


async def test_environment_proxy_is_used_and_no_proxy_is_honoured(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    proxy = serve(keep_answering)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,direct.invalid")
    transport = AiohttpTransport()
    try:
        response = await send(transport, request("http://relay.invalid/v1/models", method="GET", content=b""))
        assert response.status_code == 200
        assert proxy.seen[0].startswith(b"GET http://relay.invalid/v1/models HTTP/1.1")
        with pytest.raises(httpx2.ConnectError):  # bypassed: a direct (failing) lookup, not the proxy
            await transport.handle_async_request(request("http://direct.invalid/v1/models", method="GET"))
        assert len(proxy.seen) == 1
    finally:
        await transport.aclose()


async def test_tls_is_verified(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(keep_answering, wrap=context)
    transport = AiohttpTransport()
    try:
        with pytest.raises(httpx2.ConnectError):  # self-signed: refused, as httpx2 would
            await transport.handle_async_request(request(f"https://127.0.0.1:{server.port}/v1/models"))
    finally:
        await transport.aclose()
    assert server.seen == []


async def test_bytes_that_arrived_with_a_broken_connection_still_come_first(serve) -> None:  # type: ignore[no-untyped-def]
    events = [b"data: {\"i\": %d}\n\n" % i for i in range(4)]
    chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]

    def then_break(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     + chunks[0])
        threading.Event().wait(0.1)
        # The rest arrives, cut, while the reader is still busy with the first chunk: it finds data and the broken
        # end waiting together.
        conn.sendall(b"".join(chunks[1:]) + b"ff\r\ndata: {")
        conn.close()

    server = serve(then_break)
    transport = AiohttpTransport()
    got = b""
    try:
        response = await transport.handle_async_request(request(f"http://127.0.0.1:{server.port}/v1/chat"))
        with pytest.raises(httpx2.TransportError):
            async for chunk in response.aiter_raw():
                if not got:
                    await asyncio.sleep(0.5)  # an app slow to take the first chunk
                got += chunk
        await response.aclose()
    finally:
        await transport.aclose()
    assert got.startswith(b"".join(events)), got
