"""CPU per stream and per chunk on the sidecar's stream path, in-process: no sockets, no uvicorn.

    python bench/bench_stream_path.py [--rounds 5] [--streams 200] [--concurrency 50] [--per-read 1]
    python bench/bench_stream_path.py --against /tmp/base      # the same, alternated with another tree's code
    python bench/bench_stream_path.py --profile out.prof      # one level under cProfile

What runs is the sidecar's own code from the ASGI call down to the upstream connection's parser: the guard, the
proxy (``_relay_stream``/``_pump``, ``KeyScrubber``), the SDK's ``AsyncMeteredTransport`` (describe, reserve in the
SQLite ledger, the stream's tally, settle) and ``DirectTransport`` with its httptools ``_Connection``. Only the
socket is replaced: the connection's transport is a stand-in that answers each request with the emulator's own
stream bytes (captured once; chunked transfer encoding, as the relay sends them), handing the connection
``--per-read`` events per ``data_received``, the next read only after the app's ``send`` got the previous bytes
(so every event travels the whole path on its own, as a paced stream's do). The app's side is a bare ``send``
that counts bytes (uvicorn's send is not measured here).

Levels (each its own batch, so a level's cost minus the one below is that layer's):
* ``direct`` — ``DirectTransport`` alone: the request, the answer's stream read to its end;
* ``metered`` — through ``AsyncMeteredTransport`` (describe, reserve, tally, settle in the ledger);
* ``app`` — the whole ASGI app (guard, proxy, scrubber, the metered transport, ``DirectTransport``).
Each level runs a short stream (the emulator's 17 events) and a long one (its content events repeated to
``--long`` events): CPU per stream is the short one's, CPU per chunk is (long − short) / (extra events).
Time to first chunk (``app``, one stream at a time): from the ASGI call to the upstream request written
(``pre-send``: guard, describe, reserve), from the upstream's first body bytes handed to the connection to the
app's first body ``send`` (``first-chunk``), and from the upstream's last bytes to the app's last ``send`` (``end``).

CPU is ``time.process_time()`` over a batch; rounds alternate levels (and, with ``--against``, the two trees, each
round a fresh process per tree: A B A B …); figures are the median over rounds with [min–max].
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEY = "baicai-bench-paid-key-0000000000000001"
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好，介绍一下白菜。"}], "stream": True}
_CATALOG = {"families": {"gpt-3.5": {"limits": {
    "free": {"requests_per_hour": 60, "tokens_per_hour": 10000},
    "paid": {"requests_per_hour": 100_000_000, "tokens_per_hour": None}}}}}
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


# -- the child: one tree's code, measured ------------------------------------------------------------------------
class _Wire:
    """Stands in for the socket under a ``_Connection``: each request written gets the canned stream (``current``'s
    events), ``per_read`` events per ``data_received``, the next read only once the reader waits for more."""

    def __init__(self, conn: Any, current: dict[str, Any], per_read: int, clock: dict[str, float]) -> None:
        self.conn, self.current, self.per_read, self.clock = conn, current, per_read, clock
        self.queue: list[bytes] = []
        self.closing = False

    # asyncio.Transport's surface that _Connection uses
    def write(self, data: bytes) -> None:
        events = self.current["pieces"]
        reads = [_HEAD]
        for i in range(0, len(events), self.per_read):
            reads.append(b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events[i:i + self.per_read]))
        reads[-1] += b"0\r\n\r\n"
        reads.reverse()
        self.queue = reads

    def more(self) -> None:
        if self.queue and not self.closing:
            data = self.queue.pop()
            if "first_body" not in self.clock and data is not _HEAD:
                self.clock["first_body"] = time.perf_counter()
            if not self.queue:
                self.clock["last_body"] = time.perf_counter()
            self.conn.data_received(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.conn.loop.call_soon(self.conn.connection_lost, None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import httpx2

    from baicai_sdk import AsyncMeteredTransport
    from baicai_sidecar import _direct
    from baicai_sidecar.app import SidecarApp, SidecarConfig

    events = [e.encode("latin-1") for e in json.loads(Path(args.events).read_text())]
    content = [e for e in events[1:-3]]
    long_events = events[:1] + (content * (args.long // len(content) + 1))[:args.long - 4] + events[-3:]
    shapes = {"short": events, "long": long_events}
    clock: dict[str, float] = {}
    current: dict[str, Any] = {"pieces": events}

    class CannedConnection(_direct._Connection):
        async def wait(self, timeout: float | None) -> None:
            wire = self.transport
            if wire.queue:  # type: ignore[union-attr]
                self.loop.call_soon(wire.more)  # type: ignore[union-attr]
            await super().wait(timeout)

    class CannedDirect(_direct.DirectTransport):
        async def _connect(self, key: Any, timeout: Any, request: Any) -> Any:
            conn = CannedConnection(asyncio.get_running_loop(), key)
            conn.connection_made(_Wire(conn, current, args.per_read, clock))  # type: ignore[arg-type]
            return conn

    upstream = "http://relay.test/v1"
    config = SidecarConfig(upstream=upstream, api_key=KEY, tier="paid", quota="raise", open_access=True,
                           port=8765, verify_token=lambda token: None)
    direct = CannedDirect()
    metered = AsyncMeteredTransport(direct, source="sidecar", quota="raise", tier="paid")
    config.transport = metered
    app = SidecarApp(config)
    body = json.dumps(CHAT).encode()
    url = httpx2.URL(upstream + "/chat/completions")
    timeouts = httpx2.Timeout(connect=10.0, read=300.0, write=60.0, pool=30.0).as_dict()
    headers = [(b"host", b"127.0.0.1:8765"), (b"content-type", b"application/json"),
               (b"authorization", b"Bearer sk-baicai-bench"), (b"content-length", str(len(body)).encode()),
               (b"user-agent", b"bench"), (b"accept", b"application/json")]

    def request() -> Any:
        return httpx2.Request("POST", url, headers={"content-type": "application/json", "authorization":
                                                    f"Bearer {KEY}", "accept-encoding": "identity"},
                              content=body, extensions={"timeout": timeouts})

    async def one_transport(transport: Any) -> int:
        response = await transport.handle_async_request(request())
        n = 0
        try:
            async for chunk in response.stream:
                n += len(chunk)
        finally:
            await response.stream.aclose()
        return n

    async def one_app(first: list[float] | None = None) -> int:
        sent = [0]
        forever = asyncio.get_running_loop().create_future()
        given = [False]

        async def receive() -> dict[str, Any]:
            if not given[0]:
                given[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await forever
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    if first is not None and len(first) == 1:
                        first.append(time.perf_counter())
                    sent[0] += len(chunk)
                if first is not None and not message.get("more_body"):
                    first.append(time.perf_counter())

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
                 "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8765)}
        await app(scope, receive, send)
        forever.cancel()
        return sent[0]

    async def batch(level: str, shape: str, n: int, concurrency: int) -> float:
        current["pieces"] = shapes[shape]
        if level == "app":
            async def lane(count: int) -> None:
                for _ in range(count):
                    await one_app()
            lanes = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
            t0 = time.process_time()
            await asyncio.gather(*(lane(c) for c in lanes if c))
            return (time.process_time() - t0) / n
        transport = direct if level == "direct" else metered

        async def lane_t(count: int) -> None:
            for _ in range(count):
                await one_transport(transport)
        lanes = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
        t0 = time.process_time()
        await asyncio.gather(*(lane_t(c) for c in lanes if c))
        return (time.process_time() - t0) / n

    async def ttfc(n: int) -> tuple[float, float, float]:
        current["pieces"] = shapes["short"]
        pre, first_chunk, last = [], [], []
        for _ in range(n):
            clock.clear()
            first: list[float] = [time.perf_counter()]
            await one_app(first)
            pre.append(clock["first_body"] - first[0])
            first_chunk.append(first[1] - clock["first_body"])
            last.append(first[-1] - clock["last_body"])
        return statistics.median(pre) * 1e3, statistics.median(first_chunk) * 1e3, statistics.median(last) * 1e3

    async def main() -> dict[str, Any]:
        await app.proxy.start()
        from baicai_sdk.integration import get_encoding

        get_encoding("cl100k_base")
        results: dict[str, Any] = {}
        levels = args.levels.split(",")
        for level in levels:  # warm: connections, caches, the ledger
            for shape in shapes:
                await batch(level, shape, 2 * args.concurrency, args.concurrency)
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            await batch(levels[-1], args.profile_shape, args.streams, args.concurrency)
            profiler.disable()
            profiler.dump_stats(args.profile)
            return {}
        for level in levels:
            for shape in shapes:
                results[f"{level}/{shape}"] = await batch(level, shape, args.streams, args.concurrency) * 1e3
        if "app" in levels:
            results["ttfc/pre-send"], results["ttfc/first-chunk"], results["ttfc/end"] = await ttfc(50)
        await app.proxy.aclose()
        return results

    if args.uvloop:
        import uvloop

        uvloop.install()
    out = asyncio.run(main())
    out["events"] = {k: len(v) for k, v in shapes.items()}
    return out


# -- the parent: rounds, trees, the table ------------------------------------------------------------------------
def _capture(path: Path) -> None:
    sys.path.insert(0, str(HERE))
    from _replay import capture

    _, events = capture()
    path.write_text(json.dumps([e.decode("latin-1") for e in events]))


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}–{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=200, help="streams per batch")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--per-read", type=int, default=1, help="events per data_received")
    parser.add_argument("--long", type=int, default=200, help="events in the long stream")
    parser.add_argument("--levels", default="direct,metered,app")
    parser.add_argument("--against", help="another tree (e.g. `git worktree`/`git archive` of main) to alternate with")
    parser.add_argument("--profile", help="write a cProfile of the last level's batch here (this tree only)")
    parser.add_argument("--profile-shape", default="long")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(_child(args)))
        return

    with tempfile.TemporaryDirectory() as home:
        events = Path(home) / "events.json"
        _capture(events)
        (Path(home) / "config").mkdir()
        (Path(home) / "config" / "catalog.json").write_text(json.dumps(_CATALOG))
        trees = {"this": str(HERE.parent)}
        if args.against:
            trees = {"base": str(Path(args.against).resolve()), **trees}
        passed = [a for a in sys.argv[1:] if not a.startswith("--against")]
        if args.against and "--against" in sys.argv:
            i = sys.argv.index("--against")
            passed = sys.argv[1:i] + sys.argv[i + 2:]
        if args.profile:
            env = {**os.environ, "BAICAI_HOME": home, "PYTHONPATH": trees["this"]}
            subprocess.run([sys.executable, __file__, "--child", "--events", str(events), *passed], env=env,
                           check=True)
            print(f"profile written to {args.profile}")
            return
        results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for round_no in range(args.rounds):
            order = list(trees.items()) if round_no % 2 == 0 else list(reversed(trees.items()))
            for name, tree in order:
                env = {**os.environ, "BAICAI_HOME": home, "PYTHONPATH": tree}
                out = subprocess.run([sys.executable, __file__, "--child", "--events", str(events), *passed],
                                     env=env, check=True, capture_output=True, text=True).stdout
                figures = json.loads(out.strip().splitlines()[-1])
                shapes = figures.pop("events")
                for key, value in figures.items():
                    results[name].setdefault(key, []).append(value)
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        extra = shapes["long"] - shapes["short"]
        print(f"{args.streams} streams per batch, {args.concurrency} at a time, {args.per_read} event(s) per read, "
              f"short {shapes['short']} / long {shapes['long']} events; CPU ms, median [min–max] of "
              f"{args.rounds} rounds; load {os.getloadavg()[0]:.1f}")
        for name in trees:
            figures = results[name]
            print(f"\n== {name} ({trees[name]})")
            for level in args.levels.split(","):
                short, long_ = figures[f"{level}/short"], figures[f"{level}/long"]
                per_chunk = [(lo - sh) / extra * 1e3 for sh, lo in zip(short, long_)]
                print(f"  {level:8} per stream (17 events) {_summary(short)} ms   per chunk {_summary(per_chunk)} µs")
            if "ttfc/pre-send" in figures:
                print(f"  ttfc     pre-send {_summary(figures['ttfc/pre-send'])} ms   "
                      f"first chunk {_summary(figures['ttfc/first-chunk'])} ms   "
                      f"end {_summary(figures['ttfc/end'])} ms")
        if len(trees) == 2:
            # Each round ran both trees back to back: the ratio within a round cancels most of the load's drift.
            base, this = results["base"], results["this"]
            print("\n== this / base, per round (median [min–max])")
            for level in args.levels.split(","):
                stream = [t / b for t, b in zip(this[f"{level}/short"], base[f"{level}/short"])]
                chunk = [(tl - ts) / (bl - bs) for ts, tl, bs, bl in
                         zip(this[f"{level}/short"], this[f"{level}/long"], base[f"{level}/short"],
                             base[f"{level}/long"])]
                print(f"  {level:8} per stream {_summary(stream)}   per chunk {_summary(chunk)}")


if __name__ == "__main__":
    main()
