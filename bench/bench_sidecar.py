"""What the sidecar costs over a direct request, next to the floor, in one run with interleaved rounds.

    python bench/bench_sidecar.py [--rounds 4] [--requests 200] [--streams 50] [--per-worker 4] [--chunk-delay 0.02]
    python bench/bench_sidecar.py --quick          # 2 rounds of fewer requests: a smoke run
    python bench/bench_sidecar.py --compare REV    # also the sidecar of git revision REV ("sidecar@REV"), same run
    python bench/bench_sidecar.py --latency-only   # non-streamed latency and CPU only (no streams, no writer)
    python bench/bench_sidecar.py --breakdown      # where the difference to the floor goes: the sidecar built up
                                                   # one part at a time (bench/_ladder.py), each rung measured

Processes (each its own, as for a user, so no two share a GIL):
* ``upstream`` — an instant relay stand-in replaying the emulator's own bytes (``bench/_replay.py``): the emulator
  itself costs more CPU per request than the proxy under test and would drown the figures on two cores;
* ``sidecar`` — the real sidecar: token check, Host/Origin guard, the SDK's metered pipeline with the quota gate ON
  ("raise", paid tier, limits raised by a catalogue override in the bench's own BAICAI_HOME so that a run's
  thousands of requests are counted but never refused), the SQLite ledger, token counting, and its default upstream
  client (``http_client="auto"``: asyncio + httptools, ``_direct.py``);
* ``sidecar-aiohttp`` — the same with aiohttp for every upstream request (``http_client="aiohttp"``, the default
  before; the SDK's httpx2 transport, ``"httpx2"``, was slower still);
* ``floor`` — a raw asyncio forwarder (uvloop + httptools, pooled upstream sockets, no framework, no checks, no
  metering): what forwarding alone costs here;
* ``sidecar+writer`` — the sidecar again while a second process writes the same ledger 50 times a second (a script
  using ``Baicai`` next to the sidecar): the window count must stay incremental (``sidecar@REV+writer`` likewise).

Figures, per variant, as the median over rounds with [min–max]:
* added latency p50 / p99 of a non-streamed chat (variant − direct, requests interleaved one by one);
* added time to the first chunk of a stream (p50);
* the proxy's CPU per request (utime + stime from ``/proc/PID/stat`` over the batch, / requests);
* 50 concurrent streams, paced (chunks ``--chunk-delay`` apart, as a model writes) and unpaced, as % of direct;
* peak RSS (VmHWM) of each proxy process.
The machine is shared and noisy: compare variants within a run, never across runs.

``--breakdown`` measures instead a ladder, next to direct, the floor and the sidecar in the same run: ``server``
(uvicorn started as the sidecar is, a minimal ASGI app forwarding with the floor's raw client), ``bare`` (the same
through the sidecar's ``DirectTransport``),
``+ proxy``, ``+ guard``, ``+ metered pipeline`` (no ledger: a stand-in meter), ``+ meter/ledger`` (quota off) and the
sidecar itself (+ the quota gate) — each its own process, built from the product's own classes and configuration
(``bench/_ladder.py`` says how, and where a stand-in is used). Per round, non-streamed requests and then unpaced streams
go to every variant in turn, then the concurrent unpaced streams (``--streams`` × ``--per-worker``) to each; a part's
cost is its rung minus the rung before, paired within a round, printed as the median [min–max] over rounds: CPU per
request and added p50 (non-streamed), CPU per stream, added time to first chunk, concurrent throughput as % of
direct (points). ``--latency-only`` keeps the non-streamed half. No paced or second-writer phases.

CPU: the sum of ``/proc/PID/task/*/schedstat`` run times (nanoseconds) when no thread ended during the batch, else
utime + stime from ``/proc/PID/stat`` (10 ms ticks: ±10 ms over a batch, too coarse for a small rung's 0.1 ms × 200).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

HERE = Path(__file__).resolve().parent
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好，介绍一下白菜。"}]}
KEY = "baicai-bench-paid-key-0000000000000001"
TICK = os.sysconf("SC_CLK_TCK")

_SIDECAR = """
import sys
from baicai_sidecar.app import SidecarConfig
from baicai_sidecar._server import serve
upstream, key, port, client = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
serve(SidecarConfig(upstream=upstream, api_key=key, tier="paid", port=port, quota="raise", http_client=client),
      log_level="warning")
"""

# Counted, never refused: the bench sends far more than an hour's paid budget.
_CATALOG = {"families": {"gpt-3.5": {"limits": {
    "free": {"requests_per_hour": 60, "tokens_per_hour": 10000},
    "paid": {"requests_per_hour": 100_000_000, "tokens_per_hour": None}}}}}


def _compile(tree: Path) -> Path:
    """Byte-compile a source tree's packages before its sidecar starts: with ``PYTHONDONTWRITEBYTECODE`` set (as on
    this machine) a tree without ``__pycache__`` compiles every module at import, which costs time and ~1.8 MB of
    peak RSS, so a ``--compare`` tree's RSS would not be comparable with the checkout's (bench_memory.py does the
    same)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "baicai_sdk"), str(tree / "baicai_sidecar")],
                   check=True, capture_output=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    return tree


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _ticks_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of the whole line)


class _Cpu:
    """A process's CPU time at one moment: per live thread in nanoseconds (schedstat), and in ticks for the whole
    process (which keeps the time of threads that ended)."""

    def __init__(self, pid: int) -> None:
        self.pid = str(pid)
        self.ticks = _ticks_seconds(pid)
        self.threads: dict[str, int] = {}
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                try:
                    self.threads[task.name] = int((task / "schedstat").read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        except OSError:
            self.threads = {}

    def since(self, before: _Cpu) -> float:
        """Seconds of CPU from ``before`` to this moment: exact when every thread of then is still alive (a new one
        counts from its start), else by ticks."""
        if before.threads and self.threads and before.threads.keys() <= self.threads.keys():
            return (sum(self.threads.values()) - sum(before.threads.values())) / 1e9
        return self.ticks - before.ticks

    def off_loop_since(self, before: _Cpu) -> float | None:
        """Seconds of CPU on threads other than the main one (the event loop's): the ledger's checkpoint thread,
        worker threads. None when a thread ended meanwhile."""
        if not (before.threads and self.threads and before.threads.keys() <= self.threads.keys()):
            return None
        main = self.threads.get(self.pid, 0) - before.threads.get(self.pid, 0)
        return (sum(self.threads.values()) - sum(before.threads.values())) / 1e9 - main / 1e9



# --breakdown: (variant = rung of bench/_ladder.py, or the bench's own sidecar; its label; what it adds to the one above)
LADDER = [
    ("server", "uvicorn + raw client", "uvicorn as the sidecar runs it, a minimal ASGI app with the floor's client"),
    ("bare", "DirectTransport (bare)", "the sidecar's upstream client and httpx2 objects in place of the raw client"),
    ("proxy", "+ proxy", "header allow-list, key, retries, error rewrite, disconnect watcher, console line"),
    ("guard", "+ guard", "Host/Origin/path, the token check, the body read and parsed once"),
    ("pipeline", "+ metered pipeline", "no ledger: describe + prompt count, classify the answer, settle hand-over"),
    ("ledger", "+ meter/ledger, quota off", "Meter.reserve (window view, row INSERT, COMMIT) and the settle's UPDATE"),
    ("sidecar", "+ quota gate = sidecar", "the gate's enforcing decision: the sidecar as it runs"),
]


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix="baicai-bench-"))
        (self.home / "config").mkdir()
        (self.home / "config" / "catalog.json").write_text(json.dumps(_CATALOG))
        self.env = {**os.environ, "BAICAI_HOME": str(self.home), "NO_PROXY": "127.0.0.1,localhost",
                    "BAICAI_SECRET_STORE": "file"}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            self.env.pop(name, None)
        os.environ.update({"BAICAI_HOME": str(self.home), "NO_PROXY": "127.0.0.1,localhost"})
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.urls: dict[str, str] = {}

    def _spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        # Run from the bench's home: ``python -c`` puts the current directory first on sys.path, where a checkout
        # would shadow the revision a --compare variant imports from PYTHONPATH.
        proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True, env=env or self.env,
                                cwd=self.home)
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        upstream = self._spawn("upstream", [str(HERE / "_replay.py"), "upstream"])
        assert upstream.stdout is not None
        self.upstream_origin = f"http://127.0.0.1:{upstream.stdout.readline().strip()}"
        self.urls["direct"] = self.upstream_origin + "/v1"
        floor = self._spawn("floor", [str(HERE / "_replay.py"), "floor", self.upstream_origin.rsplit(":", 1)[1], KEY])
        assert floor.stdout is not None
        self.urls["floor"] = f"http://127.0.0.1:{floor.stdout.readline().strip()}/v1"
        sidecars = [("sidecar", "auto", None)]
        if not self.args.breakdown:
            sidecars += [("sidecar-aiohttp", "aiohttp", None)]
        sidecars += [(f"sidecar@{rev}", "auto", rev) for rev in self.args.compare]
        rungs = [(name, name) for name, _label, _what in LADDER if name != "sidecar"] if self.args.breakdown else []
        extra: list[str] = []
        if self.args.breakdown and self.args.own_server:
            rungs += [("own-raw", "own-raw"), ("own-sidecar", "own-sidecar")]
            extra = [str(self._own_server(self.args.own_server))]
        for name, rung in rungs:
            port = _free_port()
            self._spawn(name, [str(HERE / "_ladder.py"), rung, self.urls["direct"], KEY, str(port),
                               str(self.home / f"ledger-{rung}.sqlite"), *extra])
            self.urls[name] = f"http://127.0.0.1:{port}/v1"
        _compile(HERE.parent)
        for name, client, rev in sidecars:
            port = _free_port()
            env = None
            if rev is not None:  # that revision's packages first on the path (the same BAICAI_HOME and ledger)
                env = {**self.env, "PYTHONPATH": str(_compile(self._tree(rev)))}
            self._spawn(name, ["-c", _SIDECAR, self.urls["direct"], KEY, str(port), client], env=env)
            self.urls[name] = f"http://127.0.0.1:{port}/v1"
        from baicai_sidecar._tokens import TokenStore

        self.token = TokenStore().issue("bench")
        for name in [name for name, _client, _rev in sidecars] + [name for name, _rung in rungs]:
            self._wait_ready(self.urls[name])

    def _tree(self, rev: str) -> Path:
        """The packages of git revision ``rev``, extracted under the bench's home."""
        target = self.home / "trees" / rev.replace("/", "_")
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", rev, "baicai_sdk", "baicai_sidecar"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return target

    def _own_server(self, rev: str) -> Path:
        """The HTTP server of the prototype at ``rev`` (``baicai_sidecar/_http.py``, branch ``H-raw-server``) as a
        module of its own under the bench's home, importing the checked-out sidecar's ``_asgi`` and ``_limits``."""
        source = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{rev}:baicai_sidecar/_http.py"],
                                check=True, capture_output=True, text=True).stdout
        source = source.replace("from ._asgi import", "from baicai_sidecar._asgi import").replace(
            "from ._limits import ACCEPT_BURST, ServerLimits, note, raw_answer",
            "from baicai_sidecar._limits import ACCEPT_BURST, ServerLimits, note, _raw_answer as raw_answer")
        folder = self.home / "own-server"
        folder.mkdir()
        (folder / "own_http.py").write_text(source)
        return folder

    def _wait_ready(self, base: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx2.get(base[:-3] + "/sidecar/status", headers=self.auth("sidecar")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{base} did not start")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(timeout=10)
        shutil.rmtree(self.home, ignore_errors=True)

    def pid(self, variant: str) -> int | None:
        proc = self.procs.get(variant.split("+")[0])
        return None if variant == "direct" or proc is None else proc.pid

    def auth(self, variant: str) -> dict[str, str]:
        return {"authorization": f"Bearer {KEY if variant in ('direct', 'floor') else self.token}"}

    def url(self, variant: str) -> str:
        return self.urls[variant.split("+")[0]] + "/chat/completions"

    def set_delay(self, seconds: float) -> None:
        httpx2.post(self.upstream_origin + "/_replay/delay", content=str(seconds)).raise_for_status()

    # -- phases --------------------------------------------------------------------------------------------------
    def latency(self, variants: list[str], n: int, *, stream: bool = False) -> dict[str, dict[str, float]]:
        """One request per variant in turn, n times: every variant sees the same moments of machine noise."""
        timings: dict[str, list[float]] = {v: [] for v in variants}
        clients = {v: httpx2.Client(timeout=30) for v in variants}
        body = {**CHAT, "stream": True} if stream else CHAT
        try:
            for v in variants:  # warm the connections and the sidecar's caches
                for _ in range(5):
                    clients[v].post(self.url(v), json=body, headers=self.auth(v)).raise_for_status()
            cpu0 = {v: _Cpu(p) for v in variants if (p := self.pid(v))}
            for i in range(n):
                order = variants[i % len(variants):] + variants[:i % len(variants)]
                for v in order:
                    t0 = time.perf_counter()
                    if stream:
                        with clients[v].stream("POST", self.url(v), json=body, headers=self.auth(v)) as r:
                            first = None
                            for _chunk in r.iter_raw():
                                if first is None:
                                    first = time.perf_counter() - t0
                        timings[v].append(first or 0.0)
                    else:
                        r = clients[v].post(self.url(v), json=body, headers=self.auth(v))
                        timings[v].append(time.perf_counter() - t0)
                        r.raise_for_status()
            cpu1 = {v: _Cpu(p) for v in variants if (p := self.pid(v))}
        finally:
            for c in clients.values():
                c.close()
        d = timings["direct"]
        out: dict[str, dict[str, float]] = {}
        for v in variants:
            t = timings[v]
            out[v] = {"p50_ms": _pct(t, .5) * 1e3, "p99_ms": _pct(t, .99) * 1e3,
                      "added_p50_ms": (_pct(t, .5) - _pct(d, .5)) * 1e3,
                      "added_p99_ms": (_pct(t, .99) - _pct(d, .99)) * 1e3}
            if v in cpu0:
                out[v]["cpu_ms_per_request"] = cpu1[v].since(cpu0[v]) / n * 1e3
                off_loop = cpu1[v].off_loop_since(cpu0[v])
                if off_loop is not None:
                    out[v]["cpu_off_loop_ms_per_request"] = off_loop / n * 1e3
        return out

    async def _streams(self, variant: str) -> float:
        limits = httpx2.Limits(max_connections=self.args.streams + 5)
        async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
            async def worker() -> None:
                for _ in range(self.args.per_worker):
                    async with client.stream("POST", self.url(variant), json={**CHAT, "stream": True},
                                             headers=self.auth(variant)) as r:
                        r.raise_for_status()
                        async for _chunk in r.aiter_raw():
                            pass

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(self.args.streams)))
            return float(self.args.streams * self.args.per_worker / (time.perf_counter() - t0))

    def throughput(self, variants: list[str], delay: float) -> dict[str, float]:
        self.set_delay(delay)
        try:
            rates = {v: asyncio.run(self._streams(v)) for v in random.sample(variants, len(variants))}
        finally:
            self.set_delay(0.0)
        return {v: rates[v] / rates["direct"] for v in variants}

    def with_writer(self, n: int) -> dict[str, dict[str, float]]:
        writer = subprocess.Popen([sys.executable, str(HERE / "_replay.py"), "writer"], stdout=subprocess.PIPE,
                                  text=True, env=self.env)
        try:
            assert writer.stdout is not None
            writer.stdout.readline()
            result = self.latency(["direct", "sidecar", *(f"sidecar@{rev}" for rev in self.args.compare)], n)
        finally:
            writer.terminate()
            writer.wait(timeout=10)
        return {"direct": result["direct"], **{f"{v}+writer": result[v] for v in result if v != "direct"}}


def _summary(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per variant and figure: (median, min, max) over the rounds."""
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for variant in rounds[0]:
        for figure in rounds[0][variant]:
            values = [r[variant][figure] for r in rounds if figure in r.get(variant, {})]
            out.setdefault(variant, {})[figure] = (statistics.median(values), min(values), max(values))
    return out


def _fmt(triple: tuple[float, float, float] | None, spec: str = "+.2f", scale: float = 1.0) -> str:
    if triple is None:
        return "-"
    m, lo, hi = (x * scale for x in triple)
    return f"{m:{spec}} [{lo:{spec[1:] if spec.startswith('+') else spec}}–{hi:{spec[1:] if spec.startswith('+') else spec}}]"


def _paired(rounds: list[dict[str, dict[str, float]]], figure: str, upper: str, lower: str
            ) -> tuple[float, float, float] | None:
    """``upper − lower`` of one figure within each round: (median, min, max) over the rounds."""
    diffs = [r[upper][figure] - r[lower][figure] for r in rounds
             if figure in r.get(upper, {}) and figure in r.get(lower, {})]
    return (statistics.median(diffs), min(diffs), max(diffs)) if diffs else None


def _markdown(result: dict[str, Any], rungs: list[str]) -> None:
    """The ladder as the Markdown table of docs/internals.md's issue-17 section."""
    def cell(triple: tuple[float, float, float] | None, sign: bool = True, scale: float = 1.0, spec: str = ".2f") -> str:
        if not triple:
            return "–"
        m, lo, hi = (x * scale for x in triple)
        return f"{m:{'+' if sign else ''}{spec}} [{lo:{spec}}–{hi:{spec}}]".replace("-", "−")

    lat, first, parts, total = result["latency"], result["streams"], result["parts"], result["sidecar_minus_floor"]
    concurrent = result["unpaced"]
    labels = {"floor": "floor: a raw asyncio forwarder", **{name: label for name, label, _what in LADDER}}
    print("| rung | CPU ms / request | its part | added p50 ms | its part | added p99 ms | CPU ms / stream | its part "
          "| added TTFC p50 ms | concurrent unpaced % of direct |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in ["floor", *rungs]:
        L, S, P = lat[v], first.get(v, {}), parts.get(v, {})
        print(f"| {labels[v]} | {cell(L.get('cpu_ms_per_request'), False)} | {cell(P.get('cpu_ms_per_request'))} "
              f"| {cell(L.get('added_p50_ms'))} | {cell(P.get('added_p50_ms'))} | {cell(L.get('added_p99_ms'))} "
              f"| {cell(S.get('cpu_ms_per_request'), False)} | {cell(P.get('cpu_ms_per_stream'))} "
              f"| {cell(S.get('added_p50_ms'))} | {cell(concurrent.get(v, {}).get('ratio'), False, 100, '.0f')} |")
    print(f"| **sidecar − floor** | | **{cell(total['cpu_ms_per_request'])}** | | **{cell(total['added_p50_ms'])}** | | "
          f"| **{cell(total['cpu_ms_per_stream'])}** | | |")


def breakdown(args: argparse.Namespace) -> int:
    """The ladder of ``--breakdown``: direct, the floor, then the sidecar's rungs (``LADDER``) up to the sidecar."""
    rungs = [name for name, _label, _what in LADDER]
    own = ["own-raw", "own-sidecar"] if args.own_server else []
    variants = ["direct", "floor", *rungs, *own]
    load_before = os.getloadavg()[0]
    bench = Bench(args)
    bench.start()
    plain: list[dict[str, dict[str, float]]] = []
    streams: list[dict[str, dict[str, float]]] = []
    unpaced: list[dict[str, dict[str, float]]] = []
    try:
        for _ in range(args.rounds):
            plain.append(bench.latency(variants, args.requests))
            if args.latency_only:
                continue
            streams.append(bench.latency(variants, max(20, args.requests // 4), stream=True))
            unpaced.append({v: {"ratio": r} for v, r in bench.throughput(variants, 0.0).items()})
        rss = {v: _status(bench.procs[v].pid, "VmHWM") for v in variants[1:]}
    finally:
        bench.stop()
    lat, first = _summary(plain), _summary(streams) if streams else {}
    concurrent = _summary(unpaced) if unpaced else {}
    parts: dict[str, dict[str, tuple[float, float, float] | None]] = {}
    for lower, upper in zip(["floor", *rungs], rungs):
        parts[upper] = {"cpu_ms_per_request": _paired(plain, "cpu_ms_per_request", upper, lower),
                        "added_p50_ms": _paired(plain, "added_p50_ms", upper, lower),
                        "cpu_ms_per_stream": _paired(streams, "cpu_ms_per_request", upper, lower),
                        "added_ttfc_p50_ms": _paired(streams, "added_p50_ms", upper, lower),
                        "unpaced_ratio": _paired(unpaced, "ratio", upper, lower)}
    total = {figure: _paired(rounds, key, "sidecar", base) for figure, rounds, key, base in (
        ("cpu_ms_per_request", plain, "cpu_ms_per_request", "floor"), ("added_p50_ms", plain, "added_p50_ms", "floor"),
        ("cpu_ms_per_stream", streams, "cpu_ms_per_request", "floor"),
        ("added_ttfc_p50_ms", streams, "added_p50_ms", "floor"), ("unpaced_ratio", unpaced, "ratio", "floor"))}
    if own:  # what uvicorn costs against the prototype's server, under the same two apps
        parts["own-raw"] = {"cpu_ms_per_request": _paired(plain, "cpu_ms_per_request", "server", "own-raw"),
                            "added_p50_ms": _paired(plain, "added_p50_ms", "server", "own-raw")}
        parts["own-sidecar"] = {"cpu_ms_per_request": _paired(plain, "cpu_ms_per_request", "sidecar", "own-sidecar"),
                                "added_p50_ms": _paired(plain, "added_p50_ms", "sidecar", "own-sidecar"),
                                "cpu_ms_per_stream": _paired(streams, "cpu_ms_per_request", "sidecar", "own-sidecar")}
    result = {"latency": lat, "streams": first, "unpaced": concurrent, "parts": parts, "sidecar_minus_floor": total, "rss_mb": rss,
              "rounds": args.rounds, "requests": args.requests,
              "load_before_after": [load_before, os.getloadavg()[0]], "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if args.markdown:
        _markdown(result, rungs)
        return 0
    n_streams = max(20, args.requests // 4)
    print(f"Breakdown: {args.rounds} rounds; per round {args.requests} non-streamed requests, "
          + ("" if args.latency_only else f"then {n_streams} streams one at a time, then {args.streams} concurrent "
             f"streams × {args.per_worker}, unpaced, ")
          + "to each variant in turn. A part = its rung − the rung above, paired within a round. Median [min–max] "
          "over rounds; CPU is the proxy process's.")
    labels = {"floor": "floor (raw asyncio)", **{name: label for name, label, _what in LADDER}}

    def table(columns: list[str], rows: dict[str, list[str]], extra: dict[str, str], total: list[str]) -> None:
        print(f"{'':<26}" + "".join(f"{c:>21}" for c in columns) + extra.get("", ""))
        for v in ["floor", *rungs]:
            print(f"{labels[v]:<26}" + "".join(f"{c:>21}" for c in rows[v]) + extra.get(v, ""))
        print(f"{'sidecar − floor':<26}" + "".join(f"{c:>21}" for c in total))

    def off_loop(v: str) -> str:
        found = lat.get(v, {}).get("cpu_off_loop_ms_per_request")
        return f"{found[0] if found else float('nan'):>10.3f}{rss[v]:>8.0f}"

    print("\nNon-streamed chat:")
    table(["CPU ms/request", "part", "added p50 ms", "part", "added p99 ms"],
          {v: [_fmt(lat[v].get("cpu_ms_per_request"), ".2f"), _fmt(parts.get(v, {}).get("cpu_ms_per_request")),
               _fmt(lat[v].get("added_p50_ms")), _fmt(parts.get(v, {}).get("added_p50_ms")),
               _fmt(lat[v].get("added_p99_ms"))] for v in ["floor", *rungs]},
          {"": f"{'off-loop':>10}{'RSS MB':>8}", **{v: off_loop(v) for v in ["floor", *rungs]}},
          ["", _fmt(total["cpu_ms_per_request"]), "", _fmt(total["added_p50_ms"]), ""])
    print("off-loop: CPU ms per request on threads other than the event loop's (the ledger's checkpoint thread, "
          "workers), median; RSS: peak, MB.")
    if first:
        print("\nStreams (the replay's 17-event chat stream, unpaced):")
        table(["CPU ms/stream", "part", "added TTFC p50 ms", "part", "concurrent % direct", "part (points)"],
              {v: [_fmt(first[v].get("cpu_ms_per_request"), ".2f"), _fmt(parts.get(v, {}).get("cpu_ms_per_stream")),
                   _fmt(first[v].get("added_p50_ms")), _fmt(parts.get(v, {}).get("added_ttfc_p50_ms")),
                   _fmt(concurrent.get(v, {}).get("ratio"), ".0f", 100),
                   _fmt(parts.get(v, {}).get("unpaced_ratio"), "+.0f", 100)] for v in ["floor", *rungs]},
              {}, [_fmt(total["cpu_ms_per_stream"]), "", _fmt(total["added_ttfc_p50_ms"]), "", "",
                   _fmt(total["unpaced_ratio"], "+.0f", 100)])
    if own:
        print(f"\nuvicorn against the own HTTP server of {args.own_server} (bench/_ladder.py own-*), same apps, "
              "uvicorn − own:")
        for v, app_name in (("own-raw", "raw forwarder"), ("own-sidecar", "the sidecar's app")):
            P = parts[v]
            print(f"  {app_name:<20} own server CPU {_fmt(lat[v].get('cpu_ms_per_request'), '.2f')} ms/request, "
                  f"uvicorn costs {_fmt(P.get('cpu_ms_per_request'))} ms CPU, {_fmt(P.get('added_p50_ms'))} ms p50"
                  + (f", {_fmt(P['cpu_ms_per_stream'])} ms CPU/stream" if P.get("cpu_ms_per_stream") else ""))
    print("Each part (bench/_ladder.py):")
    for _name, label, what in LADDER:
        print(f"  {label}: {what}")
    before, after = result["load_before_after"]
    print(f"direct p50 {lat['direct']['p50_ms'][0]:.2f} ms. (machine: {os.cpu_count()} CPUs, load average "
          f"{before:.1f} before, {after:.1f} after)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="non-streamed requests per variant per round")
    parser.add_argument("--streams", type=int, default=50, help="concurrent streams")
    parser.add_argument("--per-worker", type=int, default=4, help="streams each concurrent worker runs in turn")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="pause between chunks, paced runs (s)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 60 requests, 20 streams")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--markdown", action="store_true", help="with --breakdown: the ladder as a Markdown table")
    parser.add_argument("--compare", action="append", default=[], metavar="REV",
                        help="also run the sidecar of this git revision, as variant sidecar@REV (repeatable)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the non-streamed latency and CPU (no streams, no second writer)")
    parser.add_argument("--breakdown", action="store_true",
                        help="the sidecar built up part by part (bench/_ladder.py): each part's CPU and latency")
    parser.add_argument("--own-server", metavar="REV", nargs="?", const="H-raw-server",
                        help="with --breakdown: also the HTTP server prototyped at REV (default H-raw-server) in place "
                             "of uvicorn, under the raw forwarder and under the sidecar's app")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests, args.streams, args.per_worker = 2, 60, 20, 2
    if args.breakdown:
        return breakdown(args)
    variants = ["direct", "floor", "sidecar", *(f"sidecar@{rev}" for rev in args.compare), "sidecar-aiohttp"]
    load_before = os.getloadavg()[0]
    bench = Bench(args)
    bench.start()
    lat: list[dict[str, dict[str, float]]] = []
    ttfc: list[dict[str, dict[str, float]]] = []
    paced: list[dict[str, dict[str, float]]] = []
    unpaced: list[dict[str, dict[str, float]]] = []
    try:
        for _ in range(args.rounds):
            if args.latency_only:
                lat.append(bench.latency(variants, args.requests))
                continue
            lat.append({**bench.latency(variants, args.requests), **bench.with_writer(args.requests // 2)})
            ttfc.append(bench.latency(variants, max(20, args.requests // 4), stream=True))
            paced.append({v: {"ratio": r} for v, r in bench.throughput(variants, args.chunk_delay).items()})
            unpaced.append({v: {"ratio": r} for v, r in bench.throughput(variants, 0.0).items()})
        rss = {v: {"peak_rss_mb": _status(bench.procs[v].pid, "VmHWM")} for v in variants[1:]}
    finally:
        bench.stop()
    result = {"latency": _summary(lat), "first_chunk": _summary(ttfc) if ttfc else {},
              "paced": _summary(paced) if paced else {}, "unpaced": _summary(unpaced) if unpaced else {},
              "rss": rss, "rounds": args.rounds,
              "load_before_after": [load_before, os.getloadavg()[0]], "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.rounds} rounds, {args.requests} non-streamed requests per variant per round, interleaved; "
          f"{args.streams} concurrent streams × {args.per_worker}. Median [min–max] over rounds.")
    print(f"{'variant':<22}{'added p50 ms':>22}{'added p99 ms':>22}{'CPU ms/request':>22}{'added TTFC p50':>22}"
          f"{'paced % direct':>20}{'unpaced % direct':>20}{'peak RSS MB':>13}")
    for v in ["direct", "floor", "sidecar", *(f"sidecar@{rev}" for rev in args.compare), "sidecar+writer",
              *(f"sidecar@{rev}+writer" for rev in args.compare), "sidecar-aiohttp"]:
        L = result["latency"].get(v, {})
        T = result["first_chunk"].get(v, {})
        P = result["paced"].get(v, {})
        U = result["unpaced"].get(v, {})
        print(f"{v:<22}{_fmt(L.get('added_p50_ms')):>22}{_fmt(L.get('added_p99_ms')):>22}"
              f"{_fmt(L.get('cpu_ms_per_request'), '.2f'):>22}{_fmt(T.get('added_p50_ms')):>22}"
              f"{_fmt(P.get('ratio'), '.0f', 100):>20}{_fmt(U.get('ratio'), '.0f', 100):>20}"
              f"{rss.get(v.split('+')[0], {}).get('peak_rss_mb', float('nan')):>13.0f}")
    print(f"direct p50 {result['latency']['direct']['p50_ms'][0]:.2f} ms. Targets (issue 17): added p50 ≤ 1.0 ms, "
          "p99 ≤ 3 ms, CPU ≤ 1 ms/request, paced ≥ 98 %, unpaced ≥ 90 %, RSS ≤ 60 MB.")
    before, after = result["load_before_after"]
    print(f"(machine: {os.cpu_count()} CPUs, load average {before:.1f} before, {after:.1f} after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
