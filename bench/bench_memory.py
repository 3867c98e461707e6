"""Where the sidecar's memory goes: its RSS and peak RSS (VmHWM) at each stage of a run, as the bench starts it.

    python bench/bench_memory.py                       # this checkout
    python bench/bench_memory.py --tree OLD=/tmp/old   # also a copy of another commit (git archive), same run

Stages, read from ``/proc/PID/status`` of the sidecar process (started exactly as ``bench_sidecar.py`` does: quota
gate on, ledger on, the default upstream client, against the instant upstream of ``_replay.py``):
* ``ready`` — imports done, server listening, ``/sidecar/status`` answered (``ready s``: seconds from the start);
* ``1st chat`` — after one non-streamed chat (the tokenizer is loaded by then);
* ``requests`` — after ``--requests`` non-streamed chats;
* ``streams 1``, ``streams 2`` — after each of two bursts of ``--streams`` concurrent streams (paced, as
  ``bench_sidecar.py``'s paced phase): what a stream costs while it runs, and whether anything stays after it.
VmHWM is the process's peak: what was allocated and freed (the tokenizer's load) counts.
Also, in a fresh interpreter each: RSS after ``import`` of the sidecar's modules, and the modules it holds.
Trees are measured interleaved over ``--rounds``; figures are medians [min–max]. The machine is shared: compare
trees within a run, never across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_sidecar import _CATALOG, _SIDECAR, CHAT, KEY, _free_port, _status  # noqa: E402

_IMPORT_PROBE = """
import sys, json, time
t0 = time.perf_counter()
from baicai_sidecar.app import SidecarConfig
from baicai_sidecar._server import serve
seconds = time.perf_counter() - t0
status = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("VmRSS", "VmHWM")))
import baicai_sdk
print(json.dumps({"file": baicai_sdk.__file__, "seconds": seconds, "rss": int(status["VmRSS"].split()[0]) / 1024, "hwm": int(status["VmHWM"].split()[0]) / 1024,
                  "modules": len(sys.modules), "mods": sorted(sys.modules)}))
"""

WATCHED = ("openai", "tiktoken", "starlette", "aiohttp", "numpy", "pydantic", "uvicorn", "uvloop", "httptools",
           "anyio", "sqlite3", "psutil", "keyring", "truststore", "httpx2", "platformdirs", "filelock")


def _env(home: Path, tree: str) -> dict[str, str]:
    env = {**os.environ, "BAICAI_HOME": str(home), "NO_PROXY": "127.0.0.1,localhost", "BAICAI_SECRET_STORE": "file"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(name, None)
    env["PYTHONPATH"] = tree  # before the installed (editable) checkout; the processes run in BAICAI_HOME, so the
    return env                # current directory shadows no tree


def _mb(pid: int) -> tuple[float, float]:
    return _status(pid, "VmRSS"), _status(pid, "VmHWM")


async def _streams(url: str, headers: dict[str, str], n: int) -> None:
    async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=n + 5)) as client:
        async def one() -> None:
            async with client.stream("POST", url, json={**CHAT, "stream": True}, headers=headers) as r:
                r.raise_for_status()
                async for _ in r.aiter_raw():
                    pass

        await asyncio.gather(*(one() for _ in range(n)))


def run_once(tree: str, upstream: str, home: Path, token: str, args: argparse.Namespace) -> dict[str, float]:
    env = _env(home, tree)
    probe = json.loads(subprocess.run([sys.executable, "-c", _IMPORT_PROBE], env=env, cwd=home,
                                      capture_output=True, text=True, check=True).stdout)
    if not probe["file"].startswith(tree):
        raise SystemExit(f"{tree}: imported {probe['file']} instead")
    out: dict[str, float] = {"import s": probe["seconds"], "import rss": probe["rss"],
                             "import modules": probe["modules"]}
    for name in WATCHED:
        out[f"imports {name}"] = float(name in probe["mods"])
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _SIDECAR, upstream + "/v1", KEY, str(port), "auto"], env=env,
                            cwd=home)
    base = f"http://127.0.0.1:{port}"
    headers = {"authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 30
        with httpx2.Client(timeout=30) as client:
            while True:
                try:
                    if client.get(base + "/sidecar/status", headers=headers).status_code == 200:
                        break
                except httpx2.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
            out["ready s"] = time.perf_counter() - started
            out["ready rss"], out["ready hwm"] = _mb(proc.pid)
            client.post(base + "/v1/chat/completions", json=CHAT, headers=headers).raise_for_status()
            out["1st chat rss"], out["1st chat hwm"] = _mb(proc.pid)
            for _ in range(args.requests):
                client.post(base + "/v1/chat/completions", json=CHAT, headers=headers).raise_for_status()
            out["requests rss"], out["requests hwm"] = _mb(proc.pid)
        httpx2.post(upstream + "/_replay/delay", content=str(args.chunk_delay)).raise_for_status()
        try:
            for burst in (1, 2):  # the second shows whether the first left anything behind
                asyncio.run(_streams(base + "/v1/chat/completions", headers, args.streams))
                out[f"streams {burst} rss"], out[f"streams {burst} hwm"] = _mb(proc.pid)
        finally:
            httpx2.post(upstream + "/_replay/delay", content="0").raise_for_status()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="also measure the source tree at PATH (put first on PYTHONPATH)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees = {"this": str(HERE.parent)}
    for spec in args.tree:
        name, _, path = spec.partition("=")
        trees[name] = str(Path(path).resolve())

    for tree in trees.values():  # imports compile nothing during the run (compiling costs memory too)
        subprocess.run([sys.executable, "-m", "compileall", "-q", f"{tree}/baicai_sdk", f"{tree}/baicai_sidecar"],
                       check=True, capture_output=True,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="baicai-bench-mem-"))
    (home / "config").mkdir()
    (home / "config" / "catalog.json").write_text(json.dumps(_CATALOG))
    os.environ.update({"BAICAI_HOME": str(home), "NO_PROXY": "127.0.0.1,localhost", "BAICAI_SECRET_STORE": "file"})
    upstream_proc = subprocess.Popen([sys.executable, str(HERE / "_replay.py"), "upstream"], stdout=subprocess.PIPE,
                                     text=True, env=_env(home, str(HERE.parent)), cwd=home)
    try:
        assert upstream_proc.stdout is not None
        upstream = f"http://127.0.0.1:{upstream_proc.stdout.readline().strip()}"
        from baicai_sidecar._tokens import TokenStore

        token = TokenStore().issue("bench")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(args.rounds):
            order = list(trees)[i % len(trees):] + list(trees)[:i % len(trees)]
            for name in order:
                results[name].append(run_once(trees[name], upstream, home, token, args))
    finally:
        upstream_proc.terminate()
        upstream_proc.wait(timeout=10)
    summary = {name: {k: (statistics.median(r[k] for r in rs), min(r[k] for r in rs), max(r[k] for r in rs))
                      for k in rs[0]} for name, rs in results.items()}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.rounds} rounds, trees interleaved; MB (s: seconds), median [min–max]; "
          f"load {os.getloadavg()[0]:.1f}")
    names = list(trees)
    print(f"{'':<20}" + "".join(f"{n:>24}" for n in names))
    for key in summary[names[0]]:
        if key.startswith("imports "):
            continue
        spec = ".2f" if key.endswith(" s") else ".0f" if key.endswith("modules") else ".1f"
        print(f"{key:<20}" + "".join(f"{summary[n][key][0]:>9{spec}} [{summary[n][key][1]:{spec}}–{summary[n][key][2]:{spec}}]"
                                     .rjust(24) for n in names))
    for n in names:
        held = [k.split()[1] for k, v in summary[n].items() if k.startswith("imports ") and v[0]]
        print(f"{n}: imports at start: {', '.join(held)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
