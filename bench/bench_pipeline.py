"""The sidecar's own CPU per non-streamed chat, in-process: its ASGI app driven without a server.

    python bench/bench_pipeline.py [--rounds 5] [--requests 2000] [--upstream canned|replay]
    python bench/bench_pipeline.py --compare REV [--compare REV2 …]   # the code of git revisions, interleaved
    python bench/bench_pipeline.py --profile out.prof                 # one worker under cProfile

What runs per request is everything the sidecar does between uvicorn and the upstream socket: the guard (Host,
token, body parse), the proxy (headers, the upstream request, retries, the answer's relay), and the SDK's metered
pipeline with the quota gate on ("raise", paid tier, limits raised by a catalogue override as in
``bench_sidecar.py``, the SQLite ledger in a temporary ``BAICAI_HOME``). The upstream is either ``canned`` — a
transport that answers with the emulator's bytes the way ``DirectTransport`` hands over a complete answer (no
socket: the app's own cost alone) — or ``replay``: ``DirectTransport`` against ``bench/_replay.py upstream``.

Each variant is a worker process (its own interpreter, ledger and tokenizer) fed rounds in turn, A B A B …; a
round is ``--requests`` requests one after another; the figure is the worker's ``time.process_time`` per request
(and its wall time) over the round, and the median time from a request's start to the last byte of its answer
handed to the server (``answer_p50``: what the app waits for; work after it, like a deferred ledger settle, is not
in it). Printed: median [min–max] over rounds. ``--compare REV`` runs the sidecar of
that git revision (``git archive`` into a temporary folder, put first on the worker's ``sys.path``) next to the
working tree's.
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
ROOT = HERE.parent
KEY = "baicai-bench-paid-key-0000000000000001"
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好，介绍一下白菜。"}]}
_CATALOG = {"families": {"gpt-3.5": {"limits": {
    "free": {"requests_per_hour": 60, "tokens_per_hour": 10000},
    "paid": {"requests_per_hour": 100_000_000, "tokens_per_hour": None}}}}}
PORT = 8765


# -- the worker: one sidecar app in this process ----------------------------------------------------------------
class _Canned:
    """An upstream transport answering every request with the same bytes, as ``DirectTransport`` hands over an
    answer that came whole with its head (headers as raw byte pairs, content already read)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def handle_async_request(self, request: Any) -> Any:
        request.content  # noqa: B018 - as DirectTransport, which writes it
        return _read_response(request, self.headers, self.body)

    async def aclose(self) -> None:
        pass


def _read_response(request: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    """As ``DirectTransport`` builds a complete answer, in the code under test (older revisions: the constructor)."""
    import httpx2

    extensions = {"http_version": b"HTTP/1.1", "reason_phrase": b"OK"}
    try:
        from baicai_sdk.integration import read_response
    except ImportError:
        return httpx2.Response(200, headers=headers, content=body, request=request, extensions=extensions)
    return read_response(200, headers, body, request=request, extensions=extensions)


def _canned_answer() -> bytes:
    """The emulator's own non-streamed answer to :data:`CHAT` (captured once, cached next to the bench)."""
    cache = Path(tempfile.gettempdir()) / "baicai-bench-pipeline-answer.json"
    if cache.exists():
        return cache.read_bytes()
    sys.path.insert(0, str(HERE))
    from _replay import capture  # type: ignore[import-not-found]

    plain, _ = capture()
    cache.write_bytes(plain)
    return plain


async def _worker(upstream: str) -> None:
    import uvloop  # noqa: F401 - the sidecar runs on it

    import baicai_sdk
    from baicai_sidecar._tokens import TokenStore
    from baicai_sidecar.app import SidecarConfig, create_app

    sys.stderr.write(f"worker {os.getpid()}: {Path(baicai_sdk.__file__).parent.parent}\n")
    transport: Any = None
    upstream_url = "http://127.0.0.1:1/v1"
    if upstream == "canned":
        from baicai_sdk import AsyncMeteredTransport

        # As the proxy's own ``_metered(config)``, with the canned answer below it.
        transport = AsyncMeteredTransport(_Canned(_canned_answer()), source="sidecar", quota="raise", tier="paid")
    else:
        upstream_url = upstream
    token = TokenStore().issue("bench")
    app = create_app(SidecarConfig(upstream=upstream_url, api_key=KEY, tier="paid", port=PORT, quota="raise",
                                   transport=transport))
    startup = iter([{"type": "lifespan.startup"}])
    started = asyncio.get_running_loop().create_future()

    async def lifespan_receive() -> dict[str, Any]:
        try:
            return next(startup)
        except StopIteration:
            await started
            return {"type": "lifespan.shutdown"}

    ready = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.failed":
            raise SystemExit(message["message"])
        ready.set()

    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, lifespan_receive, lifespan_send))
    await ready.wait()  # the upstream client open, the tokenizer loaded

    body = json.dumps(CHAT, ensure_ascii=False).encode()
    headers = [(b"host", b"127.0.0.1:%d" % PORT), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
               (b"connection", b"keep-alive"), (b"user-agent", b"python-httpx2/1.0"),
               (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {token}".encode())]
    never = asyncio.get_running_loop().create_future()  # the app never leaves

    async def one() -> int:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "server": ("127.0.0.1", PORT), "client": ("127.0.0.1", 50000), "scheme": "http",
                 "method": "POST", "root_path": "", "path": "/v1/chat/completions",
                 "raw_path": b"/v1/chat/completions", "query_string": b"", "headers": headers}
        sent = False
        status = [0]
        started = time.perf_counter()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await never
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif not message.get("more_body"):
                answered.append(time.perf_counter() - started)

        await app(scope, receive, send)
        return status[0]

    answered: list[float] = []

    for _ in range(50):  # warm: connections, caches, the ledger's view
        status = await one()
        if status != 200:
            raise SystemExit(f"warm-up request answered {status}")
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        n = int(line)
        answered.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            await one()
        c1, t1 = time.process_time(), time.perf_counter()
        print(json.dumps({"cpu_ms": (c1 - c0) / n * 1e3, "wall_ms": (t1 - t0) / n * 1e3,
                          "answer_p50_ms": statistics.median(answered) * 1e3}), flush=True)
    started.set_result(None)
    await lifespan


def worker_main(upstream: str, profile: str | None) -> None:
    import uvloop

    if profile:
        import cProfile

        cProfile.runctx("uvloop.run(_worker(upstream))", globals(), {"uvloop": uvloop, "_worker": _worker,
                                                                     "upstream": upstream}, profile)
    else:
        uvloop.run(_worker(upstream))


# -- the driver ------------------------------------------------------------------------------------------------------
def _tree(rev: str, into: Path) -> Path:
    """The sources of git revision ``rev`` (the packages only), for a worker's ``sys.path``."""
    target = into / rev.replace("/", "_")
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "baicai_sdk", "baicai_sidecar"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant per round")
    parser.add_argument("--upstream", choices=("canned", "replay"), default="canned")
    parser.add_argument("--compare", action="append", default=[], metavar="REV",
                        help="also run the sidecar of this git revision (repeatable)")
    parser.add_argument("--profile", metavar="FILE", help="run one worker under cProfile, writing FILE")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, os.environ.get("BAICAI_BENCH_PROFILE"))
        return 0

    home = Path(tempfile.mkdtemp(prefix="baicai-bench-pipeline-"))
    trees = Path(tempfile.mkdtemp(prefix="baicai-bench-trees-"))
    replay = None
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        upstream = "canned"
        if args.upstream == "replay":
            replay = subprocess.Popen([sys.executable, str(HERE / "_replay.py"), "upstream"], stdout=subprocess.PIPE,
                                      text=True)
            assert replay.stdout is not None
            upstream = f"http://127.0.0.1:{replay.stdout.readline().strip()}/v1"
        else:
            _canned_answer()
        variants = {"working tree": None, **{rev: _tree(rev, trees) for rev in args.compare}}
        for name, tree in variants.items():
            variant_home = home / str(len(procs))
            (variant_home / "config").mkdir(parents=True)
            (variant_home / "config" / "catalog.json").write_text(json.dumps(_CATALOG))
            env = {**os.environ, "BAICAI_HOME": str(variant_home), "BAICAI_SECRET_STORE": "file",
                   "NO_PROXY": "127.0.0.1,localhost"}
            for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
                env.pop(proxy, None)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree) if tree else str(ROOT),
                                                              env.get("PYTHONPATH")]))
            if args.profile:
                env["BAICAI_BENCH_PROFILE"] = args.profile
            procs[name] = subprocess.Popen([sys.executable, __file__, "--worker", upstream], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True, env=env)
            if args.profile:
                break
        for proc in procs.values():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("a worker did not start")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in procs}
        names = list(procs)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                proc = procs[name]
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{args.requests}\n")
                proc.stdin.flush()
                results[name].append(json.loads(proc.stdout.readline()))
        print(f"{args.rounds} rounds × {args.requests} non-streamed chats per variant, upstream {args.upstream}, "
              f"load {os.getloadavg()[0]:.1f}; median [min–max] over rounds, ms per request")
        for name, rounds in results.items():
            line = []
            for figure in ("cpu_ms", "wall_ms", "answer_p50_ms"):
                values = [r[figure] for r in rounds]
                line.append(f"{figure[:-3]} {statistics.median(values):.3f} [{min(values):.3f}–{max(values):.3f}]")
            if name != names[0]:
                # Paired by round (both ran within seconds of each other): steadier than the medians on a busy machine.
                for figure in ("cpu_ms", "answer_p50_ms"):
                    ratios = [r[figure] / base[figure] for r, base in zip(rounds, results[names[0]])]
                    line.append(f"{figure[:-3]} vs {names[0]} ×{statistics.median(ratios):.3f} "
                                f"[{min(ratios):.3f}–{max(ratios):.3f}]")
            print(f"  {name:<16} " + "   ".join(line))
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if replay is not None:
            replay.terminate()
            replay.wait(timeout=10)
        import shutil

        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(trees, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
