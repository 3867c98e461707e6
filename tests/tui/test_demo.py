"""`baicai demo`'s TUI half: sample traffic through baicai_sdk.Baicai to the emulator, figures moving, no setup."""

from __future__ import annotations

import time

import pytest
from conftest import TZ, settle, text_of

from baicai_sdk import KeyStore, UsageStore
from baicai_tui._demo import make_demo_app


@pytest.mark.slow  # drives the whole app through many screens
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


@pytest.mark.slow  # runs the demo app
async def test_demo_apply_tab_writes_only_into_the_demos_own_home(emulator, baicai_home, tmp_path, monkeypatch) -> None:
    """The demo's tokens vanish at exit, so what it writes must too: the user's real app configs stay untouched."""
    from conftest import table_rows

    home = tmp_path / "user"
    real_llm = home / ".config" / "io.datasette.llm"
    real_llm.mkdir(parents=True)
    (home / ".codex").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    before = sorted(p.relative_to(home) for p in home.rglob("*"))

    app = make_demo_app(emulator.base_url, emulator.free_key, tier="free", interval=60, tz=TZ)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        note = text_of(app.query_one("#apply-sandbox"))
        assert "demo-home" in note and "your real app configs are left alone" in note
        rows = table_rows(app.query_one("#apps-table"))
        names = [r[0] for r in rows]
        assert all(r[1] == "否 / no" for r in rows), "nothing of the real machine is detected in the demo"
        assert not any(str(home) in r[2] for r in rows)
        app.query_one("#apps-table").move_cursor(row=names.index("llm"))
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "DiffModal", text_of(app.query_one("#status"))
        await pilot.press("y")
        await settle(pilot)
        written = text_of(app.query_one("#apply-status"))
        assert written.startswith("已写入 / Written") and "demo-home" in written
        assert list((baicai_home / "data" / "demo-home").rglob("extra-openai-models.yaml"))

        await pilot.press("z", "y")  # undo in the demo finds the demo's own record
        await settle(pilot)
        assert text_of(app.query_one("#apply-status")).startswith("已撤销 / Undone")
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before


@pytest.mark.slow  # runs the demo app
async def test_demo_keys_tab_agrees_with_the_overview(emulator, baicai_home) -> None:
    from conftest import table_rows

    app = make_demo_app(emulator.base_url, emulator.free_key, tier="free", interval=60, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "demo · free · baicai-…" in text_of(app.query_one("#profile"))
        await pilot.press("5")
        await settle(pilot)
        rows = table_rows(app.query_one("#keys-table"))
        assert [r[:2] for r in rows] == [["●", "demo"]]
        assert emulator.free_key not in app.export_screenshot()
        assert "never stored" in text_of(app.query_one("#keys-backend"))


def test_the_demo_never_looks_at_the_users_own_sidecar(emulator, monkeypatch) -> None:
    """On the default port (or BAICAI_SIDECAR_URL) the demo's Sidecar tab polled the user's real sidecar, which
    refused it and logged a line every refresh; `s` would have tried to start a second one on the same port."""
    monkeypatch.setenv("BAICAI_SIDECAR_URL", "http://127.0.0.1:8765")
    app = make_demo_app(emulator.base_url, emulator.free_key, tier="free", interval=60, tz=TZ)
    try:
        url = app.services.sidecar_url
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":8765"), url
    finally:
        app.services.close()


@pytest.mark.slow  # runs the demo app
async def test_the_demos_own_key_is_said_to_be_fixed(emulator, baicai_home) -> None:
    """t / u / x on the demo's key: not "no profile named 'demo' … add it with baicai key add demo" (there is no
    such profile to add), but that the demo's key cannot be changed — and nothing is written."""
    app = make_demo_app(emulator.base_url, emulator.free_key, tier="free", interval=60, tz=TZ)
    async with app.run_test(size=(100, 36)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        for key in ("t", "u", "x"):
            app.clear_notifications()
            await pilot.press(key)
            await settle(pilot)
            said = " ".join(str(n.message) for n in app._notifications)
            assert "the demo's key cannot be changed" in said and "演示密钥不能修改" in said, (key, said)
            assert "no profile named" not in said and app.screen is app.screen_stack[0], key  # no dialog opened
        assert KeyStore().list() == []


@pytest.mark.slow  # drives the app
async def test_the_remove_question_is_shown_in_full_at_100_columns(baicai_home) -> None:
    from test_app import _screen_text

    from baicai_tui import make_app

    KeyStore().add("work-laptop", "baicai-abcdefghijklmnop1234567890wxyz", tier="paid")
    app = make_app(tz=TZ)
    async with app.run_test(size=(100, 36)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        shown = _screen_text(app)
        assert "(baicai-…wxyz)?" in shown and "（baicai-…wxyz）？" in shown, shown
        await pilot.press("n")
        await settle(pilot)
    assert [p.name for p in KeyStore().list()] == ["work-laptop"]
