"""Snapshots at a fixed clock, time zone and ledger (written through the SDK's Meter): stable across runs.

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest
from conftest import FIXED_NOW, TZ, settle

from baicai_tui import make_app

SIZE = (120, 34)


def _app():
    return make_app(clock=lambda: FIXED_NOW, tz=TZ)


async def _ready(pilot) -> None:
    await settle(pilot, balance=True)


@pytest.mark.slow  # renders whole pages
@pytest.mark.parametrize("keys", [(), ("2",), ("3", "m"), ("4",)], ids=["overview", "quota", "usage", "log"])
def test_page_snapshot(fixed_ledger, snap_compare, keys) -> None:
    async def run_before(pilot) -> None:
        await _ready(pilot)
        for key in keys:
            await pilot.press(key)
            await _ready(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)
