"""The metering pipeline of one non-streamed chat, alone: describe (prompt count) + ``Meter.reserve`` + settle.

    python bench/bench_meter.py [--iterations 2000] [--rows 1000] [--writer | --second-writer [RATE]] [--rate R]
                                [--trace]

Against a warm ledger (``--rows`` settled rows in the hour's window; a request every ``--step`` seconds, the relay's rules on, one key), it
runs ``--iterations`` cycles and prints CPU per cycle (``time.process_time``) for each step and the SQL statements
one cycle executes (``sqlite3.Connection.set_trace_callback``; a trigger's work is part of its statement).
``--writer``: another connection inserts a row between two cycles (the worst case: every reserve sees a change it
did not make). ``--rate R``: R cycles a second (default: one after another): the process's whole CPU per cycle,
its background WAL checkpoints included, depends on how many requests a checkpoint covers (the sidecar's bench
serves a few hundred a second). ``--second-writer``: another process with its own Meter reserves and settles ``RATE`` rows a second
(default 50) on the bench's clock while it runs, as an SDK script beside the sidecar would. ``--deferred``: settles as the sidecar
makes them (``deferred=True``: written in the next reservation's transaction). ``--trace`` prints each statement of
one cycle.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baicai_sdk._meter import Meter  # noqa: E402
from baicai_sdk._quota import describe_request  # noqa: E402

KEY = "baicai-bench0000000000000000000000000000abcd"
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好，介绍一下白菜。"}]}
URL = "https://api.baicaigpt.com/v1/chat/completions"
_CATALOG = {"families": {"gpt-3.5": {"limits": {
    "free": {"requests_per_hour": 60, "tokens_per_hour": 10000},
    "paid": {"requests_per_hour": 100_000_000, "tokens_per_hour": None}}}}}


class _Clock:
    """The ledger's wall clock: one request every ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now = time.time() - 7200.0
        self.step = step

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.step


def _warm(meter: Meter, clock: _Clock, rows: int) -> None:
    info = describe_request("/v1/chat/completions", CHAT)
    for _ in range(rows):
        clock.tick()
        reservation = meter.reserve(KEY, info, url=URL)
        reservation.settle(status="ok", http_status=200, prompt_tokens=20, completion_tokens=40)  # type: ignore[union-attr]


def _second_writer(path: str, home: str, now: object, rate: float, stop: object) -> None:
    """Another process: a Meter of its own writing ``rate`` rows a second (reserve + settle) on the bench's clock."""
    os.environ["BAICAI_HOME"] = home
    meter = Meter("sdk", ledger_path=path, relay_rules=True, tier="paid", clock=lambda: now.value)  # type: ignore[attr-defined]
    info = describe_request("/v1/chat/completions", CHAT)
    key = KEY[:-4] + "wxyz"
    next_at = time.monotonic()
    parent = os.getppid()
    while not stop.is_set() and os.getppid() == parent:  # type: ignore[attr-defined]  # ends with the bench
        reservation = meter.reserve(key, info, url=URL)
        reservation.settle(status="ok", http_status=200, prompt_tokens=20, completion_tokens=40)  # type: ignore[union-attr]
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))


def _checkpoint_thread_cpu() -> float:
    """CPU seconds (utime + stime from ``/proc``) of this process's ledger checkpoint thread(s) so far."""
    import threading

    total = 0.0
    for thread in threading.enumerate():
        if thread.name == "baicai-ledger-checkpoint" and thread.native_id is not None:
            try:
                fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1000, help="rows in the hour's window before timing")
    parser.add_argument("--step", type=float, default=None,
                        help="seconds between two requests (default: 3600/rows, a row leaves the window each time)")
    parser.add_argument("--writer", action="store_true", help="another connection writes between two cycles")
    parser.add_argument("--second-writer", type=float, nargs="?", const=50.0, default=None, metavar="RATE",
                        help="another process writes RATE rows a second (default 50) while the bench runs")
    parser.add_argument("--deferred", action="store_true",
                        help="settle as the sidecar does: the UPDATE goes into the next reservation's commit")
    parser.add_argument("--rate", type=float, default=None, help="cycles a second (default: one after another)")
    parser.add_argument("--trace", action="store_true", help="print the statements of one cycle")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "ledger.sqlite3"
        # As bench_sidecar.py: the paid tier's limit raised by a catalogue override, so that no run is refused.
        (Path(home) / "config").mkdir()
        (Path(home) / "config" / "catalog.json").write_text(json.dumps(_CATALOG))
        os.environ["BAICAI_HOME"] = home
        clock = _Clock(3600.0 / args.rows)
        meter = Meter("sidecar", ledger_path=path, relay_rules=True, tier="paid", clock=clock)
        _warm(meter, clock, args.rows)
        clock.step = args.step if args.step is not None else 3600.0 / args.rows
        other = sqlite3.connect(str(path), isolation_level=None) if args.writer else None
        conn = meter._conn()
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        ctx = multiprocessing.get_context("spawn")
        shared_now, stop = ctx.Value("d", clock.now), ctx.Event()
        writer = None
        if args.second_writer:
            writer = ctx.Process(target=_second_writer,
                                 args=(str(path), home, shared_now, args.second_writer, stop), daemon=True)
            writer.start()
            count = sqlite3.connect(str(path))
            while count.execute("SELECT COUNT(*) FROM requests WHERE key_fp != ?", (meter._key_ids(KEY)[0],)
                                ).fetchone()[0] < 2:
                time.sleep(0.05)
            count.close()

        walls: list[float] = []

        def cycle() -> tuple[float, float, float]:
            clock.tick()
            shared_now.value = clock.now
            t0 = time.process_time()
            info = describe_request("/v1/chat/completions", CHAT)
            t1 = time.process_time()
            w = time.perf_counter()
            reservation = meter.reserve(KEY, info, url=URL, app="bench")
            t2 = time.process_time()
            reservation.settle(status="ok", http_status=200, prompt_tokens=20, completion_tokens=40,  # type: ignore[union-attr]
                               deferred=args.deferred)
            walls.append(time.perf_counter() - w)
            t3 = time.process_time()
            return t1 - t0, t2 - t1, t3 - t2

        def write_elsewhere() -> None:
            if other is not None:
                other.execute(
                    "INSERT INTO requests (ts, win_ts, key_fp, source, model, family, endpoint, status, counted, "
                    "win_tokens) VALUES (?, ?, 'other', 'sdk', 'gpt-3.5-turbo', 'gpt-3.5', 'chat', 'ok', 1, 60)",
                    (clock(), clock()))

        for _ in range(50):
            write_elsewhere()
            cycle()
        statements.clear()
        write_elsewhere()
        cycle()
        # A trigger's statements are traced as their parent statement again: one statement, however many repeats.
        one = [s for i, s in enumerate(statements) if i == 0 or s != statements[i - 1]]
        conn.set_trace_callback(None)  # tracing costs CPU per statement (more with triggers): not in the timing
        totals = [0.0, 0.0, 0.0]
        walls.clear()
        rows_before = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        wall = time.monotonic()
        process_cpu = time.process_time()
        checkpoint_cpu = _checkpoint_thread_cpu()
        for n in range(args.iterations):
            write_elsewhere()
            for i, part in enumerate(cycle()):
                totals[i] += part
            if args.rate:
                time.sleep(max(0.0, wall + (n + 1) / args.rate - time.monotonic()))
        process_cpu = time.process_time() - process_cpu
        checkpoint_cpu = _checkpoint_thread_cpu() - checkpoint_cpu
        wall = time.monotonic() - wall
        others = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] - rows_before - args.iterations
        if writer is not None:
            stop.set()
            writer.join(10)
        n = args.iterations
        describe, reserve, settle = (t / n * 1000 for t in totals)
        kind = ("a row between two cycles" if args.writer
                else f"another process, {others} rows in {wall:.1f} s" if writer is not None else "no")
        print(f"{args.rows} rows in the window, a request every {clock.step:.3g} s, "
              f"writer: {kind}, {n} cycles")
        print(f"  describe (prompt count) {describe:.3f} ms   reserve {reserve:.3f} ms   settle {settle:.3f} ms"
              f"   total {describe + reserve + settle:.3f} ms CPU/request")
        print(f"  the process's CPU per request, all threads (background checkpoints included): "
              f"{process_cpu / n * 1000:.3f} ms ({n / wall:.0f} requests a second), of which the checkpoint "
              f"thread {checkpoint_cpu / n * 1000:.3f} ms")
        walls.sort()
        print(f"  reserve + settle wall time: p50 {walls[n // 2] * 1e3:.3f} ms   p99 {walls[int(n * 0.99)] * 1e3:.2f} ms"
              f"   max {walls[-1] * 1e3:.2f} ms (a WAL checkpoint's fsyncs in a commit show here)")
        print(f"  SQL statements per request: {len(one)} "
              f"(explicit COMMITs: {sum(1 for s in one if s.strip().upper() == 'COMMIT')}; a lone write statement commits by itself)")
        if args.trace:
            for s in one:
                print("   ", " ".join(s.split())[:150])


if __name__ == "__main__":
    main()
