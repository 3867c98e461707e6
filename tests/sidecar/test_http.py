"""The HTTP details a real client exercises, over a raw socket to a running sidecar: kept-alive connections,
``Connection: close``, HTTP/1.0, chunked request bodies, ``Expect: 100-continue``, pipelined requests answered in
order, ``HEAD``, chunked streams, and an unparsable request. Whatever serves the sidecar must keep these."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httptools
import pytest

from baicai_sidecar import _limits
from baicai_sidecar._limits import ServerLimits
from baicai_sidecar._server import SidecarServer

CHAT = json.dumps({"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}).encode()
STREAM = json.dumps({"model": "gpt-3.5-turbo", "stream": True,
                     "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture(autouse=True)
def _own_console_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit hit here prints its console line without silencing the same kind of line (one per 10 s) for the
    tests of ``test_limits.py`` that look for it."""
    monkeypatch.setattr(_limits, "_notes", {})


class Answers:
    """The answers arriving on a raw socket, parsed one after another (interim ``100 Continue`` included)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        self.ready: list[dict[str, Any]] = []
        self.current: dict[str, Any] = {}

    def on_message_begin(self) -> None:
        self.current = {"headers": {}, "body": b""}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current["headers"][name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self.current["status"] = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.current["body"] += body

    def on_message_complete(self) -> None:
        self.ready.append(self.current)

    def next(self) -> dict[str, Any]:
        self.sock.settimeout(10)
        while not self.ready:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the sidecar closed the connection before a whole answer")
            self.parser.feed_data(data)
        return self.ready.pop(0)


def _request(server: SidecarServer, method: str, path: str, token: str, *, body: bytes | None = None,
             version: str = "1.1", extra: str = "") -> bytes:
    head = (f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n"
            f"{extra}")
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def _connect(server: SidecarServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _closed(sock: socket.socket, within: float = 5.0) -> bool:
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


def test_requests_share_one_kept_alive_connection(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    answers = Answers(sock)
    for _ in range(3):
        sock.sendall(_request(sidecar, "GET", "/v1/models", app_token))
        answer = answers.next()
        assert answer["status"] == 200 and json.loads(answer["body"])["data"]
        assert answer["headers"].get("connection") != "close"
    sock.sendall(_request(sidecar, "POST", "/v1/chat/completions", app_token, body=CHAT))
    assert json.loads(answers.next()["body"])["choices"]


def test_connection_close_is_honoured(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    sock.sendall(_request(sidecar, "GET", "/v1/models", app_token, extra="Connection: close\r\n"))
    answer = Answers(sock).next()
    assert answer["status"] == 200 and answer["headers"]["connection"] == "close"
    assert _closed(sock)


def test_an_http10_request_is_answered_whole_then_closed(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    sock.sendall(_request(sidecar, "POST", "/v1/chat/completions", app_token, body=CHAT, version="1.0"))
    answer = Answers(sock).next()
    assert answer["status"] == 200 and json.loads(answer["body"])["choices"]
    assert _closed(sock)


def test_a_chunked_request_body_is_read_whole(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    half = len(CHAT) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (CHAT[:half], CHAT[half:])) + b"0\r\n\r\n"
    sock.sendall(_request(sidecar, "POST", "/v1/chat/completions", app_token,
                          extra="Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n") + chunks)
    answer = Answers(sock).next()
    assert answer["status"] == 200 and json.loads(answer["body"])["choices"]


def test_expect_100_continue_is_answered_before_the_body_is_sent(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    answers = Answers(sock)
    head = _request(sidecar, "POST", "/v1/chat/completions", app_token, body=CHAT, extra="Expect: 100-continue\r\n")
    sock.sendall(head[: -len(CHAT)])  # the head only: the client waits for the go-ahead
    assert answers.next()["status"] == 100
    sock.sendall(CHAT)
    answer = answers.next()
    assert answer["status"] == 200 and json.loads(answer["body"])["choices"]


def test_pipelined_requests_are_answered_in_order(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    sock.sendall(_request(sidecar, "GET", "/v1/models", app_token)
                 + _request(sidecar, "POST", "/v1/chat/completions", app_token, body=CHAT)
                 + _request(sidecar, "GET", "/sidecar/status", app_token))
    answers = Answers(sock)
    first, second, third = answers.next(), answers.next(), answers.next()
    assert json.loads(first["body"])["data"]
    assert json.loads(second["body"])["choices"]
    assert json.loads(third["body"])["version"]


@pytest.mark.slow
def test_a_slow_pipelined_request_is_not_taken_for_a_silent_connection(
        sidecar_factory: Callable[..., SidecarServer], emulator: Any, app_token: str) -> None:
    """The head timeout starts when the connection has no request left; a pipelined request that runs longer than
    it must be answered, not cut as a connection that sent nothing."""
    server = sidecar_factory(limits=ServerLimits(head_timeout=0.5))
    emulator.configure(faults="latency=1.5")
    sock = _connect(server)
    sock.sendall(_request(server, "POST", "/v1/chat/completions", app_token, body=CHAT) * 2)
    answers = Answers(sock)
    assert answers.next()["status"] == 200
    assert answers.next()["status"] == 200


def test_head_gets_no_body_and_the_connection_stays_usable(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    sock.sendall(_request(sidecar, "HEAD", "/v1/models", app_token))
    sock.settimeout(10)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, after = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405") and after == b""
    sock.sendall(_request(sidecar, "GET", "/v1/models", app_token))
    answer = Answers(sock).next()  # a body after the HEAD answer would be parsed here as garbage
    assert answer["status"] == 200 and json.loads(answer["body"])["data"]


def test_a_pipelined_head_request_is_answered_before_the_next(sidecar: SidecarServer, app_token: str) -> None:
    """A HEAD answer has no body write to carry its head: it must still go out, also when the next request was
    already read behind it."""
    sock = _connect(sidecar)
    sock.sendall(_request(sidecar, "HEAD", "/v1/models", app_token) + _request(sidecar, "GET", "/v1/models", app_token))
    sock.settimeout(10)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "closed before the HEAD answer"
        received += chunk
    head, _, after = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405")
    answers = Answers(sock)
    if after:
        answers.parser.feed_data(after)
    answer = answers.next()
    assert answer["status"] == 200 and json.loads(answer["body"])["data"]


def test_a_stream_comes_chunked_and_the_connection_stays_usable(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    answers = Answers(sock)
    sock.sendall(_request(sidecar, "POST", "/v1/chat/completions", app_token, body=STREAM))
    stream = answers.next()
    assert stream["status"] == 200 and stream["headers"]["transfer-encoding"] == "chunked"
    assert stream["headers"]["content-type"].startswith("text/event-stream")
    assert stream["body"].rstrip().endswith(b"data: [DONE]")
    sock.sendall(_request(sidecar, "GET", "/v1/models", app_token))
    assert answers.next()["status"] == 200


def test_an_unparsable_request_gets_400_and_a_close(sidecar: SidecarServer, app_token: str) -> None:
    sock = _connect(sidecar)
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n")
    answer = Answers(sock).next()
    assert answer["status"] == 400
    assert _closed(sock)


def _refused_for_size(server: SidecarServer, app_token: str) -> tuple[socket.socket, Answers]:
    """A connection whose first request declared a body over ``max_body`` and sent it all: answered 413 at once."""
    sock = _connect(server)
    body = json.dumps({"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "x" * 200_000}]}).encode()
    sock.sendall(_request(server, "POST", "/v1/chat/completions", app_token, body=body))
    answers = Answers(sock)
    assert answers.next()["status"] == 413
    return sock, answers


def test_a_body_refused_before_it_is_read_does_not_spoil_the_connection(
        sidecar_factory: Callable[..., SidecarServer], app_token: str) -> None:
    """The rest of a refused body is read and dropped as body — not taken for the next request's head (it was: 431
    "request head over 64 KB") — and the connection serves on."""
    server = sidecar_factory(max_body=100_000)
    sock, answers = _refused_for_size(server, app_token)
    sock.sendall(_request(server, "GET", "/v1/models", app_token))
    answer = answers.next()
    assert answer["status"] == 200 and json.loads(answer["body"])["data"]


def test_the_head_after_a_refused_body_is_still_timed(sidecar_factory: Callable[..., SidecarServer],
                                                      app_token: str) -> None:
    server = sidecar_factory(max_body=100_000, limits=ServerLimits(head_timeout=0.5))
    sock, _ = _refused_for_size(server, app_token)
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    assert _closed(sock, 5.0)


@pytest.mark.slow
def test_stopping_with_a_stream_in_flight_ends_it_and_settles_its_row(
        sidecar_factory: Callable[..., SidecarServer], emulator: Any, app_token: str, ledger_rows: Any) -> None:
    """Stopping the sidecar (the TUI's stop, Ctrl-C) while an app streams: the stop does not wait for the whole
    stream (20 s here), the app's connection ends, and the ledger row is settled, not left pending."""
    server = sidecar_factory()
    emulator.configure(chunk_delay=0.1, reply_tokens=200)
    sock = _connect(server)
    sock.sendall(_request(server, "POST", "/v1/chat/completions", app_token, body=STREAM))
    received = b""
    while received.count(b"data: {") < 3:
        received += sock.recv(65536)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 6
    assert _closed(sock, 5.0)
    rows = ledger_rows()
    assert len(rows) == 1 and rows[0]["status"] != "pending", rows


class _Recorded:
    """The socket's side of a transport, as ``_HeadWithBody`` hands writes to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_an_answers_head_leaves_with_its_first_body_bytes() -> None:
    """uvicorn writes an answer's head at ``http.response.start`` and its body at ``http.response.body``; the
    sidecar's connections send the head with the body's first write (one system call, one segment for the app:
    added p50 −0.7 ms, time to a stream's first chunk −0.6 ms in bench_sidecar). A stream's head waits only for
    the rest of the event loop's turn, so an app sees it at once when the first chunk is late; an interim
    100 Continue goes at once; a held head goes alone when the connection closes (an app that failed after its
    ``http.response.start``). HEAD requests are not held at all (uvicorn writes no body for them): see
    ``test_a_pipelined_head_request_is_answered_before_the_next``."""
    loop = asyncio.new_event_loop()
    try:
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"
        raw = _Recorded()
        out = _limits._HeadWithBody(raw, loop)  # type: ignore[arg-type]
        out.write(head)
        loop.run_until_complete(asyncio.sleep(0))  # a whole answer's head waits for its body, however long
        assert raw.writes == []
        out.write(b"{}")
        assert raw.writes == [head + b"{}"]
        out.write(head)  # body bytes that look like a head (an answer quoting HTTP) are body: written as they come
        assert raw.writes == [head + b"{}", head]
        assert out.get_extra_info("peername") == ("127.0.0.1", 1)  # everything else is the transport's own

        chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        raw = _Recorded()
        out = _limits._HeadWithBody(raw, loop)  # type: ignore[arg-type]
        out.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        out.write(chunked)
        out.write(b"9\r\ndata: {}\n\r\n")  # the first chunk in the same turn: one write
        loop.run_until_complete(asyncio.sleep(0))
        assert raw.writes[1:] == [chunked + b"9\r\ndata: {}\n\r\n"]

        raw = _Recorded()
        out = _limits._HeadWithBody(raw, loop)  # type: ignore[arg-type]
        out.write(chunked)
        loop.run_until_complete(asyncio.sleep(0))  # no chunk yet: the head goes alone at the next turn
        assert raw.writes == [chunked]
        out.write(b"0\r\n\r\n")
        assert raw.writes == [chunked, b"0\r\n\r\n"]

        raw = _Recorded()
        out = _limits._HeadWithBody(raw, loop)  # type: ignore[arg-type]
        raw = _Recorded()
        out = _limits._HeadWithBody(raw, loop)  # type: ignore[arg-type]
        out.write(head)
        out.close()
        assert raw.writes == [head] and raw.closed
    finally:
        loop.close()
