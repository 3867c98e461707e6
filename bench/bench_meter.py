"""The metering pipeline of one non-streamed chat, alone: describe (prompt count) + ``Meter.reserve`` + settle.

    python bench/bench_meter.py [--iterations 2000] [--rows 1000] [--writer] [--trace]

Against a warm ledger (``--rows`` settled rows in the hour's window; a request every ``--step`` seconds, the relay's rules on, one key), it
runs ``--iterations`` cycles and prints CPU per cycle (``time.process_time``) for each step and the SQL statements
one cycle executes (``sqlite3.Connection.set_trace_callback``). ``--writer``: another connection inserts a row
between two cycles (another process using the ledger), so every reserve must see a change it did not make.
``--trace`` prints each statement of one cycle.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1000, help="rows in the hour's window before timing")
    parser.add_argument("--step", type=float, default=None,
                        help="seconds between two requests (default: 3600/rows, a row leaves the window each time)")
    parser.add_argument("--writer", action="store_true", help="another connection writes between two cycles")
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

        def cycle() -> tuple[float, float, float]:
            clock.tick()
            t0 = time.process_time()
            info = describe_request("/v1/chat/completions", CHAT)
            t1 = time.process_time()
            reservation = meter.reserve(KEY, info, url=URL, app="bench")
            t2 = time.process_time()
            reservation.settle(status="ok", http_status=200, prompt_tokens=20, completion_tokens=40)  # type: ignore[union-attr]
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
        one = list(statements)
        totals = [0.0, 0.0, 0.0]
        for _ in range(args.iterations):
            write_elsewhere()
            for i, part in enumerate(cycle()):
                totals[i] += part
        n = args.iterations
        describe, reserve, settle = (t / n * 1000 for t in totals)
        print(f"{args.rows} rows in the window, a request every {clock.step:.3g} s, "
              f"writer: {'yes' if args.writer else 'no'}, {n} cycles")
        print(f"  describe (prompt count) {describe:.3f} ms   reserve {reserve:.3f} ms   settle {settle:.3f} ms"
              f"   total {describe + reserve + settle:.3f} ms CPU/request")
        print(f"  SQL statements per request: {len(one)} "
              f"(explicit COMMITs: {sum(1 for s in one if s.strip().upper() == 'COMMIT')}; a lone write statement commits by itself)")
        if args.trace:
            for s in one:
                print("   ", " ".join(s.split())[:150])


if __name__ == "__main__":
    main()
