"""App-wide behaviour: every page opens by key, help, language switch, errors shown as status, CLI wiring."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import FIXED_NOW, TZ, settle, text_of

from baicai_tui import make_app
from baicai_tui.app import PAGES


@pytest.mark.slow  # drives the whole app through many screens
async def test_every_page_opens_by_number_and_help_by_question_mark(fixed_ledger) -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for i, (pid, _, _, _) in enumerate(PAGES):
            await pilot.press(str(i + 1))
            await settle(pilot)
            assert app.active_page.id == pid
            assert app.focused is not None and app.active_page in app.focused.ancestors
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "Screen"


async def test_mouse_switches_tabs(fixed_ledger) -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.click("#--content-tab-tab-ledger")
        await settle(pilot)
        assert app.active_page.id == "ledger"


@pytest.mark.slow  # drives the whole app through many screens
async def test_language_cycles_both_zh_en(fixed_ledger) -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert text_of(app.query_one("#today")).startswith("今日 / Today:")
        await pilot.press("l")
        await settle(pilot)
        assert text_of(app.query_one("#today")).startswith("今日:")
        await pilot.press("l")
        await settle(pilot)
        assert text_of(app.query_one("#today")).startswith("Today:")
        await pilot.press("l")
        await settle(pilot)
        assert text_of(app.query_one("#today")).startswith("今日 / Today:")


@pytest.mark.slow  # drives the whole app through many screens
async def test_unreachable_relay_is_a_status_not_a_crash(fixed_ledger, monkeypatch) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-unreachable00000000000000zzzz")
    monkeypatch.setenv("BAICAI_BASE_URL", "http://127.0.0.1:9/v1")  # discard port: nothing listens
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, balance=True)
        balance = text_of(app.query_one("#balance"))
        assert balance.startswith("余额 / Balance:")
        assert "zzzz" not in balance or "…zzzz" in balance
        assert app.is_running
        assert "baicai-unreachable00000000000000zzzz" not in app.export_screenshot()


def test_baicai_tui_is_a_subcommand_and_imports_textual_lazily() -> None:
    out = subprocess.run([sys.executable, "-m", "baicai_sdk.cli", "tui", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--lang" in out
    code = ("import sys, argparse; from baicai_tui._cli import register; "
            "p = argparse.ArgumentParser(); register(p.add_subparsers()); "
            "print('textual' in {m.split('.')[0] for m in sys.modules})")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


@pytest.mark.slow  # drives the whole app through many screens
async def test_log_tab_headers_fit_120_columns_and_help_matches_the_footer(fixed_ledger) -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        shown = _screen_text(app)
        for header in ("时间", "Time", "Model", "Source", "Status", "输入+输出", "in+out", "Cost", "Latency", "Code",
                       "Meaning"):
            assert header in shown, header
        assert "40020" in shown  # the code column is on screen at 120 columns
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = app.screen.query_one("Markdown")._markdown
        for key in ("n/pgdn", "p/pgup", "/", "enter", "z", "t", "a", "u", "x/del", "s", "i", "v", "d", "h", "m", "e",
                    "j"):
            assert f"`{key}`" in help_text, key  # the footer shows pgdn/pgup: the help names them too


async def test_apply_descriptions_keep_their_brackets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        assert "[model_providers.baicai]" in _screen_text(app)


def _screen_text(app) -> str:
    """What the terminal shows, as text (from the SVG screenshot's text runs)."""
    import html
    import re

    return html.unescape("".join(re.findall(r">([^<>]*)</text>", app.export_screenshot()))).replace("\xa0", " ")


def test_the_dashboard_without_a_terminal_says_so_instead_of_writing_escape_codes(baicai_home) -> None:
    """`baicai tui < /dev/null | cat` wrote raw escape codes into the pipe until killed."""
    result = subprocess.run([sys.executable, "-m", "baicai_sdk.cli", "tui"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert "needs a terminal" in result.stderr and "baicai usage" in result.stderr and "\x1b[" not in result.stderr
