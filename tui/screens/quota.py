"""额度 / Quota windows: the sliding hour per family, as bars, with a countdown and a burn-rate projection."""

from __future__ import annotations

import datetime as dt

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from .._i18n import tr
from ..services import WindowView
from ..widgets._format import clock_time, countdown, percent
from ..widgets.bars import level, quota_bar
from ._base import APP_KEYS, Page

_TIER = {"free": ("免费", "free"), "paid": ("付费", "paid"), "unknown": ("未知档位", "unknown tier")}


def when_text(ts: float, now: float, tz: dt.tzinfo | None) -> str:
    """``14:12`` today, ``12-03 14:12`` on another day (in the user's zone)."""
    at, today = dt.datetime.fromtimestamp(ts, tz), dt.datetime.fromtimestamp(now, tz)
    return clock_time(ts, tz) if at.date() == today.date() else at.strftime("%m-%d %H:%M")


def window_text(w: WindowView, now: float, tz: object) -> Text:
    zh, en = _TIER.get(w.tier, (w.tier, w.tier))
    text = Text()
    # The IP's one count is judged by the asking key's tier: one card per tier in use, saying whose limit it is.
    who = f" · {tr('密钥', 'key')} {w.key}" if w.key else f" · {tr('本机 IP（所有密钥合计）', 'this IP (all keys)')}"
    text.append(f"{w.family} · {tr(zh, en)}{who}\n", style="bold")
    if not w.allowed:
        text.append("  " + tr("此档位不可用", "not available on this tier"), style="dim")
        return text
    # padded in terminal cells, not characters: 请求 is four cells wide, so both bars start in one column
    labels = (tr("请求", "requests"), "tokens")
    width = max(16, max(cell_len(label) for label in labels) + 1)
    for i, (label, used, limit) in enumerate(zip(labels, (w.requests_used, w.tokens_used),
                                                 (w.requests_limit, w.tokens_limit), strict=True)):
        text.append(("\n  " if i else "  ") + label + " " * (width - cell_len(label)))
        text.append_text(quota_bar(used, limit))
    text.append("\n  ")
    exhausted = w.exhausted_until if w.exhausted_until is not None and w.exhausted_until > now else None
    if exhausted is not None:
        text.append(f"{tr('中转站已报额度用完，恢复于', 'the relay reported the limit; free again in')} "
                    f"{countdown(exhausted - now)}", style="bold red")
        text.append(" · ")
    used_up = [what for what, used, limit in (("requests", w.requests_used, w.requests_limit),
                                              ("tokens", w.tokens_used, w.tokens_limit)) if limit and used >= limit]
    if w.next_free_at is not None and w.next_free_at > now:
        # "next free slot" only when none is free: at 6 of 60 requests it read as "wait 59 min"
        when = countdown(w.next_free_at - now)
        text.append(f"{tr('下一个空位', 'next free slot in')} {when}" if used_up or exhausted is not None
                    else f"{tr('有空位，最早一笔释放于', 'slots free; oldest frees in')} {when}")
    else:
        text.append(tr("有可用额度", "slots available"))
    if used_up:
        zh = "、".join("请求次数" if u == "requests" else "tokens" for u in used_up)
        text.append(" · ")
        text.append(tr(f"本小时{zh}额度已用完", f"this hour's {' and '.join(used_up)} are used up"), style="bold red")
    elif w.runs_out_at is not None:
        at = when_text(w.runs_out_at, now, tz)  # type: ignore[arg-type]
        what_zh = " tokens " if w.runs_out_of == "tokens" else "请求次数"
        tier_en = "" if w.tier == "unknown" else f"{w.tier} "
        text.append(" · ")
        text.append(tr(f"按此速度，{w.family} 的{what_zh}将于 {at} 用完",
                       f"at this pace the {tier_en}{w.family} {w.runs_out_of} run out at {at}"), style="yellow")
    if w.free_models:  # "gpt-4 · free" is not every gpt-4 model
        text.append("\n  " + tr(f"免费会员只限 {'、'.join(w.free_models)}（其余型号需付费）",
                                 f"free tier: only {', '.join(w.free_models)} (the other models need a paid key)"),
                    style="dim")
    return text


def _level(w: WindowView) -> str:
    """The colour of the worse of the two budgets: ok, warn (from 70 %) or danger (from 90 %)."""
    return level(max(percent(w.requests_used, w.requests_limit) or 0, percent(w.tokens_used, w.tokens_limit) or 0))


class QuotaPage(Page):
    BINDINGS = APP_KEYS

    views: list[WindowView] = []

    def build(self) -> ComposeResult:
        yield Static(tr("过去一小时（滑动窗口）", "The last hour (sliding window)"), classes="section-title")
        # The relay's rule, said where its effect shows: a second key does not bring a second budget.
        ip_note = Static(tr("“本机 IP”窗口：从这台机器发出的所有密钥共用一份额度，多一个密钥不会多出额度（中转的规则）",
                            "'this IP' windows: every key used from this machine shares one budget; another key adds "
                            "no quota (the relay's rule)"), id="ip-note", classes="explain")
        ip_note.display = False
        yield ip_note
        yield VerticalScroll(id="windows", can_focus=True)

    def focus_main(self) -> None:
        self.query_one("#windows").focus()

    def load(self) -> None:
        super().load()
        self.in_thread(self.services.windows, self.show)

    def show(self, views: list[WindowView]) -> None:
        """Update the window cards in place; mount only the cards that are missing, never remove one.

        A refresh arrives after every ledger write. Removing children and mounting their replacements in the same
        call collided with the removal still in flight ("a widget with ID 'window-0' already exists"), so cards
        are reused by position and surplus ones are hidden rather than removed.
        """
        self.views = views
        self.query_one("#ip-note").display = any(not w.key for w in views)
        box = self.query_one("#windows", VerticalScroll)
        empty = box.query(".empty")
        if not empty:
            note = Static(tr("还没有请求记录。", "No requests recorded yet."), classes="empty")
            note.display = not views
            box.mount(note)
        else:
            empty.first(Static).display = not views
        cards = list(box.query(".window").results(Static))
        for card in cards[len(views):]:
            card.display = False
        if len(views) > len(cards):
            box.mount_all(Static(id=f"window-{i}", classes="window") for i in range(len(cards), len(views)))
        self.tick()

    def tick(self) -> None:
        now = self.services.clock()
        for i, w in enumerate(self.views):
            widgets = self.query(f"#window-{i}")
            if not widgets:
                return
            widget = widgets.first(Static)
            widget.display = True
            widget.update(window_text(w, now, self.services.tz))
            for name in ("ok", "warn", "danger"):
                widget.set_class(_level(w) == name, f"-{name}")
