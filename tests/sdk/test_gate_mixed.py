"""The quota gate and the ledger under a mixed workload, against the emulator (issue 13, "Done when").

One machine, a free key and a paid key, 150+ requests of every kind: concurrent requests without ``max_tokens``,
the free key's window filled and probed at its edge, streams read to the end and closed early, relay errors inside
streams, read timeouts the relay serves anyway, images, and a sending process killed with SIGKILL. Hour windows
move on the emulator's clock (the Meters share it), never by waiting. At the end:

- the emulator's bill is inside the ledger's [low, high], and the ledger's point figure within 1 % of it;
- no request the gate let through was refused by the relay for quota (the window's edge included);
- every local refusal is one the relay would have made too (the concurrent no-``max_tokens`` case included);
- the paid key is never refused, though the free key's window (and the IP's, for the free tier) is full.

``bench/bench_gate_mixed.py`` prints the same kind of figures for a longer run.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from baicai_sdk import Baicai, http_client
from baicai_sdk._errors import QuotaExceeded
from baicai_sdk._meter import Meter
from baicai_sdk._usage import UsageStore
from baicai_sdk.testing import wait_until

QUOTA_CODES = {40020, 40021, 40022, 40023, 40031, 40032, 40040, 40041}


@dataclass
class Run:
    emulator: Any
    sent: int = 0
    refusals: list[tuple[str, str, int | None]] = field(default_factory=list)
    """(who, model, the code the relay would have answered then) of every local refusal."""

    def client(self, key: str, tier: str, *, quota: str = "raise", timeout: float | None = None) -> Baicai:
        meter = Meter(tier=tier, quota=quota, max_wait=10.0, clock=self.emulator.clock)  # type: ignore[arg-type]
        http = http_client(meter=meter, quota=quota, max_wait=10.0, tier=tier)
        return Baicai(api_key=key, base_url=self.emulator.base_url, http_client=http, max_retries=0,
                      **({"timeout": timeout} if timeout is not None else {}))

    def ask(self, client: Baicai, who: str, model: str = "gpt-3.5-turbo", **kw: Any) -> Any:
        self.sent += 1
        try:
            return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "白菜 cabbage"}],
                                                  **kw)
        except QuotaExceeded:
            key = client.api_key
            self.refusals.append((who, model, self.emulator.app.quota_refusal(key, model, prompt_tokens=12)))
            return None
        except (openai.APITimeoutError, openai.APIError):
            return None  # relay errors and timeouts: the emulator's records say what happened

    def stream(self, client: Baicai, who: str, model: str, *, close_after: int | None = None, **kw: Any) -> None:
        stream = self.ask(client, who, model, stream=True, **kw)
        if stream is None:
            return
        try:
            for n, _chunk in enumerate(stream):
                if close_after is not None and n + 1 == close_after:
                    break
        except openai.APIError:
            pass  # a relay error inside the stream
        finally:
            stream.close()


def _kill_mid_stream(emulator: Any) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from baicai_sdk import Baicai
        c = Baicai(api_key={emulator.paid_key!r}, base_url={emulator.base_url!r}, tier="paid")
        s = c.chat.completions.create(model="gpt-4", stream=True, messages=[{{"role": "user", "content": "x"}}])
        for n, _ in enumerate(s):
            if n == 3:
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_mixed_workload_books_the_bill_and_refuses_only_what_the_relay_would(emulator: Any) -> None:
    run = Run(emulator)
    clock = emulator.clock
    free = run.client(emulator.free_key, "free", quota="wait")
    free_raise = run.client(emulator.free_key, "free")
    paid = run.client(emulator.paid_key, "paid")

    # 1. The free key, no max_tokens, 12 at once: in-flight reservations must not cause refusals.
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda _: run.ask(free, "free"), range(55)))
    assert run.refusals == []
    # 2. Up to its 60 gpt-3.5 requests and its one free gpt-4: then refused locally, as the relay would.
    for _ in range(5):
        run.ask(free_raise, "free", max_tokens=8)
    run.ask(free_raise, "free", "gpt-4-0125-preview", max_tokens=8)
    run.ask(free_raise, "free", max_tokens=8)
    run.ask(free_raise, "free", "gpt-4-0125-preview", max_tokens=8)
    assert [(who, model) for who, model, _ in run.refusals] == [
        ("free", "gpt-3.5-turbo"), ("free", "gpt-4-0125-preview")]
    # 3. The window's edge: half a second before the relay frees the oldest request, the gate waits (not refuses)
    # and sends when the relay has room — never before.
    oldest = min(r.time for r in emulator.state.relay_requests() if r.model == "gpt-3.5-turbo")
    clock.advance(oldest + 3600 - 0.5 - clock.now())
    run.ask(free, "free", max_tokens=8)
    # 4. The paid key on the same machine: the free key's full window (and the IP's, by the free tier's limits)
    # never refuses it.
    for i in range(40):
        run.ask(paid, "paid", "gpt-4" if i % 4 == 0 else "gpt-3.5-turbo", **({"max_tokens": 30} if i % 2 else {}))
    for i in range(30):  # streams; every second one closed after two chunks
        run.stream(paid, "paid", "gpt-3.5-turbo-16k", close_after=2 if i % 2 else None)
    emulator.configure(faults="stream_error=3", reply_tokens=30)
    for _ in range(10):
        run.stream(paid, "paid", "gpt-4")
    emulator.configure(faults="slow=0.4", reply_tokens=16)  # served and billed after the client gave up
    impatient = run.client(emulator.paid_key, "paid", timeout=0.15)
    for _ in range(4):
        run.ask(impatient, "paid", "gpt-4", max_tokens=20)
    run.stream(impatient, "paid", "gpt-4", max_tokens=20)
    emulator.configure(faults="")
    for _ in range(5):
        run.sent += 1
        paid.images.generate(model="dall-e-2", prompt="cabbage", size="256x256")
    emulator.configure(chunk_delay=0.05, reply_tokens=60)
    _kill_mid_stream(emulator)
    run.sent += 1
    emulator.configure(chunk_delay=0.0)

    records = wait_until(lambda: (lambda rs: rs if len(rs) == run.sent - 2 and all(r.finished for r in rs) else None)(
        emulator.state.relay_requests()), timeout=10, what="every request answered and billed")
    assert Meter().settle_orphans() == 1
    assert run.sent >= 150
    assert [r for r in records if r.relay_code in QUOTA_CODES] == []  # nothing let through that the relay refused
    # Every local refusal was one the relay would have made (free key, full windows); the paid key: none.
    assert [(who, code) for who, _, code in run.refusals] == [("free", 40020), ("free", 40021)]
    edge = records[61]  # after the free key's 55 + 5 + 1 (the two refusals never left the machine)
    assert (edge.model, edge.relay_code) == ("gpt-3.5-turbo", None) and edge.time >= oldest + 3600

    bill = sum(emulator.state.spent(k) for k in (emulator.free_key, emulator.paid_key))
    totals = UsageStore().summary()
    assert totals.pending == 0
    assert totals.cost_low - 1e-9 <= bill <= totals.cost_high + 1e-9, (totals, bill)
    assert totals.cost_cny == pytest.approx(bill, rel=0.01), (totals.cost_cny, bill)
