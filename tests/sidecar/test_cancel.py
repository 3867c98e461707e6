"""An app that gives up on a non-streamed request cancels it upstream (issue 14, item 8): with the emulator slow to
answer (``latency`` fault), an app that times out and retries leaves every attempt cancelled at the relay — none
answered, none billed — where before each ran on and was billed in full."""

from __future__ import annotations

import threading
import time
from typing import Any

import openai
import pytest

from baicai_sdk.testing import wait_until
from baicai_sidecar._server import SidecarServer


def _records(emulator: Any, expected: int) -> list[Any]:
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in list(emulator.state.requests) if r.path == "/v1/chat/completions"]
        if (len(found) >= expected and all(r.status for r in found)) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.slow
def test_an_app_that_gives_up_cancels_the_upstream_request(emulator: Any, sidecar: SidecarServer, app_token: str,
                                                           ledger_rows: Any) -> None:
    emulator.configure(faults="latency=2")
    app = openai.OpenAI(api_key=app_token, base_url=sidecar.base_url, timeout=0.4, max_retries=2)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        app.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started < 4
    records = _records(emulator, 3)
    assert len(records) == 3  # the app's first try and its two retries
    assert [r.outcome for r in records] == ["cancelled"] * 3, [(r.outcome, r.status) for r in records]
    assert sum(r.cost for r in records) == 0 and all(r.completion_tokens == 0 for r in records)

    def settled() -> list[dict[str, Any]] | None:
        found = ledger_rows()
        return found if len(found) == 3 and all(r["status"] != "pending" for r in found) else None

    rows = wait_until(settled, what="one settled ledger row per attempt")
    # nothing recorded as answered: each attempt the app gave up on is settled as cancelled
    assert [row["status"] for row in rows] == ["cancelled"] * 3, [row["status"] for row in rows]


def test_an_app_that_waits_gets_its_answer(emulator: Any, sidecar: SidecarServer, app_token: str) -> None:
    emulator.configure(faults="latency=0.3")
    app = openai.OpenAI(api_key=app_token, base_url=sidecar.base_url, timeout=10, max_retries=0)
    answer = app.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    assert [r.outcome for r in _records(emulator, 1)] == ["ok"]


@pytest.mark.slow
def test_stopping_an_embedded_sidecar_mid_stream_cancels_the_stream_and_shuts_down(
        emulator: Any, sidecar: SidecarServer, app_token: str, ledger_rows: Any) -> None:
    """``SidecarServer.stop()`` with a stream in flight: the stream gets the grace a Ctrl-C gives, is cancelled
    (its row: cancelled) and the app's shutdown still runs — it closes the upstream connections."""
    emulator.configure(faults="chunk_delay=0.3")
    first_chunk = threading.Event()
    outcome: list[BaseException | None] = []

    def stream() -> None:
        app = openai.OpenAI(api_key=app_token, base_url=sidecar.base_url, timeout=30, max_retries=0)
        try:
            for _ in app.chat.completions.create(model="gpt-3.5-turbo", stream=True,
                                                 messages=[{"role": "user", "content": "写一首长诗"}]):
                first_chunk.set()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the app sees is the point
            outcome.append(exc)

    app_thread = threading.Thread(target=stream)
    app_thread.start()
    assert first_chunk.wait(10)
    proxy = sidecar.proxy
    assert proxy.transport is not None
    sidecar.stop()
    app_thread.join(10)
    assert outcome and isinstance(outcome[0], openai.APIError), outcome  # cut short, not a silent success
    assert proxy.transport is None, "the app's shutdown did not run: upstream connections left open"
    assert [row["status"] for row in ledger_rows()] == ["cancelled"]
