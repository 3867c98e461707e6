"""UsageStore: totals, reports by local day/hour/model/key/source, paging, windows, change detection."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._usage import UsageStore
from tests.clock import Clock

KEY_A = "baicai-aaaaaaaaaaaaaaaaaaaaaaaa1111"
KEY_B = "baicai-bbbbbbbbbbbbbbbbbbbbbbbb2222"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# 2026-11-27 15:30 UTC = 23:30 in Shanghai; +1 h crosses local midnight but not the UTC day.
T0 = dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.timezone.utc).timestamp()



def send(meter: Meter, key: str, model: str, prompt: int, completion: int, *, app: str | None = None,
         status: str = "ok", relay_code: int | None = None) -> Reservation:
    info = describe_request("/v1/chat/completions", {"model": model, "messages": [], "max_tokens": 100})
    r = meter.reserve(key, info, app=app)
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=prompt, completion_tokens=completion, status=status, relay_code=relay_code)
    return r


@pytest.fixture
def filled(tmp_path: Path) -> tuple[UsageStore, Clock, Path]:
    clock = Clock(T0)
    path = tmp_path / "ledger.sqlite3"
    sdk = Meter(ledger_path=path, clock=clock, tier="paid")
    sidecar = Meter("sidecar", ledger_path=path, clock=clock, tier="paid")
    send(sdk, KEY_A, "gpt-3.5-turbo", 100, 50)
    send(sdk, KEY_A, "gpt-4", 200, 100)
    clock.t += 3600  # 00:30 next day in Shanghai, same UTC day
    send(sidecar, KEY_B, "gpt-3.5-turbo", 1000, 0, app="NextChat")
    send(sidecar, KEY_B, "some-new-model", 10, 10, app="NextChat")
    send(sdk, KEY_A, "gpt-3.5-turbo", 0, 0, status="error", relay_code=40001)
    return UsageStore(path, clock=clock), clock, path


def test_summary_sums_tokens_and_cost_and_counts_unpriced(filled: tuple[UsageStore, Clock, Path]) -> None:
    store, _, _ = filled
    t = store.summary()
    assert t.requests == 5 and t.prompt_tokens == 1310 and t.completion_tokens == 160 and t.total_tokens == 1470
    assert t.cost_cny == pytest.approx(150 * 0.01 / 1000 + 300 * 0.5 / 1000 + 1000 * 0.01 / 1000)
    assert t.unpriced == 1 and t.errors == 1
    assert store.summary(since=T0 + 1).requests == 3


def test_report_by_day_uses_the_local_zone(filled: tuple[UsageStore, Clock, Path]) -> None:
    store, _, _ = filled
    shanghai = store.report("day", tz=SHANGHAI)
    assert [(r.key, r.requests) for r in shanghai] == [("2026-11-27", 2), ("2026-11-28", 3)]
    utc = store.report("day", tz=dt.timezone.utc)
    assert [(r.key, r.requests) for r in utc] == [("2026-11-27", 5)]
    nepal = dt.timezone(dt.timedelta(hours=5, minutes=45))
    hours = store.report("hour", tz=nepal)
    assert [r.key for r in hours] == ["2026-11-27 21:00", "2026-11-27 22:00"]


def test_report_by_model_key_source(filled: tuple[UsageStore, Clock, Path]) -> None:
    store, _, _ = filled
    by_model = {r.key: r for r in store.report("model")}
    assert by_model["gpt-3.5-turbo"].requests == 3 and by_model["gpt-4"].total_tokens == 300
    assert by_model["some-new-model"].unpriced == 1 and by_model["some-new-model"].cost_cny == 0
    by_key = {r.key: r.requests for r in store.report("key")}
    assert set(by_key) == {"baicai-…1111", "baicai-…2222"} and by_key["baicai-…1111"] == 3
    assert {r.key: r.requests for r in store.report("source")} == {"sdk": 3, "sidecar:NextChat": 2}
    with pytest.raises(ValueError):
        store.report("week")  # type: ignore[arg-type]


def test_rows_pages_newest_first_with_filters(filled: tuple[UsageStore, Clock, Path]) -> None:
    store, _, _ = filled
    first = store.rows(limit=2)
    assert [r.model for r in first] == ["gpt-3.5-turbo", "some-new-model"] and first[0].relay_code == 40001
    assert [r.id for r in store.rows(offset=2, limit=2)] == [first[1].id - 1, first[1].id - 2]
    assert [r.id for r in store.rows(before_id=first[-1].id, limit=2)] == [first[1].id - 1, first[1].id - 2]
    assert store.count(source="sidecar") == 2 and store.count(status="error") == 1
    assert store.count(source="NextChat") == 2 and store.rows(source="NextChat")[0].app == "NextChat"
    row = store.rows(model="gpt-4")[0]
    assert row.cost_cny == pytest.approx(0.15) and row.key_hint == "baicai-…1111" and len(row.key_fingerprint) == 16
    assert store.rows(model="some-new-model")[0].cost_cny is None


def test_windows_and_change_token(filled: tuple[UsageStore, Clock, Path]) -> None:
    store, clock, path = filled
    windows = {w.family: w for w in store.windows(tier="free")}
    # The window is (now - 3600, now]: the two requests made at T0 have just left it.
    assert windows["gpt-3.5"].requests_used == 1 and windows["gpt-3.5"].tokens_used == 1000
    assert windows["gpt-3.5"].requests_limit == 60 and windows["gpt-3.5"].tokens_limit == 10000
    assert windows["gpt-3.5"].next_free_at == pytest.approx(clock.t + 3600)
    assert windows["dall-e-3"].allowed is False
    assert {w.tier for w in store.windows()} == {"paid"}  # KEY_A's gpt-4 (paid-only) worked: learned paid
    before = store.change_token()
    other = Meter(ledger_path=path, clock=clock)  # another writer
    send(other, KEY_A, "gpt-3.5-turbo", 1, 1)
    assert store.change_token() != before
    other.observe(KEY_A, "gpt-3.5-turbo", 40022)
    assert {w.tier for w in store.windows()} == {"paid"}


def test_quota_windows_read_the_hour_not_the_whole_ledger(filled: tuple[UsageStore, Clock, Path]) -> None:
    """Every statement behind ``windows(per_key=True)`` (the TUI's Quota page, ``usage windows``) finds its rows by
    an index range — the hour's rows, the few in flight — never by reading every row the ledger holds (on 100,000
    rows the full scans took 360 ms per refresh; now 8 ms)."""
    store, _clock, _path = filled
    conn = store._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert store.windows(per_key=True)
    finally:
        conn.set_trace_callback(None)
    assert any("status = 'pending'" in s for s in statements)
    for statement in statements:
        plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + statement))
        assert "SCAN requests" not in plan, (statement, plan)


@pytest.mark.slow  # writes 100k rows
def test_reading_100k_rows_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite3"
    store = UsageStore(path)
    conn = store._conn()
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO requests (ts, key_fp, source, model, family, endpoint, status, prompt_tokens, "
        "completion_tokens, cost, win_tokens) VALUES (?, 'fp', 'sdk', 'gpt-3.5-turbo', 'gpt-3.5', 'chat', 'ok', "
        "10, 10, 0.0002, 20)",
        [(now - i * 26.0,) for i in range(100_000)],
    )
    conn.execute("COMMIT")
    start = time.perf_counter()
    deep = store.rows(offset=99_000, limit=50)
    keyed = store.rows(before_id=500, limit=50)
    store.windows(now=now)
    store.count()
    elapsed = time.perf_counter() - start
    assert len(deep) == 50 and keyed[0].id == 499
    assert elapsed < 0.5, elapsed
    start = time.perf_counter()
    days = store.report("day", since=now - 7 * 86400)
    assert 7 <= len(days) <= 8 and time.perf_counter() - start < 0.5
