"""What the HTTP server alone costs the sidecar, serving the same trivial ASGI app, each server in its own process on
uvloop (as ``baicai sidecar`` runs), measured in one run with interleaved rounds.

    python bench/bench_http_server.py [--rounds 6] [--requests 4000] [--streams 400] [--chunks 50] [--rev REV ...]

Variants:
* ``uvicorn`` — uvicorn's httptools protocol alone, with the sidecar's settings (no access log, no date or server
  header, backlog 128): what the limits add is the difference to the next one;
* ``sidecar`` — the server the sidecar runs in this tree, with its default limits (``baicai_sidecar._server``);
* ``sidecar@REV`` (``--rev REV``, repeatable) — the same from the ``baicai_sdk`` and ``baicai_sidecar`` packages at
  git revision REV
  (extracted with ``git archive`` into a temporary folder put first on ``PYTHONPATH``): the code before a change,
  or a candidate kept on a branch (issue 17: ``H-raw-server``, a raw asyncio + httptools server).

The app reads the request body, then answers either a ~600-byte JSON with a content-length (``/plain``) or
``--chunks`` SSE events without one (``/stream``: chunked, one ``send`` per event). The client is one kept-alive
blocking socket in this process. CPU is the server's utime + stime from ``/proc/PID/stat`` over a batch, divided
by its requests; per chunk: (stream − plain) / ``--chunks``; and a quarter as many requests each on a new
connection (a client without keep-alive: accept, protocol set-up, close). Median [min–max] over the rounds; compare variants
within a run only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from baicai_sdk._serving import answer_lifespan

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
BODY = (b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-3.5-turbo",'
        b'"choices":[{"index":0,"message":{"role":"assistant","content":"' + "白菜".encode() * 60 + b'"},'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":120,"total_tokens":140}}')
EVENT = (b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
         b'"model":"gpt-3.5-turbo","choices":[{"index":0,"delta":{"content":"' + "白菜".encode() + b'"}}]}\n\n')
REQUEST_BODY = b'{"model":"gpt-3.5-turbo","messages":[{"role":"user","content":"hi"}]}'


def make_app(chunks: int) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for _ in range(chunks):
                await send({"type": "http.response.body", "body": EVENT, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(BODY)).encode())]})
            await send({"type": "http.response.body", "body": BODY})

    return app


# -- the server processes ------------------------------------------------------------------------------------------
def serve(variant: str, chunks: int) -> None:
    from baicai_sdk.integration import bind_socket, serve_forever

    sock = bind_socket("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    app = make_app(chunks)
    if variant == "uvicorn":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        serve_forever(app, sock, loop="uvloop", lifespan="on", http=HttpToolsProtocol, timeout_keep_alive=5,
                      backlog=128)
        return
    from baicai_sidecar import _server
    from baicai_sidecar._limits import DEFAULT_LIMITS, uvicorn_options

    own = getattr(_server, "_http_server", None)  # a revision with its own server
    server = own(app, DEFAULT_LIMITS) if own is not None else None
    if server is not None:
        server.run_forever([sock])
    else:
        serve_forever(app, sock, loop="uvloop", **_server._UVICORN, **uvicorn_options(DEFAULT_LIMITS))


def _package_at(rev: str, into: Path) -> None:
    """``baicai_sdk`` and ``baicai_sidecar`` as they were at ``rev``, under ``into``."""
    archive = subprocess.run(["git", "archive", rev, "baicai_sdk", "baicai_sidecar"], cwd=HERE.parent, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


# -- the client ----------------------------------------------------------------------------------------------------
def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Client:
    """One kept-alive connection; reads each answer to its end (content-length or the last chunk)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, path: str) -> None:
        self.sock.sendall(b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n%s" % (path.encode(), len(REQUEST_BODY), REQUEST_BODY))
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        if b"content-length" in head.lower():
            while len(rest) < len(BODY):
                self.buffer = rest
                self._read()
                rest = self.buffer
            self.buffer = rest[len(BODY):]
        else:
            while b"0\r\n\r\n" not in rest:
                self.buffer = rest
                self._read()
                rest = self.buffer
            self.buffer = rest.split(b"0\r\n\r\n", 1)[1]

    def _read(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("closed")
        self.buffer += data


def batch(pid: int, port: int, path: str, count: int) -> float:
    """Server CPU ms per request over ``count`` requests on one connection."""
    client = Client(port)
    client.request(path)  # warm
    before = _cpu(pid)
    for _ in range(count):
        client.request(path)
    after = _cpu(pid)
    client.sock.close()
    return (after - before) * 1000 / count


def fresh_batch(pid: int, port: int, count: int) -> float:
    """Server CPU ms per request when each comes on a new connection (a client without keep-alive)."""
    before = _cpu(pid)
    for _ in range(count):
        client = Client(port)
        client.request("/plain")
        client.sock.close()
    return (_cpu(pid) - before) * 1000 / count


def _fmt(values: list[float], digits: int = 3) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--rev", action="append", default=[], help="also the sidecar's server at this revision")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.chunks)
        return
    variants = ["uvicorn", "sidecar", *(f"sidecar@{rev}" for rev in args.rev)]
    procs: dict[str, tuple[subprocess.Popen[str], int]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    try:
        for variant in variants:
            env = dict(os.environ)
            if "@" in variant:
                where = tmp / variant.split("@", 1)[1].replace("/", "_")
                where.mkdir()
                _package_at(variant.split("@", 1)[1], where)
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(where), env.get("PYTHONPATH")]))
            command = [sys.executable, __file__, "--serve", variant.split("@")[0], "--chunks", str(args.chunks)]
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
            assert proc.stdout is not None
            procs[variant] = (proc, int(proc.stdout.readline()))
        time.sleep(0.5)
        plain: dict[str, list[float]] = {v: [] for v in variants}
        stream: dict[str, list[float]] = {v: [] for v in variants}
        fresh: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                proc, port = procs[variant]
                plain[variant].append(batch(proc.pid, port, "/plain", args.requests))
                stream[variant].append(batch(proc.pid, port, "/stream", args.streams))
                fresh[variant].append(fresh_batch(proc.pid, port, args.requests // 4))
            print(f"round {r + 1}: " + ", ".join(f"{v} {plain[v][-1]:.3f}/{stream[v][-1]:.3f}" for v in variants),
                  file=sys.stderr)
        print(f"server CPU, median [min–max] over {args.rounds} rounds ({args.requests} requests, {args.streams} "
              f"streams of {args.chunks} chunks per round)")
        print("| variant | ms / request | ms / stream | µs / chunk | ms / request on a new connection |")
        print("|---|---|---|---|---|")
        for v in variants:
            per_chunk = [(s - p) * 1000 / args.chunks for s, p in zip(stream[v], plain[v], strict=True)]
            print(f"| {v} | {_fmt(plain[v])} | {_fmt(stream[v])} | {_fmt(per_chunk, 1)} | {_fmt(fresh[v])} |")
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
