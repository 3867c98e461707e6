"""Apply page: the diff is shown before anything is written; y writes, n writes nothing; undo restores."""

from __future__ import annotations

import pytest
from conftest import FIXED_NOW, TZ, settle, table_rows, text_of

from baicai_sidecar._tokens import TokenStore
from baicai_tui import make_app


@pytest.mark.slow  # drives the whole app through many screens
async def test_diff_first_then_write_then_undo(tmp_path, monkeypatch) -> None:
    home = tmp_path / "user"
    llm_dir = home / ".config" / "io.datasette.llm"
    llm_dir.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("LLM_USER_PATH", raising=False)
    models = llm_dir / "extra-openai-models.yaml"

    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        rows = table_rows(app.query_one("#apps-table"))
        names = [r[0] for r in rows]
        assert "llm" in names and rows[names.index("llm")][1] == "是 / yes"
        app.query_one("#apps-table").move_cursor(row=names.index("llm"))

        # Undo before anything was applied: the SDK's bilingual error becomes the status line, not a crash.
        await pilot.press("z", "y")
        await settle(pilot)
        assert "nothing was applied for llm" in text_of(app.query_one("#status"))
        assert app.is_running

        # Preview, then refuse: nothing is written.
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "DiffModal"
        diff = app.screen.diff
        token = TokenStore().get("llm")
        assert token and token not in diff and "extra-openai-models.yaml" in diff and "+" in diff
        await pilot.press("n")
        await settle(pilot)
        assert not models.exists()

        # Preview again and write.
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert models.exists() and "baicai-gpt-3.5-turbo" in models.read_text("utf-8")
        assert token in (llm_dir / "keys.json").read_text("utf-8")
        assert text_of(app.query_one("#apply-status")).startswith("已写入 / Written")
        assert token not in app.export_screenshot()

        # Undo (confirmed): the files we created are gone again.
        await pilot.press("z")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmModal"
        await pilot.press("y")
        await settle(pilot)
        assert not models.exists()
        assert text_of(app.query_one("#apply-status")).startswith("已撤销 / Undone")
