"""The direct upstream client (``_direct.DirectTransport``, the sidecar's default) held to every rule
``test_upstream.py`` holds aiohttp to: the same tests, run again with it in aiohttp's place. Plus what only it has:
the idle pool closes connections before the usual servers' keep-alive ends, and never reuses one the server closed."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import httpx2
import pytest

from baicai_sidecar._direct import DirectTransport

from . import test_upstream as base
from .test_upstream import OK, RawServer, read_request, request, send, serve  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def direct_in_aiohttps_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "AiohttpTransport", DirectTransport)


test_answer_headers_and_body_pass_through_and_the_connection_is_reused = (
    base.test_answer_headers_and_body_pass_through_and_the_connection_is_reused)
test_refused_connection_is_connect_error_so_the_proxy_may_retry = (
    base.test_refused_connection_is_connect_error_so_the_proxy_may_retry)
test_silent_server_is_read_timeout_not_connect_error = base.test_silent_server_is_read_timeout_not_connect_error
test_leaving_a_stream_early_closes_the_upstream_connection = (
    base.test_leaving_a_stream_early_closes_the_upstream_connection)
test_a_stream_cut_mid_answer_raises_httpx_read_error = base.test_a_stream_cut_mid_answer_raises_httpx_read_error
test_environment_proxy_is_used_and_no_proxy_is_honoured = base.test_environment_proxy_is_used_and_no_proxy_is_honoured
test_tls_is_verified = base.test_tls_is_verified
test_bytes_that_arrived_with_a_broken_connection_still_come_first = (
    base.test_bytes_that_arrived_with_a_broken_connection_still_come_first)


async def test_an_idle_connection_is_closed_before_the_server_would(serve: Any) -> None:
    closed = threading.Event()

    def answer_then_watch(conn: socket.socket, server: RawServer) -> None:
        server.seen.append(read_request(conn))
        conn.sendall(OK)
        if conn.recv(1) == b"":  # our side closed it
            closed.set()

    server = serve(answer_then_watch)
    transport = DirectTransport(keepalive=0.2)
    try:
        await send(transport, request(f"http://127.0.0.1:{server.port}/v1/models", method="GET", content=b""))
        assert await asyncio.to_thread(closed.wait, 5.0), "the idle connection stayed open past its keep-alive"
    finally:
        await transport.aclose()


async def test_a_connection_used_again_stays_a_whole_keep_alive_after_its_last_use(serve: Any) -> None:
    """The idle timer is armed once, not per request: when it comes due for a connection that was used since, it
    waits out the rest of a keep-alive from that last use instead of closing it under the next request."""
    closed = threading.Event()

    def answer_then_watch(conn: socket.socket, server: RawServer) -> None:
        while True:
            seen = read_request(conn)
            if not seen:
                closed.set()  # our side closed it
                return
            server.seen.append(seen)
            conn.sendall(OK)

    server = serve(answer_then_watch)
    transport = DirectTransport(keepalive=0.6)
    url = f"http://127.0.0.1:{server.port}/v1/models"
    try:
        await send(transport, request(url, method="GET", content=b""))
        await asyncio.sleep(0.35)
        await send(transport, request(url, method="GET", content=b""))
        await asyncio.sleep(0.35)  # past the first use's keep-alive, well within the second's
        assert not closed.is_set(), "closed at the first use's keep-alive although it was used since"
        await send(transport, request(url, method="GET", content=b""))
        assert server.connections == 1 and len(server.seen) == 3
        assert await asyncio.to_thread(closed.wait, 5.0), "the idle connection stayed open past its keep-alive"
    finally:
        await transport.aclose()


async def test_a_reused_connection_gets_its_own_read_timeout_not_the_last_requests(serve: Any) -> None:
    """The read timer outlives a request on its connection: when the first request's deadline comes during the
    second's wait, the second still has its whole timeout from its own start."""
    def first_at_once_then_slowly(conn: socket.socket, server: RawServer) -> None:
        while seen := read_request(conn):
            if server.seen:
                threading.Event().wait(0.45)
            server.seen.append(seen)
            conn.sendall(OK)

    server = serve(first_at_once_then_slowly)
    transport = DirectTransport()
    url = f"http://127.0.0.1:{server.port}/v1/models"
    try:
        await send(transport, request(url, method="GET", content=b"", read=0.6))
        await asyncio.sleep(0.3)  # the first request's deadline (0.6 s) comes while the second waits
        response = await send(transport, request(url, method="GET", content=b"", read=0.6))
        assert response.status_code == 200 and server.connections == 1
        with pytest.raises(httpx2.ReadTimeout):  # and a real timeout is still one
            await send(transport, request(url, method="GET", content=b"", read=0.2))
    finally:
        await transport.aclose()


async def test_a_connection_the_server_closed_is_not_reused(serve: Any) -> None:
    def answer_once(conn: socket.socket, server: RawServer) -> None:
        server.seen.append(read_request(conn))
        conn.sendall(OK)
        conn.close()  # no Connection: close header: only the socket says it

    server = serve(answer_once)
    transport = DirectTransport()
    try:
        url = f"http://127.0.0.1:{server.port}/v1/models"
        for _ in range(3):
            response = await send(transport, request(url, method="GET", content=b""))
            assert response.status_code == 200
            await asyncio.sleep(0.05)  # the close reaches us while the connection is idle
    finally:
        await transport.aclose()
    assert server.connections == 3


async def test_connection_close_and_an_answer_without_length(serve: Any) -> None:
    def until_close(conn: socket.socket, server: RawServer) -> None:
        server.seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"a\": 1}")
        conn.close()

    server = serve(until_close)
    transport = DirectTransport()
    try:
        url = f"http://127.0.0.1:{server.port}/v1/models"
        for _ in range(2):
            response = await send(transport, request(url, method="GET", content=b""))
            assert response.content == b'{"a": 1}'
    finally:
        await transport.aclose()
    assert server.connections == 2


async def test_cancelling_while_waiting_for_the_answer_closes_the_connection(serve: Any) -> None:
    gone = threading.Event()

    def silent(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        if conn.recv(1) == b"":
            gone.set()

    server = serve(silent)
    transport = DirectTransport()
    try:
        task = asyncio.ensure_future(transport.handle_async_request(
            request(f"http://127.0.0.1:{server.port}/v1/chat/completions")))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(gone.wait, 5.0), "the relay never saw the client go"
    finally:
        await transport.aclose()


def test_the_sidecar_uses_it_by_default() -> None:
    from baicai_sidecar._proxy import upstream_transport
    from baicai_sidecar._upstream import AiohttpTransport

    assert isinstance(upstream_transport("auto"), DirectTransport)
    assert isinstance(upstream_transport("aiohttp"), AiohttpTransport)
    assert upstream_transport("httpx2") is None


def test_aiohttp_is_loaded_only_for_a_proxied_request(serve: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    server = serve(base.keep_answering)
    code = f"""
import asyncio, json, sys, httpx2
from baicai_sidecar._proxy import upstream_transport

async def main():
    transport = upstream_transport("auto")
    request = httpx2.Request("POST", "http://127.0.0.1:{server.port}/v1/chat/completions", content=b"{{}}",
                             extensions={{"timeout": {{"connect": 2, "read": 5}}}})
    response = await transport.handle_async_request(request)
    await response.aread()
    await response.aclose()
    await transport.aclose()
    return response.status_code

print(json.dumps([asyncio.run(main()), "aiohttp" in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, False]
