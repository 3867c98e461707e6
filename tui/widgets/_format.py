"""How figures are written on screen: one place, so tests can format the SDK's numbers the same way."""

from __future__ import annotations

import datetime as dt

__all__ = ["cny", "count", "clock_time", "countdown", "stamp", "percent"]


def cny(amount: float | None) -> str:
    """CNY with four decimals: relay prices are per 1K tokens, so cents alone would show most calls as ¥0.00."""
    return "—" if amount is None else f"¥{amount:,.4f}"


def count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def percent(used: int, limit: int | None) -> float | None:
    if not limit:
        return None
    return 100.0 * used / limit


def clock_time(ts: float, tz: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%H:%M")


def stamp(ts: float, tz: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def countdown(seconds: float) -> str:
    """``12:05`` (minutes:seconds), or ``1:02:03`` past an hour; never negative."""
    s = max(0, int(seconds + 0.999))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
