"""`baicai demo`'s TUI half: sample traffic through baicai_sdk.Baicai to the emulator, figures moving, no setup."""

from __future__ import annotations

import time

from conftest import TZ, settle, text_of

from baicai_sdk._keys import KeyStore
from baicai_sdk._usage import UsageStore
from baicai_tui._demo import make_demo_app


async def test_demo_figures_move_with_nothing_configured(emulator) -> None:
    app = make_demo_app(emulator.base_url, emulator.free_key, tier="free", interval=0.3, tz=TZ,
                        refresh_interval=0.25, paid_key=emulator.paid_key)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, balance=True)
        seen = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(seen) < 3:
            await pilot.pause(0.25)
            seen.add(text_of(app.query_one("#today")))
        assert len(seen) >= 3, f"the figures did not move: {seen}"
        assert "demo · free · baicai-…" in text_of(app.query_one("#profile"))
        assert emulator.free_key not in app.export_screenshot()
        assert "余额 / Balance:" in text_of(app.query_one("#balance"))
    assert UsageStore().count() >= 2
    assert len(emulator.state.requests) >= 2, "the traffic went to the emulator, over a real socket"
    senders = {r.authorization for r in emulator.state.requests}
    assert senders == {f"Bearer {emulator.free_key}", f"Bearer {emulator.paid_key}"}, "free and paid traffic alternate"
    assert KeyStore().list() == [], "the demo stores no profile"
