"""What a newcomer meets in an 80-column terminal: a footer that fits and speaks the chosen language, keys that
mean one thing everywhere (and that the help and the footer agree on), headers and titles that are not cut or
half-translated (issue 16's trial)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import FIXED_NOW, TZ, settle, text_of
from rich.cells import cell_len
from textual.widgets import Footer

from baicai_tui import make_app
from baicai_tui._i18n import set_lang
from baicai_tui.screens.modals import DiffModal, FormModal, HelpScreen

_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
_LATIN = re.compile(r"[A-Za-z]")


def _footer(app: Any) -> tuple[list[str], int]:
    """The footer's labels (descriptions, and the labels of key groups) and how far right its last item reaches."""
    footer = app.query_one(Footer)
    labels = [str(k.description) for k in footer.query("FooterKey") if str(k.description)]
    labels += [text_of(label) for label in footer.query("FooterLabel")]
    right = max((c.region.right for c in footer.children if c.region.width), default=0)
    return labels, right - footer.region.x


@pytest.mark.slow  # three languages × seven pages
async def test_every_footer_fits_80_columns_and_follows_the_language() -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ, lang="zh")  # the language chosen at start (--lang zh) …
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for lang in ("zh", "en", "both"):
            for page in "1234567":
                await pilot.press(page)
                await settle(pilot)
                labels, right = _footer(app)
                where = f"{lang} page {page}: {labels}"
                assert labels and right <= 80, where
                assert any("Help" in x or "帮助" in x for x in labels), where  # the way to every other key
                if lang == "zh":
                    assert not any(_LATIN.search(x) for x in labels), where
                elif lang == "en":
                    assert not any(_CJK.search(x) for x in labels), where
                else:
                    assert all(_CJK.search(x) and _LATIN.search(x) for x in labels), where
            await pilot.press("1")
            await pilot.press("l")  # … then switched with the language key: zh → en → both
            await settle(pilot)


@pytest.mark.slow  # every page, twice
async def test_r_refreshes_on_every_page_and_f_asks_for_dates() -> None:
    """`r` was "from–to" on the Usage page and "refresh" everywhere else."""
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        reloads = app.reloads
        await pilot.press("r")
        await settle(pilot)
        assert not isinstance(app.screen, FormModal) and app.reloads > reloads
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FormModal)
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        helped = _markdown(app.screen)
        assert "`f` 自定/From–to" in helped and "| r | 立即刷新 / refresh now |" in helped
        assert "`r`" not in helped  # no page gives r a meaning of its own
        body = app.screen.query_one("#help-body")
        assert body.region.right <= 80  # the table's right border is on screen


def _markdown(screen: Any) -> str:
    from textual.widgets import Markdown

    return str(screen.query_one(Markdown).source)


@pytest.mark.slow  # the Apply page in each language
async def test_apply_header_and_preview_title_read_whole_in_each_language() -> None:
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        table = app.query_one("#apps-table")
        headers = [(str(c.label), c.width) for c in table.columns.values()]
        assert "已检测到 / Found" in dict(headers)  # the whole label, not "已检测到 /"
        assert all(width >= cell_len(label) for label, width in headers), headers
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DiffModal)
        title = app.screen.diff_title
        zh, en = title.split(" / ", 1)
        assert zh.startswith("env 将要写入的改动 → 本地边车 http://127.0.0.1:") and "sk-baicai-…" in zh
        assert en.startswith("What will change for env → the local sidecar http://127.0.0.1:") and not _CJK.search(en)
        await pilot.press("n")
    from baicai_sdk import KeyStore

    KeyStore().add("main", "baicai-firsthour0000000000000000abcd", tier="paid")
    KeyStore().use("main")
    set_lang("en")
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("t", "enter")  # the relay target names the relay, in English only
        await settle(pilot)
        assert isinstance(app.screen, DiffModal)
        assert app.screen.diff_title.startswith("What will change for env → the BaicaiGPT relay ")
        assert "baicai-…abcd" in app.screen.diff_title and not _CJK.search(app.screen.diff_title)
