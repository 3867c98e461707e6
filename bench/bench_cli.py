"""How long the quick commands take from the shell, and how much of it is the network (issue 16: `baicai usage
balance` ≤ 0.3 s plus the network, `baicai doctor` ≤ 1 s plus the network).

Each command runs in a fresh interpreter against a local emulator (a real socket, a real key, a ledger with a few
rows); the rounds interleave the commands so machine load hits each alike. "network" is the same billing calls
made from this process with a warm interpreter — what a command cannot avoid; "own" = median − network.
The floor row is ``python -c pass``: what any Python command pays before our first line runs.

    python bench/bench_cli.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
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


def _time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


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
    args = parser.parse_args()

    from baicai_sdk import Baicai
    from baicai_sdk.testing import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="baicai-bench-cli-") as home, EmulatorServer() as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAICAI_", "OPENAI_"))}
        env.update(BAICAI_HOME=home, BAICAI_API_KEY=emu.paid_key, BAICAI_BASE_URL=emu.base_url,
                   BAICAI_SECRET_STORE="file", NO_PROXY="127.0.0.1,localhost")
        os.environ.update(BAICAI_HOME=home)
        client = Baicai(api_key=emu.paid_key, base_url=emu.base_url, quota="off")
        for _ in range(3):  # a ledger with rows, as after a little use
            client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
        client.close()
        for argv in COMMANDS.values():  # warm the file cache and .pyc files
            _time(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.rounds):
            for name, argv in COMMANDS.items():
                samples[name].append(_time(argv, env))
        network = _network(emu.base_url, emu.paid_key, args.rounds)

    print(f"{'command':<22}{'median':>9}{'min':>9}{'max':>9}{'own':>9}   budget (own = median − network)")
    over = False
    for name, values in samples.items():
        med = statistics.median(values)
        own = med - network if name in BUDGET else med
        budget = BUDGET.get(name)
        verdict = "" if budget is None else f"   ≤ {budget:.1f} s: {'ok' if own <= budget else 'OVER'}"
        over = over or (budget is not None and own > budget)
        print(f"{name:<22}{med:>8.3f}s{min(values):>8.3f}s{max(values):>8.3f}s{own:>8.3f}s{verdict}")
    print(f"{'network (2 calls)':<22}{network:>8.3f}s   load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
