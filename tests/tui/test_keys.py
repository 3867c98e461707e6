"""Keys page: list (masked), add with a hidden input, cycle tier, switch active profile, remove — via KeyStore."""

from __future__ import annotations

import pytest
from conftest import FIXED_NOW, TZ, settle, table_rows, text_of

from baicai_sdk import KeyStore
from baicai_tui import make_app

SECRET = "baicai-abcdefghijklmnop1234567890wxyz"


@pytest.mark.slow  # drives the app through many screens
async def test_add_key_hidden_then_tier_use_remove() -> None:
    KeyStore().add("home", "baicai-homekey000000000000000000aaaa", tier="free")
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        table = app.query_one("#keys-table")
        assert table_rows(table) == [["●", "home", "baicai-…aaaa", "free", ""]]

        await pilot.press("a")
        await pilot.pause()
        key_input = app.screen.query_one("#field-key")
        assert key_input.password, "the key must be typed into a hidden input"
        app.screen.query_one("#field-name").value = "work"
        key_input.focus()
        await pilot.press(*SECRET)
        await pilot.press("enter")
        await settle(pilot)
        profiles = {p.name: p for p in KeyStore().list()}
        assert set(profiles) == {"home", "work"}
        assert profiles["work"].secret() == SECRET
        rows = table_rows(table)
        assert ["", "work", "baicai-…wxyz", "unknown", ""] in rows
        assert not any(SECRET in cell for row in rows for cell in row)
        assert SECRET not in app.export_screenshot()

        table.move_cursor(row=1)  # "work" (sorted by name)
        await pilot.press("t")
        await settle(pilot)
        assert KeyStore().get("work").tier == "free"
        await pilot.press("u")
        await settle(pilot)
        assert KeyStore().active().name == "work"
        assert "work" in text_of(app.query_one("#profile"))

        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert [p.name for p in KeyStore().list()] == ["home"]
        assert table_rows(table)[0][1] == "home"


@pytest.mark.slow  # drives the app through many screens
async def test_cancelled_add_changes_nothing() -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("5", "a")
        await pilot.pause()
        await pilot.press("escape")
        await settle(pilot)
        assert KeyStore().list() == []
        assert app.query_one("#keys-table").row_count == 0


async def test_no_keyring_is_said_in_words(no_keyring: None, baicai_home) -> None:  # type: ignore[no-untyped-def]
    """A headless machine: the Keys tab showed `keyring.backends.fail.Keyring`; it says what it means instead."""
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        backend = text_of(app.query_one("#keys-backend"))
        assert "no OS keyring on this machine" in backend and "BAICAI_SECRET_STORE=file" in backend
        assert str(baicai_home / "config" / "secrets.json") in backend and "keyring.backends" not in backend

        # Adding a key here: the form offers the file (said to be plain text, 0600) instead of failing on the
        # keyring with advice for the command line.
        await pilot.press("a")
        await settle(pilot)
        store = app.screen.query_one("#field-store")
        assert store.value == "file" and "plain text, 0600" in text_of(store.query_one("SelectCurrent Static"))
        app.screen.query_one("#field-name").value = "home"
        app.screen.query_one("#field-key").value = SECRET
        app.screen.query_one("#field-key").focus()
        await pilot.press("enter")
        await settle(pilot)
        (saved,) = KeyStore().list()
        assert saved.name == "home" and saved.store == "file" and saved.secret() == SECRET
        assert SECRET not in app.export_screenshot()
