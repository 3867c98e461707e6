"""Bench helpers run as their own processes: an instant upstream that replays the emulator's bytes, the raw asyncio
floor forwarder, and a second ledger writer. Each prints its port (or "ready") on stdout, then serves until killed.

    python bench/_replay.py upstream                    # instant relay stand-in
    python bench/_replay.py floor UPSTREAM_PORT KEY     # raw asyncio forwarder: what forwarding alone costs
    python bench/_replay.py writer                      # reserves and settles ledger rows, as another process would

Why a replay and not the emulator: the emulator is a Python ASGI app that costs more CPU per request than the proxy
under test, on the same two cores; its cost would drown the figures. The replay answers with the emulator's own
bytes (captured once at start), from plain asyncio + httptools, so nearly all CPU left is the client's and the
proxy's. ``POST /_replay/delay`` with a number of seconds paces stream chunks the way a relay's model does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None


# -- the instant upstream ------------------------------------------------------------------------------------------
def capture() -> tuple[bytes, list[bytes]]:
    """One non-streamed answer and one stream's events, as the emulator sends them."""
    import httpx2

    from baicai_sdk.testing import EmulatorConfig, EmulatorServer

    chat = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好，介绍一下白菜。"}]}
    with EmulatorServer(EmulatorConfig(paid_balance=1e6)) as emu:
        headers = {"authorization": f"Bearer {emu.paid_key}"}
        plain = httpx2.post(emu.base_url + "/chat/completions", json=chat, headers=headers).content
        with httpx2.stream("POST", emu.base_url + "/chat/completions", json={**chat, "stream": True},
                           headers=headers) as r:
            raw = r.read()
    events = [event + b"\n\n" for event in raw.split(b"\n\n") if event.strip()]
    return plain, events


class _Message:
    """What httptools' callbacks report about one request or response."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


async def _serve(on_request: Any, port: int) -> None:
    """Serve ``on_request(message, parser, reader, writer)`` for each request of each keep-alive connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (read := await _read_request(reader)) is not None:
                await on_request(*read, reader, writer)
                await writer.drain()
        except (ConnectionError, httptools.HttpParserError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


async def _read_request(reader: asyncio.StreamReader) -> tuple[_Message, httptools.HttpRequestParser] | None:
    """The next request on a keep-alive connection, or None when the client closed it."""
    message = _Message()
    parser = httptools.HttpRequestParser(message)
    while not message.done:
        data = await reader.read(65536)
        if not data:
            return None
        parser.feed_data(data)
    return message, parser


async def upstream(port: int = 0) -> None:
    plain, events = capture()
    delay = [0.0]
    plain_head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                  + str(len(plain)).encode() + b"\r\n\r\n")
    stream_head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]

    async def on_request(request: _Message, _parser: Any, _reader: Any, writer: asyncio.StreamWriter) -> None:
        body = b"".join(request.body)
        if request.url.startswith(b"/_replay/delay"):
            delay[0] = float(body or b"0")
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        elif b'"stream":true' in body.replace(b" ", b""):
            writer.write(stream_head)
            for chunk in chunks:
                writer.write(chunk)
                if delay[0]:
                    await writer.drain()
                    await asyncio.sleep(delay[0])
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(plain_head + plain)

    await _serve(on_request, port)


# -- the floor: a raw asyncio forwarder ------------------------------------------------------------------------------
async def floor(upstream_port: int, key: str, port: int = 0) -> None:
    """No framework, no checks, no metering: parse the request, swap the Authorization header, send it on a pooled
    upstream connection, and copy the answer's bytes back as they arrive (one parser watches where it ends)."""
    pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    auth = b"authorization: Bearer " + key.encode() + b"\r\n"

    async def on_request(incoming: _Message, parser: Any, _reader: Any, writer: asyncio.StreamWriter) -> None:
        if incoming.url.startswith(b"/sidecar/status"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            return
        body = b"".join(incoming.body)
        head = [parser.get_method() + b" " + incoming.url + b" HTTP/1.1\r\n"]
        head += [k + b": " + v + b"\r\n" for k, v in incoming.headers
                 if k.lower() not in (b"authorization", b"content-length", b"connection")]
        head.append(auth + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
        up_reader, up_writer = pool.pop() if pool else await asyncio.open_connection("127.0.0.1", upstream_port)
        up_writer.write(b"".join(head) + body)
        response = _Message()
        response_parser = httptools.HttpResponseParser(response)
        while not response.done:
            data = await up_reader.read(65536)
            if not data:
                raise ConnectionError("upstream closed")
            response_parser.feed_data(data)
            writer.write(data)
        pool.append((up_reader, up_writer))

    await _serve(on_request, port)


# -- a second process writing the ledger ----------------------------------------------------------------------------
def writer(rate: float = 50.0) -> None:
    """Reserve and settle a request every 1/rate s through the SDK's Meter, as a script using ``Baicai`` would."""
    from baicai_sdk._meter import Meter
    from baicai_sdk._quota import describe_request

    meter = Meter(source="sdk", quota="off")
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "max_tokens": 50,
                                                     "messages": [{"role": "user", "content": "hi"}]})
    print("ready", flush=True)
    while True:
        reservation = meter.reserve("baicai-bench-writer-key", info)
        reservation.settle(prompt_tokens=20, completion_tokens=30)  # type: ignore[union-attr]
        time.sleep(1.0 / rate)


def main() -> None:
    role = sys.argv[1]
    if role == "writer":
        writer()
        return
    if uvloop is not None:
        uvloop.install()
    if role == "upstream":
        asyncio.run(upstream())
    elif role == "floor":
        asyncio.run(floor(int(sys.argv[2]), sys.argv[3]))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
