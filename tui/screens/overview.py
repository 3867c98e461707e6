"""总览 / Overview: balance, spend today and this month, requests and tokens by model, the active profile."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from .._i18n import tr
from ..services import BalanceView, OverviewView
from ..widgets._format import cny, count, stamp
from ._base import APP_KEYS, Page


def balance_text(b: BalanceView | None) -> str:
    if b is None:
        return f"{tr('余额', 'Balance')}: {tr('查询中…', 'checking…')}"
    if b.error is not None or b.amount_cny is None:
        reason = b.error or b.detail or tr("无数据", "no data")
        return f"{tr('余额', 'Balance')}: — ({tr('无法查询', 'unavailable')}: {reason})"
    label = tr("实测", "measured") if b.measured else tr("估算", "estimated")
    return f"{tr('余额', 'Balance')}: {cny(b.amount_cny)} ({label} · {b.source})"


class OverviewPage(Page):
    BINDINGS = APP_KEYS

    def build(self) -> ComposeResult:
        yield Static(balance_text(None), id="balance", classes="figure")
        yield Static("", id="profile", classes="figure")
        yield Static("", id="today", classes="figure")
        yield Static("", id="month", classes="figure")
        yield Static(tr("本月按模型", "This month by model"), classes="section-title")
        table: DataTable[str] = DataTable(id="by-model", cursor_type="row", zebra_stripes=True)
        for label, width in ((tr("模型", "Model"), 24), (tr("请求", "Requests"), 16), ("Tokens", 12),
                             (tr("费用", "Cost"), 14)):
            table.add_column(label, width=width)  # fixed: no re-measuring on reload, stable snapshots
        yield table

    def load(self) -> None:
        super().load()
        self.in_thread(self.services.overview, self.show)

    def load_balance(self) -> None:
        """A relay call (seconds when the relay is slow): on start, on ``r`` and after key changes only."""
        self.in_thread(self.services.balance, self.show_balance, group="balance")

    def focus_main(self) -> None:
        self.query_one("#by-model").focus()

    def show_balance(self, b: BalanceView) -> None:
        self.balance = b
        widget = self.query_one("#balance", Static)
        widget.update(balance_text(b))
        widget.set_class(b.error is not None, "-error")

    def show(self, view: OverviewView) -> None:
        self.view = view
        p = view.profile
        if p is None:
            profile = f"{tr('当前档案', 'Active profile')}: {tr('未配置（baicai key add）', 'none (baicai key add)')}"
        else:
            profile = f"{tr('当前档案', 'Active profile')}: {p.name} · {p.tier} · {p.masked}"
        self.query_one("#profile", Static).update(profile)
        for wid, zh, en, t in (("today", "今日", "Today", view.today), ("month", "本月", "This month", view.month)):
            self.query_one(f"#{wid}", Static).update(
                f"{tr(zh, en)}: {cny(t.cost_cny)} · {count(t.requests)} {tr('次请求', 'requests')} · "
                f"{count(t.tokens)} tokens"
            )
        table = self.query_one("#by-model", DataTable)
        table.clear()
        for line in view.by_model:
            table.add_row(line.label, count(line.requests), count(line.tokens), cny(line.cost_cny), key=line.label)
        self.loaded_at = stamp(self.services.clock(), self.services.tz)
