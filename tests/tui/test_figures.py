"""Overview, quota, usage and expense log against a ledger filled by real SDK calls to the emulator:
every figure on screen must equal what the SDK's UsageStore says."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time

import pytest
from conftest import TZ, settle, table_rows, text_of

from baicai_sdk import Meter, UsageStore, describe_request
from baicai_tui import make_app
from baicai_tui.widgets._format import cny, count, countdown


def _midnight(now: float) -> float:
    return dt.datetime.fromtimestamp(now, TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _month(now: float) -> float:
    return dt.datetime.fromtimestamp(now, TZ).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


@pytest.mark.slow  # drives the app through many screens
async def test_overview_equals_usage_store(sdk_ledger) -> None:
    now = time.time() + 1
    store = UsageStore()
    today, month = store.summary(since=_midnight(now)), store.summary(since=_month(now))
    by_model = store.report("model", since=_month(now), tz=TZ)
    assert today.requests >= 7 and today.cost_cny > 0

    app = make_app(clock=lambda: now, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert text_of(app.query_one("#today")) == (
            f"今日 / Today: {cny(today.cost_cny)} · {count(today.requests)} 次请求 / requests · "
            f"{count(today.total_tokens)} tokens")
        assert text_of(app.query_one("#month")).startswith(f"本月 / This month: {cny(month.cost_cny)} · "
                                                           f"{count(month.requests)} ")
        assert table_rows(app.query_one("#by-model")) == [
            [r.key, count(r.requests), count(r.total_tokens), cny(r.cost_cny)] for r in by_model]
        assert {r.key for r in by_model} >= {"gpt-3.5-turbo", "gpt-4", "gpt-4-0125-preview"}


@pytest.mark.slow  # drives the app through many screens
async def test_quota_windows_equal_usage_store_and_count_down(sdk_ledger) -> None:
    now = [time.time() + 1]
    app = make_app(clock=lambda: now[0], tz=TZ)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)  # started: a key pressed while the overview is still being built can stall the pilot
        await pilot.press("2")
        await settle(pilot)
        windows = UsageStore().windows(now=now[0], per_key=True)  # this IP's window, then each key's own
        page = app.page("quota")
        assert [(w.family, w.requests_used, w.tokens_used) for w in page.views] == \
               [(w.family, w.requests_used, w.tokens_used) for w in windows]
        assert any(w.key for w in page.views) and any(w.key in text_of(app.query_one(f"#window-{i}"))
                                                      for i, w in enumerate(page.views) if w.key)
        gpt35 = next(i for i, w in enumerate(windows) if w.family == "gpt-3.5")
        w = windows[gpt35]
        shown = text_of(app.query_one(f"#window-{gpt35}"))
        assert f"{count(w.requests_used)}/{count(w.requests_limit)}" in shown
        if w.tokens_limit:
            assert f"{count(w.tokens_used)}/{count(w.tokens_limit)}" in shown
        assert w.next_free_at is not None
        minutes = int((w.next_free_at - now[0]) // 60)  # the oldest request was made moments ago: about 59
        # the page rounds the countdown up (countdown()): compare its own text, not a floor of the minutes
        assert minutes >= 55 and f"有空位，最早一笔释放于 / slots free; oldest frees in {countdown(w.next_free_at - now[0])}" \
            in shown
        # 4 requests in 10 minutes is 24 an hour: at that pace the sliding hour never holds 60, so no "runs out at"
        assert "按此速度" not in shown
        now[0] += 60  # the injected clock moves: the countdown follows on the next tick, no reload needed
        page.tick()
        await pilot.pause()
        assert f"oldest frees in {countdown(w.next_free_at - now[0])}" in text_of(app.query_one(f"#window-{gpt35}"))


@pytest.mark.slow  # drives the app through many screens
async def test_usage_groups_ranges_and_export(sdk_ledger, baicai_home) -> None:
    now = time.time() + 1
    store = UsageStore()
    app = make_app(clock=lambda: now, tz=TZ)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        since = (dt.datetime.fromtimestamp(_midnight(now), TZ) - dt.timedelta(days=29)).timestamp()
        for key, by in (("d", "day"), ("h", "hour"), ("m", "model"), ("k", "key"), ("s", "source")):
            await pilot.press(key)
            await settle(pilot)
            expected = store.report(by, since=since, tz=TZ)
            assert table_rows(app.query_one("#usage-table")) == [
                [r.key, count(r.requests), count(r.total_tokens), cny(r.cost_cny)] for r in expected], by
            if by == "key":  # keys appear masked, never in full
                labels = [r[0] for r in table_rows(app.query_one("#usage-table"))]
                assert all("…" in label for label in labels) and len(labels) == 2
                assert sdk_ledger["emulator"].free_key not in app.export_screenshot()

        await pilot.press("m", "g")  # next range: this month
        await settle(pilot)
        assert "本月 / this month" in text_of(app.query_one("#usage-title"))
        assert table_rows(app.query_one("#usage-table"))[0][0] == store.report("model", since=_month(now), tz=TZ)[0].key

        await pilot.press("e")
        await settle(pilot)
        path = app.page("usage").last_export
        assert path.is_relative_to(baicai_home) and path.suffix == ".csv"
        rows = list(csv.reader(path.open(encoding="utf-8")))
        expected = store.report("model", since=_month(now), tz=TZ)
        assert rows[0] == ["model", "requests", "tokens", "cost_cny"]
        assert [(r[0], int(r[1]), int(r[2])) for r in rows[1:]] == \
               [(e.key, e.requests, e.total_tokens) for e in expected]
        await pilot.press("j")
        await settle(pilot)
        data = json.loads(app.page("usage").last_export.read_text("utf-8"))
        assert [d["label"] for d in data] == [e.key for e in expected]
        assert [round(d["cost_cny"], 9) for d in data] == [round(e.cost_cny, 9) for e in expected]


@pytest.mark.slow  # drives the app through many screens
async def test_expense_log_pages_and_filters(sdk_ledger) -> None:
    retry = Meter("sdk", tier="paid").reserve(  # an app's first retry: its own row, which says so
        sdk_ledger["emulator"].paid_key, describe_request("/v1/chat/completions", {"model": "gpt-4", "messages": []}),
        attempt=1)
    retry.settle(prompt_tokens=5, completion_tokens=5)  # type: ignore[union-attr]
    now = time.time() + 1
    store = UsageStore()
    app = make_app(clock=lambda: now, tz=TZ)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        total = store.count()
        newest = store.rows(0, 50)
        rows = table_rows(app.query_one("#ledger-table"))
        assert len(rows) == total
        assert [r[1] for r in rows] == [x.model for x in newest]
        assert [r[5] for r in rows] == [x.cost_mark + cny(x.cost_cny) for x in newest]
        assert [r[4] for r in rows] == [f"{count(x.prompt_tokens)}+{count(x.completion_tokens)}" for x in newest]
        assert f"{count(total)} 条记录" in text_of(app.query_one("#ledger-position"))
        assert rows[0][8] == "第 1 次重试 / retry 1" and not any("重试" in r[8] for r in rows[1:])
        coded = [r for r in rows if r[7]]
        assert coded and coded[0][7] == "40021" and "gpt-4" in coded[0][8]  # the code and its meaning

        app.query_one("#filter-model").value = "GPT-4"  # a part of the name, any case: gpt-4-0125-preview too
        app.query_one("#filter-model").focus()
        await pilot.press("enter")
        await settle(pilot)
        rows = table_rows(app.query_one("#ledger-table"))
        assert {r[1] for r in rows} == {"gpt-4", "gpt-4-0125-preview"}
        assert len(rows) == sum(1 for x in newest if "gpt-4" in x.model) == store.count(model="gpt-4")

        app.query_one("#filter-model").value = ""
        app.query_one("#filter-status").value = "error"
        app.query_one("#filter-status").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert len(table_rows(app.query_one("#ledger-table"))) == store.count(status="error") >= 1


@pytest.mark.slow  # another process writes
async def test_figures_follow_another_process_writing(sdk_ledger) -> None:
    """The ledger changes underneath (another process): the app reloads on its next change check."""
    from baicai_sdk import Baicai

    emulator = sdk_ledger["emulator"]
    clock = [time.time() + 1]
    app = make_app(clock=lambda: clock[0], tz=TZ, refresh_interval=0.1)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        before = text_of(app.query_one("#today"))
        reloads = app.reloads
        await pilot.pause(0.3)
        assert app.reloads == reloads, "no change, no reload: the check is cheap and the ledger is not re-read"
        with Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, max_retries=0, quota="off") as client:
            client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "再来一次"}])
        clock[0] = time.time() + 1
        for _ in range(30):
            await pilot.pause(0.1)
            await settle(pilot, rounds=1)
            if text_of(app.query_one("#today")) != before:
                break
        after = UsageStore().summary(since=_midnight(clock[0]))
        assert text_of(app.query_one("#today")).startswith(f"今日 / Today: {cny(after.cost_cny)} · "
                                                           f"{count(after.requests)} ")
        # Reserve and settle are two commits: a check that falls between them reloads once for each.
        assert reloads + 1 <= app.reloads <= reloads + 2


@pytest.mark.slow  # drives the app through many screens
async def test_usage_custom_date_range(sdk_ledger) -> None:
    """`f` asks for from/to days: the table then equals the SDK's report for exactly those days (local time)."""
    now = time.time() + 1
    store = UsageStore()
    app = make_app(clock=lambda: now, tz=TZ)
    today = dt.datetime.fromtimestamp(now, TZ).date()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("m", "f")
        await settle(pilot)
        first = app.screen.query_one("#field-first")
        first.value = "20x6-01-01"  # a typo: an error, and the range stays as it was
        await pilot.click("#ok")
        await settle(pilot)
        assert app.page("usage").range_name == "30d"

        await pilot.press("f")
        await settle(pilot)
        app.screen.query_one("#field-first").value = (today - dt.timedelta(days=1)).isoformat()
        app.screen.query_one("#field-last").value = today.isoformat()
        await pilot.click("#ok")
        await settle(pilot)
        assert f"{today - dt.timedelta(days=1)} – {today}" in text_of(app.query_one("#usage-title"))
        since = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(), TZ).timestamp()
        until = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), TZ).timestamp()
        expected = store.report("model", since=since, until=until, tz=TZ)
        assert expected, "the SDK traffic of this test falls in the range"
        assert table_rows(app.query_one("#usage-table")) == [
            [r.key, count(r.requests), count(r.total_tokens), cny(r.cost_cny)] for r in expected]
