"""The sidecar under local abuse (issue 14, item 5): not a timed test, a script that prints figures.

    python bench/bench_abuse.py [--idle 1100] [--header-mb 64] [--body-mb 18]

Processes, each its own (no shared GIL): the relay emulator, the real sidecar (default limits, with its open-file
limit set to the usual 1,024 to show the cap holds there), and this script as the attacker and the app. Everything
binds 127.0.0.1 on free ports. Prints:

1. ``--idle`` silent connections held open, then an app with a token asks ``GET /v1/models``: status and latency
   (before the limits: every app locked out);
2. a ``--header-mb`` request head streamed at the sidecar: time until it is refused, and the sidecar's RSS growth
   (before: four 64 MB heads took RSS from 109 to 461 MB);
3. ``GET /v1/models`` latency (p50 / max) from another app while a ``--body-mb`` chat body is sent and processed
   (before: one 18 MB body stalled the other app for 5.3 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2

_EMULATOR = """
import sys, time
from baicai_sdk.testing import EmulatorServer
with EmulatorServer() as emu:
    print(emu.base_url, emu.paid_key, flush=True)
    while True:
        time.sleep(3600)
"""

_SIDECAR = """
import resource, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # the usual limit, as users have it
from baicai_sidecar._server import SidecarServer
from baicai_sidecar._tokens import TokenStore
from baicai_sidecar.app import SidecarConfig
token = TokenStore().issue("bench")
with SidecarServer(SidecarConfig(upstream=sys.argv[1], api_key=sys.argv[2], tier="paid")) as sc:
    print(sc.port, token, flush=True)
    while True:
        time.sleep(3600)
"""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(code: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line:
        raise SystemExit("a child process did not start")
    return proc, line


def idle_flood(port: int, token: str, count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count + 256, hard), hard))  # ours, not the sidecar's
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError as exc:
            print(f"   could open only {len(held)} connections ({exc})")
            break
    time.sleep(0.5)
    started = time.perf_counter()
    try:
        r = httpx2.get(f"http://127.0.0.1:{port}/v1/models", headers={"authorization": f"Bearer {token}"},
                       timeout=10)
        outcome = f"{r.status_code}"
    except httpx2.HTTPError as exc:
        outcome = type(exc).__name__
    took = (time.perf_counter() - started) * 1000
    open_left = 0
    for s in held:
        s.setblocking(False)
        try:
            open_left += s.recv(1) != b""
        except BlockingIOError:
            open_left += 1
        except OSError:
            pass
        s.close()
    print(f"1. {len(held)} idle connections, then an app with a token: GET /v1/models -> {outcome} in {took:.0f} ms"
          f" ({open_left} idle ones still open)")


def huge_header(port: int, pid: int, megabytes: int) -> None:
    before = _rss_mb(pid)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.perf_counter()
    answer = b""
    sent = 0

    def pump() -> None:
        nonlocal sent
        chunk = b"a" * 65536
        try:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            while sent < megabytes * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        answer = sock.recv(4096)
    except OSError:
        pass
    refused_in = (time.perf_counter() - started) * 1000
    thread.join(5)
    sock.close()
    time.sleep(0.3)
    after = _rss_mb(pid)
    status = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace") or "(closed)"
    print(f"2. a {megabytes} MB request head: {status!r} after {refused_in:.0f} ms, {sent / 1048576:.1f} MB sent "
          f"before the refusal; sidecar RSS {before:.0f} -> {after:.0f} MB ({after - before:+.1f} MB)")


def big_body(port: int, token: str, megabytes: int) -> None:
    auth = {"authorization": f"Bearer {token}"}
    # A model the relay does not serve: the sidecar parses and counts the 18 MB (the work measured here), then its
    # quota gate refuses it locally (404) — the emulator never sees it, so it cannot stall /v1/models by counting
    # the same body on its own loop.
    body = json.dumps({"model": "gpt-4-32k", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "word " * (megabytes * 1024 * 1024 // 5)}]})
    done: dict[str, object] = {}

    def send() -> None:
        started = time.perf_counter()
        r = httpx2.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=body,
                        headers={**auth, "content-type": "application/json"}, timeout=120)
        done["status"], done["took"] = r.status_code, time.perf_counter() - started

    thread = threading.Thread(target=send)
    thread.start()
    latencies: dict[str, list[float]] = {"/v1/models": [], "/sidecar/status": []}
    with httpx2.Client(headers=auth, timeout=30) as client:
        while thread.is_alive():
            for path, found in latencies.items():
                started = time.perf_counter()
                client.get(f"http://127.0.0.1:{port}{path}")
                found.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    thread.join()
    print(f"3. while a {megabytes} MB chat body was processed (answer {done.get('status')} after "
          f"{done.get('took', 0):.1f} s), another app's:")
    for path, found in latencies.items():
        p90 = statistics.quantiles(found, n=10)[-1] if len(found) >= 10 else max(found)
        print(f"   GET {path}: p50 {statistics.median(found):.1f} ms, p90 {p90:.1f} ms, max {max(found):.1f} ms "
              f"over {len(found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--header-mb", type=int, default=64)
    parser.add_argument("--body-mb", type=int, default=18)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="baicai-bench-abuse-")
    env = {**os.environ, "BAICAI_HOME": home, "NO_PROXY": "127.0.0.1,localhost", "BAICAI_SECRET_STORE": "file"}
    emulator, (base_url, key) = _start(_EMULATOR, [], env)
    sidecar = None
    try:
        sidecar, (port_text, token) = _start(_SIDECAR, [base_url, key], env)
        port = int(port_text)
        print(f"sidecar pid {sidecar.pid} on 127.0.0.1:{port}, RSS {_rss_mb(sidecar.pid):.0f} MB")
        idle_flood(port, token, args.idle)
        huge_header(port, sidecar.pid, args.header_mb)
        big_body(port, token, args.body_mb)
    finally:
        for proc in (sidecar, emulator):
            if proc is not None:
                proc.terminate()
                proc.wait(5)


if __name__ == "__main__":
    main()
