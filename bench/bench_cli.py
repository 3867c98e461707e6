"""How long the quick commands take from the shell, and how much of it is the network (issue 16: `baicai usage
balance` ≤ 0.3 s plus the network, `baicai doctor` ≤ 1 s plus the network).

Each command runs in a fresh interpreter against a local emulator (a real socket, a real key, a ledger with a few
rows); the rounds interleave the commands so machine load hits each alike. "network" is the same billing calls
made from this process with a warm interpreter — what a command cannot avoid; "own" = median − network.
"cpu" is the median of the
child's user + system time: on a loaded machine the wall time waits for a core, the CPU time much less.
The floor row is ``python -c pass``: what any Python command pays before our first line runs.

    python bench/bench_cli.py [--rounds 7] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "baicai --help": [sys.executable, "-m", "baicai_sdk.cli", "--help"],
    "baicai usage balance": [sys.executable, "-m", "baicai_sdk.cli", "usage", "balance"],
    "baicai usage": [sys.executable, "-m", "baicai_sdk.cli", "usage"],
    "baicai doctor": [sys.executable, "-m", "baicai_sdk.cli", "doctor"],
}
BUDGET = {"baicai usage balance": 0.3, "baicai doctor": 1.0}


def _time(argv: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system) are appended to ``cpu``.

    Run from BAICAI_HOME, not from here: ``python -m`` puts the working directory first on sys.path, so inside a
    checkout every "baseline" run would import this checkout's code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=env["BAICAI_HOME"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def _baseline_path(checkout: str, scratch: str) -> str:
    """PYTHONPATH for another checkout: its packages, the TUI included (the folder ``tui`` is installed as
    ``baicai_tui``, which would otherwise come from this checkout's editable install)."""
    links = os.path.join(scratch, "baseline-packages")
    os.makedirs(links, exist_ok=True)
    if os.path.isdir(os.path.join(checkout, "tui")) and not os.path.exists(os.path.join(links, "baicai_tui")):
        os.symlink(os.path.join(checkout, "tui"), os.path.join(links, "baicai_tui"))
    return os.pathsep.join([checkout, links])


def _network(base_url: str, key: str, rounds: int) -> float:
    """The two billing calls `usage balance` makes, from a warm process: the part no command can shave off."""
    import httpx2

    samples = []
    with httpx2.Client(trust_env=False, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(f"{base_url}/dashboard/billing/subscription")
            client.get(f"{base_url}/dashboard/billing/usage", params={"start_date": "2023-01-01",
                                                                       "end_date": "2099-01-01"})
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", metavar="DIR", default=None,
                        help="another checkout (e.g. `git archive main | tar -x -C DIR`): its commands run in the same "
                        "interleaved rounds, on PYTHONPATH, and print as 'before' rows — a loaded machine makes two "
                        "separate runs incomparable")
    args = parser.parse_args()

    from baicai_sdk import Baicai
    from baicai_sdk.testing import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="baicai-bench-cli-") as home, EmulatorServer() as emu:
        # PYTHONDONTWRITEBYTECODE (set in some dev shells) would compile our own modules on every run: an
        # installed package has its .pyc files, so the figures are taken with them.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BAICAI_", "OPENAI_")) and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(BAICAI_HOME=home, BAICAI_API_KEY=emu.paid_key, BAICAI_BASE_URL=emu.base_url,
                   BAICAI_SECRET_STORE="file", NO_PROXY="127.0.0.1,localhost")
        os.environ.update(BAICAI_HOME=home)
        client = Baicai(api_key=emu.paid_key, base_url=emu.base_url, quota="off")
        for _ in range(3):  # a ledger with rows, as after a little use
            client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
        client.close()
        runs = {name: (argv, env) for name, argv in COMMANDS.items()}
        if args.baseline:
            before = {**env, "PYTHONPATH": _baseline_path(os.path.abspath(args.baseline), home)}
            runs = {label: run for name, argv in COMMANDS.items() if name != "python -c pass"
                    for label, run in ((f"{name} (before)", (argv, before)), (name, (argv, env)))}
            runs = {"python -c pass": (COMMANDS["python -c pass"], env), **runs}
        for name, (argv, run_env) in runs.items():  # warm the file cache and .pyc files; a crash is no figure
            done = subprocess.run(argv, env=run_env, cwd=home, capture_output=True, text=True, check=False)
            if "Traceback" in done.stderr:
                sys.exit(f"{name} fails, nothing to time:\n{done.stderr[-2000:]}")
        samples: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (argv, run_env) in runs.items():
                samples[name].append(_time(argv, run_env, cpu[name]))
        network = _network(emu.base_url, emu.paid_key, args.rounds)

    print(f"{'command':<31}{'median':>9}{'min':>9}{'max':>9}{'own':>9}{'cpu':>9}   budget (own = median − network)")
    over = False
    for name, values in samples.items():
        med = statistics.median(values)
        own = med - network if name.removesuffix(" (before)") in BUDGET else med
        budget = BUDGET.get(name)
        verdict = "" if budget is None else f"   ≤ {budget:.1f} s: {'ok' if own <= budget else 'OVER'}"
        over = over or (budget is not None and own > budget)
        print(f"{name:<31}{med:>8.3f}s{min(values):>8.3f}s{max(values):>8.3f}s{own:>8.3f}s"
              f"{statistics.median(cpu[name]):>8.3f}s{verdict}")
    print(f"{'network (2 calls)':<31}{network:>8.3f}s   load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
