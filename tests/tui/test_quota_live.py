"""The Quota tab under live traffic: a steady list, no error toast, the windows the ledger says."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import settle, text_of

from baicai_sdk import UsageStore
from baicai_tui import make_app

pytestmark = pytest.mark.slow


def _write_rows(stop: threading.Event, written: list[int]) -> None:
    """A ledger write every few milliseconds, the way a busy script's Meter writes; a second family joins later."""
    import _fill

    from baicai_sdk import Meter, describe_request
    from baicai_sdk.integration import ledger_path

    meter = Meter("sdk", ledger_path=ledger_path(), quota="off")
    started = time.monotonic()
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - started
            models = ["gpt-3.5-turbo"] + (["gpt-4-0125-preview"] if elapsed > 3 else [])
            for model in models:
                body = {"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
                res = meter.reserve(_fill.PAID_KEY, describe_request("/v1/chat/completions", body))
                res.settle(prompt_tokens=3, completion_tokens=5, status="ok")  # type: ignore[union-attr]
                written[0] += 1
            time.sleep(0.02)
    finally:
        meter.close()


async def test_quota_tab_stays_steady_while_the_ledger_is_written(baicai_home) -> None:
    app = make_app(refresh_interval=0.05)
    stop = threading.Event()
    written = [0]
    writer = threading.Thread(target=_write_rows, args=(stop, written), daemon=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        assert app.active_page.id == "quota"
        writer.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await pilot.pause(0.05)
                status = app.query_one("#status")
                assert not status.has_class("-error"), text_of(status)
                assert not app._notifications, [n.message for n in app._notifications]
        finally:
            stop.set()
            writer.join(5)
        app.action_refresh()
        await settle(pilot, 5)
        assert written[0] > 100, "the writer kept the ledger busy"
        expected = [w.family for w in UsageStore().windows(per_key=True)]  # this IP's windows, then each key's
        assert len(expected) >= 2, expected
        shown = [text_of(app.query_one(f"#window-{i}")).splitlines()[0].split(" · ")[0]
                 for i in range(len(expected))]
        assert shown == expected
        visible = [w for w in app.query(".window") if w.display]
        assert len(visible) == len(expected), "no stale or duplicate window cards"
        assert not app.query_one(".empty").display
        assert not app._notifications
