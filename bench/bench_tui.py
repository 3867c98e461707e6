"""How fast the TUI is usable on a big ledger: 100,000 rows, time from process start to the first full render.

    python bench/bench_tui.py [--rows 100000]

The first 1,000 rows are written by the SDK's Meter (the real write path, realistic mix of models, sources
and statuses); the rest are copies of them shifted back in time, so the ledger spans ~2 months. The app then
starts in a fresh interpreter (imports counted), headless, and the script prints how long until the
overview's figures are on screen, and how long each page takes to open. Target: < 1 s to the first render.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOW = 1_800_000_000.0  # fixed, so runs are comparable
SEED_ROWS = 1000


def fill(home: Path, rows: int) -> float:
    os.environ["BAICAI_HOME"] = str(home)
    from baicai_sdk import _ledger
    from baicai_sdk._meter import Meter
    from baicai_sdk._paths import ledger_path
    from baicai_sdk._quota import describe_request

    started = time.perf_counter()
    path = ledger_path()
    models = ["gpt-3.5-turbo"] * 6 + ["gpt-4-0125-preview", "gpt-4", "gpt-3.5-turbo-16k"]
    current = [NOW]
    meters = {src: Meter(src, ledger_path=path, quota="off", clock=lambda: current[0]) for src in ("sdk", "sidecar")}
    keys = ["baicai-benchfree000000000000000000aaaa", "baicai-benchpaid000000000000000000bbbb"]
    seed = min(rows, SEED_ROWS)
    for i in range(seed):
        current[0] = NOW - (seed - i) * 50.0
        model = models[i % len(models)]
        source = "sidecar" if i % 4 == 0 else "sdk"
        info = describe_request("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "x"}],
                                                          "max_tokens": 200})
        res = meters[source].reserve(keys[i % 2], info, app=("lobechat" if i % 8 == 0 else "chatbox") if source == "sidecar" else None)
        failed = i % 37 == 0
        res.settle(prompt_tokens=100 + i % 300, completion_tokens=0 if failed else 50 + i % 200,  # type: ignore[union-attr]
                   status="error" if failed else "ok", relay_code=40020 if failed else None, latency_ms=300 + i % 900)
    for meter in meters.values():
        meter.close()
    # Copies shifted back by whole seed spans: same shape as the SDK's rows, only older (bench-only SQL).
    conn = _ledger.connect(path)
    span = seed * 50.0
    columns = [r[1] for r in conn.execute("PRAGMA table_info(requests)") if r[1] != "id"]
    cols = ", ".join(columns)
    shifted = ", ".join(f"{c} - ?" if c in ("ts", "settled_at") else c for c in columns)
    copies = (rows - seed + seed - 1) // seed
    with conn:
        for k in range(1, copies + 1):
            take = min(seed, rows - seed * k)
            conn.execute(f"INSERT INTO requests ({cols}) SELECT {shifted} FROM requests WHERE id <= ? ORDER BY id",
                         (span * k, span * k, take))
    total = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    conn.close()
    assert total == rows, (total, rows)
    return time.perf_counter() - started


def child(result_path: str) -> None:
    t0 = time.perf_counter()
    from baicai_tui.app import make_app  # textual and the SDK load here: counted

    marks: dict[str, float] = {"imports": time.perf_counter() - t0}

    async def run() -> None:
        t1 = time.perf_counter()
        app = make_app(clock=lambda: NOW)
        async with app.run_test(size=(120, 40)) as pilot:
            marks["app_first_paint"] = time.perf_counter() - t1
            from textual.worker import WorkerCancelled

            async def settle() -> None:
                for _ in range(3):
                    try:
                        await app.workers.wait_for_complete([w for w in app.workers if w.group != "balance"])
                    except WorkerCancelled:
                        pass
                    await pilot.pause()

            overview = app.page("overview")
            while not hasattr(overview, "view"):  # set when the figures reach the screen
                await pilot.pause(0.005)
            await pilot.pause()
            marks["first_render"] = time.perf_counter() - t0
            marks["app_to_figures"] = time.perf_counter() - t1
            for key, name in (("2", "quota"), ("3", "usage"), ("4", "log"), ("n", "log_next_page")):
                t = time.perf_counter()
                await pilot.press(key)
                await settle()
                marks[name] = time.perf_counter() - t
            t = time.perf_counter()
            app.query_one("#filter-model").value = "gpt-4"
            app.query_one("#filter-model").focus()
            await pilot.press("enter")
            await settle()
            marks["log_filter"] = time.perf_counter() - t
            marks["rows_total"] = float(app.page("ledger").page.total)  # type: ignore[union-attr]

    asyncio.run(run())
    Path(result_path).write_text(json.dumps(marks))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="baicai-bench-tui-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        fill_s = fill(home, args.rows)
        print(f"ledger: {args.rows:,} rows written in {fill_s:.1f} s")
        result = Path(tmp) / "result.json"
        env = {**os.environ, "BAICAI_HOME": str(home), "BAICAI_SECRET_STORE": "file",
               "BAICAI_BASE_URL": "http://127.0.0.1:9/v1"}
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", str(result)], env=env, check=True)
        wall = time.perf_counter() - started
        marks = json.loads(result.read_text())
    print(f"first full render, process start to overview figures: {marks['first_render']:.3f} s")
    print(f"  of which imports (textual, SDK): {marks['imports']:.3f} s; app start to first paint "
          f"{marks['app_first_paint']:.3f} s; app start to figures {marks['app_to_figures']:.3f} s  [target < 1 s]")
    for name in ("quota", "usage", "log", "log_next_page", "log_filter"):
        print(f"  open {name:<14} {marks[name]:.3f} s")
    print(f"  rows matching the filter (gpt-4): {int(marks['rows_total']):,};  child process wall time {wall:.2f} s")
    return 0 if marks["app_to_figures"] < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
