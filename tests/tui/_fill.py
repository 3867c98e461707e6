"""Deterministic ledgers for TUI tests and the benchmark, written through the SDK's own write side (Meter).

Real SDK calls to the emulator fill the ledger in the flow tests; snapshots need rows at fixed times, which
only a Meter with an injected clock can give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FREE_KEY = "baicai-fixedfreekey0000000000001234"
PAID_KEY = "baicai-fixedpaidkey0000000000005678"


@dataclass(frozen=True)
class Spec:
    ago: float  # seconds before `now`
    model: str
    prompt: int
    completion: int
    key: str = FREE_KEY
    source: str = "sdk"
    app: str | None = None
    status: str = "ok"
    code: int | None = None
    latency_ms: float = 420.0


def write(ledger: Path, now: float, specs: list[Spec]) -> None:
    from baicai_sdk import Meter, describe_request

    current = [now]
    meters: dict[str, Meter] = {}
    for spec in sorted(specs, key=lambda s: -s.ago):  # oldest first, as real traffic gets its ids
        current[0] = now - spec.ago
        meter = meters.get(spec.source)
        if meter is None:
            meter = meters[spec.source] = Meter(spec.source, ledger_path=ledger, quota="off",
                                                clock=lambda: current[0])
        body = {"model": spec.model, "messages": [{"role": "user", "content": "x"}], "max_tokens": spec.completion}
        info = describe_request("/v1/chat/completions", body)
        res = meter.reserve(spec.key, info, app=spec.app)
        res.settle(prompt_tokens=spec.prompt, completion_tokens=spec.completion, status=spec.status,  # type: ignore[union-attr]
                   relay_code=spec.code, latency_ms=spec.latency_ms)
    for meter in meters.values():
        meter.close()


def sample(now: float) -> list[Spec]:
    """A small, varied day: two keys, sidecar apps, a limit code, a gpt-4 call."""
    return [
        Spec(30, "gpt-3.5-turbo", 120, 80),
        Spec(300, "gpt-3.5-turbo", 900, 600),
        Spec(600, "gpt-4-0125-preview", 400, 300),
        Spec(900, "gpt-3.5-turbo", 50, 0, status="error", code=40020),
        Spec(1200, "gpt-3.5-turbo", 2000, 1500, source="sidecar", app="lobechat"),
        Spec(2400, "gpt-3.5-turbo", 300, 200, key=PAID_KEY, source="sidecar", app="chatbox"),
        Spec(3000, "gpt-4", 1000, 500, key=PAID_KEY),
        Spec(5 * 3600, "gpt-3.5-turbo", 700, 700, key=PAID_KEY),
    ]
