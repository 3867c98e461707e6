"""Shared pieces for the TUI tests: a fixed clock and time zone, ledgers, and helpers to read the screen."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # _fill, shared with bench/bench_tui.py

TZ = dt.timezone(dt.timedelta(hours=8), "CST")
# 2027-01-15 16:00:00 +08:00: mid-afternoon, mid-month, so "today" and "this month" differ from "all".
FIXED_NOW = dt.datetime(2027, 1, 15, 16, 0, 0, tzinfo=TZ).timestamp()


@pytest.fixture(autouse=True)
def _file_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """No keyring daemon in CI: profiles keep their secrets in the 0600 file."""
    monkeypatch.setenv("BAICAI_SECRET_STORE", "file")
    # Profiles without a base URL would send the balance query to the real relay: point at a closed local port.
    monkeypatch.setenv("BAICAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("BAICAI_LANG", raising=False)
    from baicai_tui import _i18n

    _i18n.set_lang("both")


@pytest.fixture
def fixed_ledger(baicai_home: Path) -> Path:
    import _fill
    from baicai_sdk._paths import ledger_path

    path = ledger_path()
    _fill.write(path, FIXED_NOW, _fill.sample(FIXED_NOW))
    return path


async def settle(pilot: Any, rounds: int = 3, *, balance: bool = False) -> None:
    """Let workers finish and their results reach the screen.

    The balance worker is a relay call (seconds against a closed port): waited for only when asked.
    """
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        workers = [w for w in pilot.app.workers if balance or w.group != "balance"]
        try:
            await pilot.app.workers.wait_for_complete(workers)
        except WorkerCancelled:
            pass  # an exclusive worker replaced by a newer one: the newer one is waited for next round
        await pilot.pause()


def text_of(widget: Any) -> str:
    content = widget.content if hasattr(widget, "content") else widget.render()
    return content.plain if hasattr(content, "plain") else str(content)


def table_rows(table: Any) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
