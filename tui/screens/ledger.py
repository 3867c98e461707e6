"""明细 / Expense log: ledger rows newest first, one page at a time from SQLite, with filters."""

from __future__ import annotations

from rich.text import Text as Plain
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from baicai_sdk.integration import COST_MARK_NOTES

from .._i18n import Key, Text, get_lang, tr
from ..services import LedgerPage
from ..widgets._format import cny, count, stamp
from ._base import Page

PAGE_SIZE = 50


class LedgerTable(DataTable[str | Plain]):
    BINDINGS = [
        Key("n,pagedown", "page(1)", label=Text("下页", "Next")),
        Key("p,pageup", "page(-1)", label=Text("上页", "Prev")),
        Key("slash", "filters", label=Text("筛选", "Filter")),
    ]

    def action_page(self, step: int) -> None:
        self.query_ancestor(LedgerPageView).turn(step)

    def action_filters(self) -> None:
        self.query_ancestor(LedgerPageView).query_one("#filter-model").focus()


class LedgerPageView(Page):
    row_offset = 0
    page: LedgerPage | None = None

    def build(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Input(placeholder=tr("模型", "model"), id="filter-model")
            yield Input(placeholder=tr("状态 (ok/error…)", "status (ok/error…)"), id="filter-status")
            yield Input(placeholder=tr("来源应用", "source app"), id="filter-source")
        yield Static("", id="ledger-position")
        # Headers stack Chinese over English (two lines in "both"), and the columns add up to fit a 120-column
        # terminal with room for the meaning; fixed widths: a page redraws without re-measuring, and snapshots do
        # not depend on render timing.
        both = get_lang() == "both"
        table = LedgerTable(id="ledger-table", cursor_type="row", zebra_stripes=True, header_height=2 if both else 1)
        for (zh, en), width in ((("时间", "Time"), 14), (("模型", "Model"), 18), (("来源", "Source"), 16),
                                (("状态", "Status"), 9), (("输入+输出", "in+out"), 11), (("费用", "Cost"), 8),
                                (("延迟", "Latency"), 8), (("代码", "Code"), 5), (("含义", "Meaning"), 40)):
            table.add_column(tr(zh, en, sep="\n"), width=width)
        yield table

    def focus_main(self) -> None:
        self.query_one("#ledger-table").focus()

    def filters(self) -> dict[str, str | None]:
        return {name: self.query_one(f"#filter-{name}", Input).value.strip() or None
                for name in ("model", "status", "source")}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.row_offset = 0
        self.load()
        self.focus_main()

    def turn(self, step: int) -> None:
        total = self.page.total if self.page else 0
        new = self.row_offset + step * PAGE_SIZE
        if 0 <= new < max(total, 1):
            self.row_offset = new
            self.load()

    def load(self) -> None:
        super().load()
        offset, f = self.row_offset, self.filters()
        self.in_thread(lambda: self.services.ledger_page(offset, PAGE_SIZE, **f), self.show)

    def show(self, page: LedgerPage) -> None:
        self.page = page
        pages = max(1, -(-page.total // page.limit))
        self.query_one("#ledger-position", Static).update(
            tr(f"第 {page.offset // page.limit + 1}/{pages} 页 · {count(page.total)} 条记录（最新在前）",
               f"page {page.offset // page.limit + 1}/{pages} · {count(page.total)} rows (newest first)")
        )
        table = self.query_one("#ledger-table", LedgerTable)
        table.clear()
        tz = self.services.tz
        for line in page.lines:
            source = f"{line.source}:{line.app}" if line.app else line.source
            latency = "—" if line.latency_ms is None else f"{line.latency_ms:,.0f} ms"
            tokens = f"{count(line.prompt_tokens)}+{count(line.completion_tokens)}"
            # A retry is a row of its own (the relay counted it): say so, or it reads as a second app request.
            meaning = line.meaning
            if line.attempt:
                retry = tr(f"第 {line.attempt} 次重试", f"retry {line.attempt}")
                meaning = f"{retry} · {meaning}" if meaning else retry
            if line.cost_mark and not meaning:  # the CLI's legend, per row: why the cost is marked
                note = COST_MARK_NOTES[line.cost_mark]
                meaning = f"{line.cost_mark} {tr(note.zh, note.en)}"
            table.add_row(stamp(line.time, tz)[5:], Plain(line.model), Plain(source), line.status, tokens,  # MM-DD
                          line.cost_mark + cny(line.cost_cny), latency,
                          "" if line.relay_code is None else str(line.relay_code), Plain(meaning), key=str(line.id))
