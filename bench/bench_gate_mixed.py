"""The quota gate and the ledger under a mixed workload (issue 13, "Done when"): a script that prints figures.

    python bench/bench_gate_mixed.py [--free-tier-unknown]

One emulator, one fresh BAICAI_HOME, free and paid keys on one machine. Phases: plain and streamed paid requests
(with and without max_tokens), streams closed after two chunks, relay errors inside streams, read timeouts, images,
a free key's concurrent requests without max_tokens (wait mode), and a process killed with SIGKILL mid-stream.
Prints the emulator's bill (both keys) against the ledger's point figure and [low, high]; requests the gate let
through that the relay refused for quota; local refusals; whether the paid key was ever refused.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import tempfile
import textwrap
import time

HOME = tempfile.mkdtemp(prefix="baicai-bench-gate-")
os.environ["BAICAI_HOME"] = HOME
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from baicai_sdk import Baicai  # noqa: E402
from baicai_sdk._errors import QuotaExceeded  # noqa: E402
from baicai_sdk._meter import Meter  # noqa: E402
from baicai_sdk._usage import UsageStore  # noqa: E402
from baicai_sdk.testing import EmulatorServer, wait_until  # noqa: E402

QUOTA_CODES = {40020, 40021, 40022, 40023, 40031, 40032, 40040, 40041}


def main() -> int:
    local_refusals = {"free": 0, "paid": 0}
    with EmulatorServer() as emu:
        paid = Baicai(api_key=emu.paid_key, base_url=emu.base_url, tier="paid", max_retries=0)
        # Both keys' tiers configured, as `baicai key add --tier` does. With --free-tier-unknown the free key's is not:
        # it never meets a free-only limit here, so it stays unknown and is booked at the paid price (¥0 the low end).
        free_tier = None if "--free-tier-unknown" in sys.argv else "free"
        free = Baicai(api_key=emu.free_key, base_url=emu.base_url, tier=free_tier, quota="wait", max_wait=60,
                      max_retries=0)

        def ask(client: Baicai, who: str, **kw: object) -> object:
            try:
                return client.chat.completions.create(messages=[{"role": "user", "content": "白菜 cabbage"}], **kw)
            except QuotaExceeded:
                local_refusals[who] += 1
                return None
            except Exception:  # relay errors, timeouts: counted from the emulator's side
                return None

        started = time.monotonic()
        sent = 0
        # First a free key, no max_tokens, 12 at once (after the paid traffic below, the IP's gpt-3.5 window would
        # be past the free tier's 60 and the relay would refuse the free key: the gate then rightly does too).
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda _: ask(free, "free", model="gpt-3.5-turbo"), range(55)))
        sent += 55
        for i in range(40):  # plain, some without max_tokens
            ask(paid, "paid", model="gpt-4" if i % 4 == 0 else "gpt-3.5-turbo",
                **({"max_tokens": 30} if i % 2 else {}))
            sent += 1
        for i in range(30):  # streams; every second one closed after two chunks
            stream = ask(paid, "paid", model="gpt-3.5-turbo-16k", stream=True)
            sent += 1
            if stream is None:
                continue
            for n, _chunk in enumerate(stream):  # type: ignore[attr-defined]
                if i % 2 and n == 1:
                    break
            stream.close()  # type: ignore[attr-defined]
        emu.configure(faults="stream_error=3", reply_tokens=30)
        for _ in range(10):  # relay errors inside streams
            stream = ask(paid, "paid", model="gpt-4", stream=True)
            sent += 1
            try:
                for _chunk in stream or ():  # type: ignore[union-attr]
                    pass
            except Exception:
                pass
        emu.configure(faults="slow=0.6", reply_tokens=16)  # a relay serves and bills what a client gave up on
        slow = Baicai(api_key=emu.paid_key, base_url=emu.base_url, tier="paid", max_retries=0, timeout=0.2)
        for _ in range(5):  # read timeouts after sending
            ask(slow, "paid", model="gpt-4", max_tokens=20)
            sent += 1
        emu.configure(faults="")
        for _ in range(5):
            try:
                paid.images.generate(model="dall-e-2", prompt="cabbage", size="256x256")
            except Exception:
                pass
            sent += 1
        # A sending process killed mid-stream.
        emu.configure(chunk_delay=0.05, reply_tokens=60)
        script = textwrap.dedent(f"""
            import os, signal
            from baicai_sdk import Baicai
            c = Baicai(api_key={emu.paid_key!r}, base_url={emu.base_url!r}, tier="paid")
            s = c.chat.completions.create(model="gpt-4", stream=True, messages=[{{"role": "user", "content": "x"}}])
            for n, _ in enumerate(s):
                if n == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
        """)
        for _ in range(3):
            subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), timeout=120)
            sent += 1
        emu.configure(chunk_delay=0.0)
        wait_until(lambda: all(r.finished for r in emu.state.relay_requests()), timeout=10,
                   what="every request answered and billed")
        orphans = Meter().settle_orphans()
        elapsed = time.monotonic() - started

        records = emu.state.relay_requests()
        bill = sum(emu.state.spent(k) for k in (emu.paid_key, emu.free_key))
        totals = UsageStore().summary()
        relay_quota = [r for r in records if r.relay_code in QUOTA_CODES]
        print(f"requests attempted: {sent} in {elapsed:.1f} s; reached the relay: {len(records)}")
        print(f"bill (emulator, both keys): ¥{bill:.4f}")
        print(f"ledger: point ¥{totals.cost_cny:.4f} (measured ¥{totals.cost_measured:.4f} + estimated "
              f"¥{totals.cost_estimated:.4f}); range [¥{totals.cost_low:.4f}, ¥{totals.cost_high:.4f}]")
        inside = totals.cost_low - 1e-9 <= bill <= totals.cost_high + 1e-9
        print(f"bill inside the ledger's range: {inside}; point vs bill: "
              f"{(totals.cost_cny - bill) / bill * 100 if bill else 0:+.2f} %")
        print(f"relay refusals for quota of requests the gate let through: {len(relay_quota)}")
        print(f"local refusals: free {local_refusals['free']}, paid {local_refusals['paid']}")
        print(f"orphans settled by the next Meter: {orphans}; pending left: {totals.pending}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
