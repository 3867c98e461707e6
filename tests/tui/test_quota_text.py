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
