"""How much ``baicai_sdk`` adds to ``openai``'s import time (issue 3: at most 15 % more).

Each figure is the median of fresh interpreters (``python -X importtime`` is not used: it slows imports down).
Compares ``from openai import OpenAI`` with ``from baicai_sdk import Baicai`` (the realistic first use), and
also reports bare ``import baicai_sdk`` (lazy: should be nearly free). Exit status 1 when over budget.

    python bench/bench_import.py [--runs 15] [--budget 1.15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

_TIMER = (
    "import time, sys; t = time.perf_counter(); {stmt}; "
    "sys.stdout.write(repr(time.perf_counter() - t))"
)


def _once(stmt: str) -> float:
    out = subprocess.run([sys.executable, "-c", _TIMER.format(stmt=stmt)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def measure(*stmts: str, runs: int) -> list[float]:
    """Median seconds per statement; runs are interleaved so machine load hits every statement alike."""
    samples: list[list[float]] = [[] for _ in stmts]
    for _ in range(runs):
        for i, stmt in enumerate(stmts):
            samples[i].append(_once(stmt))
    return [statistics.median(s) for s in samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--budget", type=float, default=1.15)
    args = parser.parse_args()
    measure("import openai", "from baicai_sdk import Baicai", runs=2)  # warm the file cache and .pyc files
    openai_s, client_s, bare_s = measure(
        "from openai import OpenAI", "from baicai_sdk import Baicai", "import baicai_sdk", runs=args.runs
    )
    ratio = client_s / openai_s
    print(f"from openai import OpenAI      {openai_s * 1000:8.1f} ms")
    print(f"from baicai_sdk import Baicai  {client_s * 1000:8.1f} ms   ({ratio:.3f}x openai; budget {args.budget:.2f}x)")
    print(f"import baicai_sdk              {bare_s * 1000:8.1f} ms")
    return 0 if ratio <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
