"""What the quota gate adds per request: ``Meter.reserve`` + ``Reservation.settle`` on a ledger of 100,000 rows.

    python bench/bench_ledger.py [--rows 100000] [--requests 2000]

Prints median / p95 / max in milliseconds (target: median under 1 ms), plus the read side (UsageStore) timings.
The ledger is a temporary file; the clock is simulated so that the window holds several hundred rows throughout.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baicai_sdk import _ledger  # noqa: E402
from baicai_sdk._meter import Meter, Reservation, describe_request  # noqa: E402
from baicai_sdk._usage import UsageStore  # noqa: E402

MODELS = [("gpt-3.5-turbo", "gpt-3.5"), ("gpt-4", "gpt-4"), ("gpt-4-0125-preview", "gpt-4")]
KEYS = ["baicai-bench-key-number-one-aaaa", "baicai-bench-key-number-two-bbbb", "baicai-bench-key-three-cccc"]


def fill(path: Path, rows: int, now: float, span: float) -> None:
    conn = _ledger.connect(path)
    rnd = random.Random(4)
    fps = [_ledger.fingerprint(k) for k in KEYS]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO requests (ts, settled_at, key_fp, key_hint, source, model, family, endpoint, tier, prompt_est, "
        "completion_est, prompt_tokens, completion_tokens, cost_est, cost, status, http_status, latency_ms, counted, "
        "win_tokens) VALUES (?, ?, ?, 'baicai-…', 'sdk', ?, ?, 'chat', 'paid', 100, 1024, ?, ?, 0.01, 0.001, 'ok', "
        "200, 800, 1, ?)",
        [
            (ts, ts + 1, rnd.choice(fps), m, f, p, c, p + c)
            for ts, (m, f), p, c in (
                (now - span * i / rows, rnd.choice(MODELS), rnd.randint(10, 2000), rnd.randint(1, 800))
                for i in range(rows, 0, -1)
            )
        ],
    )
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite3"
        now = [time.time()]
        span = 30 * 86400.0  # 100k rows over 30 days ≈ 140 per hour already in every window
        start = time.perf_counter()
        fill(path, args.rows, now[0], span)
        print(f"filled {args.rows:,} rows in {time.perf_counter() - start:.1f} s ({path.stat().st_size / 1e6:.1f} MB)")

        meter = Meter(ledger_path=path, tier="paid", clock=lambda: now[0])
        info = describe_request("/v1/chat/completions", {
            "model": "gpt-3.5-turbo", "max_tokens": 300,
            "messages": [{"role": "user", "content": "你好，白菜GPT！Hello there."}]})
        for _ in range(50):  # warm up: connection, prepared statements, page cache
            r = meter.reserve(KEYS[0], info)
            assert isinstance(r, Reservation)
            r.settle(prompt_tokens=12, completion_tokens=30)
        timings, reserve_only = [], []
        for _ in range(args.requests):
            now[0] += 5.0  # 720 requests/hour: stays under the paid gpt-3.5 limit of 1000
            t0 = time.perf_counter()
            r = meter.reserve(KEYS[0], info)
            t1 = time.perf_counter()
            assert isinstance(r, Reservation), r
            r.settle(prompt_tokens=12, completion_tokens=30, http_status=200, latency_ms=700)
            t2 = time.perf_counter()
            timings.append((t2 - t0) * 1000)
            reserve_only.append((t1 - t0) * 1000)
        timings.sort()
        print(f"reserve+settle over {args.requests} requests, ledger of {args.rows + args.requests + 50:,} rows:")
        print(f"  median {statistics.median(timings):.3f} ms   p95 {timings[int(len(timings) * 0.95)]:.3f} ms   "
              f"max {timings[-1]:.3f} ms   (reserve alone: median {statistics.median(reserve_only):.3f} ms)")
        verdict = "OK" if statistics.median(timings) < 1.0 else "OVER TARGET"
        print(f"  target: median under 1 ms -> {verdict}")

        store = UsageStore(path, clock=lambda: now[0])
        for label, call in [
            ("summary (all)", lambda: store.summary()),
            ("report by day, 30 days", lambda: store.report("day", since=now[0] - span)),
            ("report by model, all", lambda: store.report("model")),
            ("rows page at offset 90,000", lambda: store.rows(offset=90_000, limit=50)),
            ("rows page by key (before_id)", lambda: store.rows(before_id=1000, limit=50)),
            ("windows", lambda: store.windows(now=now[0])),
            ("change_token", lambda: store.change_token()),
        ]:
            t0 = time.perf_counter()
            call()
            print(f"  {label:<30} {(time.perf_counter() - t0) * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
