"""The rungs of ``bench_sidecar.py --breakdown``: the sidecar built up one part at a time, each rung its own process.

    python bench/_ladder.py RUNG UPSTREAM_URL KEY PORT LEDGER_PATH

Each rung is started by the sidecar's own ``_server.serve`` — the same uvicorn settings (httptools with the limits
protocol, uvloop, keep-alive, backlog), file limit, tokenizer loaded at start, start-up objects frozen out of the GC —
and forwards to the upstream through the sidecar's own :class:`~baicai_sidecar._direct.DirectTransport`. For the
first two rungs ``serve`` is handed this file's app in place of the sidecar's (``_server.create_app`` replaced in the
rung's own process: a bench-only patch, so that whatever ``serve`` does for the sidecar it does for them too). Top to bottom each adds one part
of the real product, configured as a user could (only the first two are not the sidecar's app):

* ``server`` — uvicorn with a minimal ASGI app of this file and the floor's upstream client (pooled asyncio streams,
  the answer parsed by httptools, no httpx2 objects): what the server adds to the floor (``bench/_replay.py floor``);
* ``bare`` — the same app forwarding through ``DirectTransport`` instead: read the body, one ``httpx2.Request`` with the key, the answer sent back
  as it comes. The HTTP server (uvicorn's ASGI cycle) and the upstream client, no checks;
* ``proxy`` — the sidecar's :class:`~baicai_sidecar._proxy.Proxy` with ``ProxyConfig(transport=DirectTransport())``
  (the option tests use to replace the upstream): header allow-list, key injection, retries, the relay-error
  rewrite, the disconnect watcher, the console line — no guard, no meter;
* ``guard`` — the whole sidecar app (``serve(SidecarConfig(transport=DirectTransport()))``): + the guard (Host,
  Origin, path, the token check, the body read and parsed once, the Starlette-free routing);
* ``pipeline`` — the sidecar as it runs, with ``quota="off"`` and a **stand-in meter** (``meter=`` is a
  ``SidecarConfig`` option; the stand-in is this file's :class:`_Unrecorded`, a ``Meter`` whose ``reserve`` hands back
  a reservation without touching SQLite and whose rows are never written): + the SDK's metered pipeline
  (``prepare``: the body described and its prompt counted; ``annotate``: the answer parsed and classified; the
  settle handed to the proxy) without the ledger. The stand-in overrides ``Meter`` internals — acceptable for a
  bench, not a product mode;
* ``ledger`` — the sidecar with ``quota="off"`` and a real ``Meter`` on its own ledger file (``LEDGER_PATH``): + the
  meter and its ledger — all of ``Meter.reserve`` (the catalogue and relay-rule lookups, the window view, the row's
  ``BEGIN IMMEDIATE … INSERT … COMMIT``) and of the settle (its ``UPDATE``), the checkpoint thread — every request
  recorded, none refused;
* the last rung is the bench's own ``sidecar`` (``quota="raise"``): + the quota gate's enforcing decision.

With ``--own-server`` two more, for the server alone: ``own-raw`` (the ``server`` rung's app) and ``own-sidecar``
(the sidecar's app, ``quota="raise"``) served by the HTTP server prototyped on branch ``H-raw-server`` (its
``_http.py``, which the bench copies out of git as ``own_http.py``; started as ``serve`` starts the sidecar: file
limit, tokenizer, start-up frozen) instead of uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httptools
import httpx2

from baicai_sdk import Meter
from baicai_sdk._meter import Reservation
from baicai_sdk._quota import Decision
from baicai_sdk._serving import answer_lifespan
from baicai_sidecar import _server
from baicai_sidecar._direct import DirectTransport
from baicai_sidecar._proxy import Proxy, ProxyConfig
from baicai_sidecar._server import serve
from baicai_sidecar.app import SidecarConfig, create_app

STATUS_PATH = "/sidecar/status"
_TIMEOUTS = httpx2.Timeout(connect=10.0, read=300.0, write=60.0, pool=30.0).as_dict()
_DROP = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"server", b"date"})


class _Answer:
    """What httptools reports of one upstream answer."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.head_done = self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Rung:
    """What every rung app answers itself — the lifespan and the status path the bench polls — before its
    ``forward``."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
        elif scope["path"] == STATUS_PATH:
            await _status(send)
        else:
            await self.forward(scope, receive, send)

    async def forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise NotImplementedError


class RawForwarder(_Rung):
    """uvicorn's ASGI cycle with the floor's upstream client: the request written in one piece on a pooled asyncio
    connection, the answer parsed by httptools and sent on as it comes — no httpx2 objects, no checks."""

    def __init__(self, upstream: str, key: str) -> None:
        url = httpx2.URL(upstream)
        self.host, self.port, self.prefix = url.host, url.port or 80, url.path.rstrip("/")
        self.auth = b"authorization: Bearer " + key.encode() + b"\r\n"
        self.pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _body(receive)
        path = self.prefix + (scope["path"][3:] if scope["path"].startswith("/v1/") else scope["path"])
        head = (f"{scope['method']} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n").encode() + self.auth + b"\r\n"
        reader, writer = self.pool.pop() if self.pool else await asyncio.open_connection(self.host, self.port)
        writer.write(head + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        streaming = False
        while not answer.done:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("upstream closed")
            parser.feed_data(data)
            if answer.head_done and not streaming and not answer.done:
                # an answer that did not come whole with its head: a stream, sent on as it comes
                streaming = True
                await send({"type": "http.response.start", "status": parser.get_status_code(),
                            "headers": [(k, v) for k, v in answer.headers if k not in _DROP]})
            if streaming and answer.body:
                chunk, answer.body = b"".join(answer.body), []
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.pool.append((reader, writer))
        if streaming:
            await send({"type": "http.response.body", "body": b""})
            return
        content = b"".join(answer.body)
        headers = [(k, v) for k, v in answer.headers if k not in _DROP]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": parser.get_status_code(), "headers": headers})
        await send({"type": "http.response.body", "body": content})


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class BareForwarder(_Rung):
    """uvicorn's ASGI cycle and ``DirectTransport``, nothing else: what a forwarder on the sidecar's server and
    upstream client costs before any of its own checks."""

    def __init__(self, upstream: str, key: str) -> None:
        self.base = upstream.rstrip("/")
        self.auth = (b"authorization", b"Bearer " + key.encode())
        self.transport = DirectTransport()
        self.urls: dict[str, httpx2.URL] = {}

    async def forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _body(receive)
        path = scope["path"]
        url = self.urls.get(path)
        if url is None:
            url = self.urls[path] = httpx2.URL(self.base + (path[3:] if path.startswith("/v1/") else path))
        headers = [(b"Host", url.netloc), (b"content-type", b"application/json"), self.auth,
                   (b"Content-Length", str(len(body)).encode())]
        request = httpx2.Request(scope["method"], url, headers=headers, stream=httpx2.ByteStream(body),
                                 extensions={"timeout": _TIMEOUTS})
        request.read()
        response = await self.transport.handle_async_request(request)
        try:
            out = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _DROP]
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                async for chunk in response.stream:  # type: ignore[union-attr]
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                content = await response.aread()
                out.append((b"content-length", str(len(content)).encode()))
                await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                await send({"type": "http.response.body", "body": content})
        finally:
            await response.aclose()


class ProxyOnly(_Rung):
    """The sidecar's ``Proxy`` served as the app itself (no guard in front): the status path answered here."""

    def __init__(self, upstream: str, key: str) -> None:
        self.proxy = Proxy(ProxyConfig(upstream=upstream, api_key=key, transport=DirectTransport()))

    async def forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.proxy(scope, receive, send)


class _Unrecorded(Meter):
    """A meter that decides nothing and writes nothing: ``reserve`` returns an allowed reservation at once, and its
    settle, ``observe`` and ``learn_relay_host`` do nothing. Only for the ``pipeline`` rung of the bench."""

    def reserve(self, api_key: str, request: Any, **_options: Any) -> Reservation:
        decision = Decision(kind="allow", family=request.family, tier="paid", tier_source="configured")
        return Reservation(self, 0, request, decision)

    def _settle(self, *_args: Any, **_outcome: Any) -> None:
        return None

    def observe(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def learn_relay_host(self, *_args: Any, **_kwargs: Any) -> None:
        return None


async def _status(send: Any) -> None:
    body = json.dumps({"ok": True}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _serve_app(app: Any, config: SidecarConfig) -> None:
    """``_server.serve`` as for the sidecar, with ``app`` served in place of the sidecar's app."""
    _server.create_app = lambda _config: app  # type: ignore[attr-defined,assignment]
    serve(config, log_level="warning")


def _serve_on_own_server(folder: str, app: Any, port: int) -> None:
    """``app`` on the prototype's own HTTP server (``own_http.py`` in ``folder``), started as ``serve`` starts the
    sidecar."""
    import gc

    from baicai_sdk.integration import bind_socket, get_encoding
    from baicai_sidecar._limits import DEFAULT_LIMITS, raise_fd_limit

    sys.path.insert(0, folder)
    from own_http import HttpServer  # type: ignore[import-not-found]

    raise_fd_limit()
    get_encoding("cl100k_base")
    gc.collect()
    gc.freeze()
    HttpServer(app, DEFAULT_LIMITS, graceful_timeout=3.0).run_forever([bind_socket("127.0.0.1", port)])


def main() -> None:
    rung, upstream, key, port, ledger = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    common: dict[str, Any] = {"upstream": upstream, "api_key": key, "tier": "paid", "port": port}
    if rung.startswith("own-"):
        _serve_on_own_server(sys.argv[6], RawForwarder(upstream, key) if rung == "own-raw"
                             else create_app(SidecarConfig(**common)), port)
        return
    if rung == "server":
        _serve_app(RawForwarder(upstream, key), SidecarConfig(**common))
        return
    if rung == "bare":
        _serve_app(BareForwarder(upstream, key), SidecarConfig(**common))
        return
    if rung == "proxy":
        _serve_app(ProxyOnly(upstream, key), SidecarConfig(**common))
        return
    if rung == "guard":
        config = SidecarConfig(**common, transport=DirectTransport())
    elif rung == "pipeline":
        config = SidecarConfig(**common, quota="off", meter=_Unrecorded(source="sidecar", tier="paid"))
    elif rung == "ledger":
        config = SidecarConfig(**common, quota="off", meter=Meter(source="sidecar", tier="paid", ledger_path=ledger))
    else:
        raise SystemExit(f"unknown rung {rung!r}")
    serve(config, log_level="warning")


if __name__ == "__main__":
    main()
