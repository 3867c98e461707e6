"""The Quota page's text for one window: bars that line up in terminal cells, and a countdown that only says
"next free slot" when no slot is free (found trying `baicai demo` as a new user)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.cells import cell_len

from tui._i18n import get_lang, set_lang
from tui.screens.quota import window_text
from tui.services import WindowView

NOW = 1_800_000_000.0


@pytest.fixture(params=["both", "zh", "en"])
def lang(request: pytest.FixtureRequest) -> Iterator[str]:
    before = get_lang()
    set_lang(request.param)
    yield request.param
    set_lang(before)


def _window(requests_used: int, requests_limit: int = 60) -> WindowView:
    return WindowView(family="gpt-3.5", tier="free", requests_used=requests_used, requests_limit=requests_limit,
                      tokens_used=400, tokens_limit=10_000, next_free_at=NOW + 59 * 60 + 48, runs_out_at=None)


def test_both_bars_start_in_the_same_terminal_column(lang: str) -> None:
    lines = window_text(_window(6), NOW, None).plain.splitlines()
    requests_line, tokens_line = lines[1], lines[2]
    assert "tokens" in tokens_line
    bar_at = [cell_len(line[: line.index(next(c for c in line if c in "█░"))]) for line in (requests_line, tokens_line)]
    assert bar_at[0] == bar_at[1], (lang, requests_line, tokens_line)


def test_next_free_slot_only_when_the_window_is_full() -> None:
    set_lang("en")
    try:
        partly = window_text(_window(6), NOW, None).plain
        full = window_text(_window(60), NOW, None).plain
    finally:
        set_lang(None)
    assert "next free slot" not in partly and "slots free; oldest frees in 59:48" in partly
    assert "next free slot in 59:48" in full and "used up" in full


def test_a_projection_on_another_day_gives_the_date() -> None:
    import datetime as dt

    from tui.screens.quota import when_text

    tz = dt.timezone(dt.timedelta(hours=8))
    midnight = dt.datetime.fromtimestamp(NOW, tz).replace(hour=23, minute=50).timestamp()
    assert when_text(midnight + 5 * 60, midnight, tz) == "23:55"
    tomorrow = dt.datetime.fromtimestamp(midnight + 20 * 60, tz)
    assert when_text(midnight + 20 * 60, midnight, tz) == tomorrow.strftime("%m-%d 00:10")


def test_a_projection_only_from_a_pace_that_can_run_the_window_out() -> None:
    from baicai_sdk._usage import project_exhaustion

    def runs_out(pace_per_hour: float, used: int, samples: int = 10) -> float | None:
        return project_exhaustion(NOW, pace_per_hour / 3600, 0.0, used, 60, 0, None, samples=samples)[0]

    assert runs_out(120, used=30) == pytest.approx(NOW + 30 * 30)  # 2 a minute: the other 30 in 15 min
    assert runs_out(24, used=58) is None  # 24 an hour never fills a sliding hour of 60, however close it is now
    assert runs_out(120, used=30, samples=2) is None  # two requests are not a pace
    assert runs_out(60, used=0) == pytest.approx(NOW + 3600)  # exactly the limit's pace: at most an hour ahead


def test_a_free_gpt4_card_says_which_models_its_limit_is_for(baicai_home: object) -> None:
    """"gpt-4 · free 0/1" read as "the free tier may use gpt-4": the card names the models the catalogue lets a free
    key use (newcomer trial, finding 5); the paid card and the gpt-3.5 line's models are the catalogue's too."""
    from baicai_sdk import load_catalog
    from tui.services import Services

    catalog = load_catalog(fresh=True)
    services = Services(clock=lambda: NOW, demo_credentials=("baicai-demo-aaaaaaaaaaaaaaaa", "http://127.0.0.1:9/v1",
                                                              "free"))
    views = {(w.family, w.tier): w for w in services.windows()}
    gpt4 = views[("gpt-4", "free")]
    assert gpt4.free_models[0] == "gpt-4-0125-preview" and "gpt-4" not in gpt4.free_models
    assert all(catalog.allowed_on_free(m) and catalog.family(m) == "gpt-4" for m in gpt4.free_models)
    assert views[("dall-e-3", "free")].free_models == ()  # not available at all: said by the card already
    set_lang("en")
    try:
        text = window_text(gpt4, NOW, None).plain
        paid = window_text(WindowView(family="gpt-4", tier="paid", requests_used=0, requests_limit=200, tokens_used=0,
                                      tokens_limit=None, next_free_at=None, runs_out_at=None), NOW, None).plain
    finally:
        set_lang(None)
    assert "free tier: only gpt-4-0125-preview, gpt-4-1106-vision-preview, gpt-4-1106-preview (the other models " \
           "need a paid key)" in text
    assert "only" not in paid
