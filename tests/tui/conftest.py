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

    from baicai_sdk.integration import ledger_path

    path = ledger_path()
    _fill.write(path, FIXED_NOW, _fill.sample(FIXED_NOW))
    return path


async def settle(pilot: Any, rounds: int = 3, *, balance: bool = False) -> None:
    """Let workers finish and their results reach the screen.

    The balance worker is a relay call (seconds against a closed port): waited for only when asked.
    """
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        for worker in [w for w in pilot.app.workers if w.group != "demo" and (balance or w.group != "balance")]:
            try:
                await worker.wait()
            except WorkerCancelled:
                pass  # an exclusive worker replaced by a newer one: the newer one is waited for next round
        await pilot.pause()


def text_of(widget: Any) -> str:
    content = widget.content if hasattr(widget, "content") else widget.render()
    return content.plain if hasattr(content, "plain") else str(content)


def table_rows(table: Any) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
def sdk_ledger(emulator: Any, baicai_home: Path) -> dict[str, Any]:
    """A ledger written by real SDK calls to the emulator: both tiers, a stream, a relay limit code."""
    from baicai_sdk import Baicai

    free = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, max_retries=0, quota="off")
    paid = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, max_retries=0, quota="off")
    hello = [{"role": "user", "content": "你好，白菜"}]
    for _ in range(3):
        free.chat.completions.create(model="gpt-3.5-turbo", messages=hello, max_tokens=20)
    free.chat.completions.create(model="gpt-4-0125-preview", messages=hello, max_tokens=20)
    codes = []
    try:  # the free tier's gpt-4 hour allows one request: the relay answers 40021
        free.chat.completions.create(model="gpt-4-0125-preview", messages=hello, max_tokens=20)
    except Exception as exc:  # noqa: BLE001 - whichever class, the ledger records the code
        codes.append(exc)
    paid.chat.completions.create(model="gpt-4", messages=hello, max_tokens=30)
    for _ in paid.chat.completions.create(model="gpt-3.5-turbo", messages=hello, max_tokens=30, stream=True):
        pass
    free.close()
    paid.close()
    return {"emulator": emulator, "errors": codes}
