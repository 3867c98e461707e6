"""Text bars: quota bars coloured at 70 % and 90 %, and horizontal bar charts for reports.

Drawn as Rich text rather than ProgressBar widgets so a whole chart is one widget (cheap to redraw every
second) and renders identically in snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

__all__ = ["level", "quota_bar", "bar_chart"]

_FULL = "█"
_EMPTY = "░"


def level(pct: float | None) -> str:
    """``ok`` under 70 %, ``warn`` from 70 %, ``danger`` from 90 % (also the CSS class a row gets)."""
    if pct is None or pct < 70:
        return "ok"
    return "warn" if pct < 90 else "danger"


_STYLE = {"ok": "green", "warn": "yellow", "danger": "bold red"}


def quota_bar(used: int, limit: int | None, width: int = 24) -> Text:
    """``████░░░░ 40/60 (67%)``, or ``不限 / no cap`` when the tier has no hourly cap."""
    from ._format import count

    if not limit:
        return Text(f"{_EMPTY * width} {count(used)} / ∞", style="dim")
    pct = 100.0 * used / limit
    filled = min(width, round(width * used / limit))
    text = Text()
    text.append(_FULL * filled, style=_STYLE[level(pct)])
    text.append(_EMPTY * (width - filled), style="dim")
    text.append(f" {count(used)}/{count(limit)} ({pct:.0f}%)", style=_STYLE[level(pct)])
    return text


def bar_chart(items: Sequence[tuple[str, float, str]], width: int = 30) -> Text:
    """One line per ``(label, value, caption)``, bars scaled to the largest value."""
    text = Text()
    if not items:
        return text
    top = max(v for _, v, _ in items) or 1.0
    label_w = min(28, max(len(label) for label, _, _ in items))
    for i, (label, value, caption) in enumerate(items):
        filled = round(width * value / top) if value > 0 else 0
        if i:
            text.append("\n")
        text.append(f"{label[:label_w]:<{label_w}} ", style="bold")
        text.append(_FULL * filled, style="cyan")
        text.append(" " * (width - filled))
        text.append(f" {caption}")
    return text
