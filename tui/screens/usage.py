"""用量 / Usage: by day, hour, model, key or source app, over a date range; charts; export to CSV/JSON."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Sparkline, Static

from .._i18n import Key, KeyGroup, Text, tr
from ..services import GROUPS, GroupBy, ReportLine
from ..widgets._format import cny, count
from ..widgets.bars import bar_chart
from ._base import Page

RANGES = ("today", "7d", "30d", "month", "all")
_RANGE_LABEL = {"today": ("今天", "today"), "7d": ("近 7 天", "last 7 days"), "30d": ("近 30 天", "last 30 days"),
                "month": ("本月", "this month"), "all": ("全部", "all time")}
_GROUP_LABEL = {"day": ("按天", "by day"), "hour": ("按小时", "by hour"), "model": ("按模型", "by model"),
                "key": ("按密钥", "by key"), "source": ("按来源应用", "by source app")}


# The footer shows a group as its keys and one label ("dhmks 按/By": by day, hour, model, key, source), so the
# page's nine keys, help and quit fit in 80 columns in both languages (tests/tui/test_first_hour.py).
_GROUP_BY = KeyGroup(label=Text("按", "By"), compact=True)
_EXPORT = KeyGroup(label=Text("导出", "Export"), compact=True)


class UsageTable(DataTable[str]):
    BINDINGS = [
        Key("d", "group('day')", label=Text("按天", "Day"), group=_GROUP_BY),
        Key("h", "group('hour')", label=Text("按小时", "Hour"), group=_GROUP_BY),
        Key("m", "group('model')", label=Text("按模型", "Model"), group=_GROUP_BY),
        Key("k", "group('key')", label=Text("按密钥", "Key"), group=_GROUP_BY),
        Key("s", "group('source')", label=Text("按来源", "Source"), group=_GROUP_BY),
        Key("g", "next_range", label=Text("范围", "Range")),
        # f, not r: r refreshes on every page
        Key("f", "custom_range", label=Text("自定", "From–to")),
        Key("e", "export('csv')", label=Text("导出CSV", "CSV"), group=_EXPORT),
        Key("j", "export('json')", label=Text("导出JSON", "JSON"), group=_EXPORT),
    ]

    def action_group(self, by: str) -> None:
        self.page.set_group(by)  # type: ignore[arg-type]

    def action_next_range(self) -> None:
        self.page.next_range()

    def action_custom_range(self) -> None:
        self.page.ask_custom_range()

    def action_export(self, fmt: str) -> None:
        self.page.export(fmt)

    @property
    def page(self) -> UsagePage:
        return self.query_ancestor(UsagePage)


class UsagePage(Page):
    by: GroupBy = "day"
    range_name: str = "30d"
    custom: tuple[str, str] = ("", "")
    """The from/to days (``YYYY-MM-DD``, inclusive) when ``range_name`` is ``custom``."""
    lines: list[ReportLine] = []

    def build(self) -> ComposeResult:
        with Horizontal(id="usage-head"):
            yield Static("", id="usage-title", classes="section-title")
        yield Sparkline([], id="usage-spark")
        yield Static("", id="usage-chart")
        table = UsageTable(id="usage-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_built(self) -> None:
        self._title()

    def focus_main(self) -> None:
        self.query_one("#usage-table").focus()

    def _title(self) -> None:
        g = _GROUP_LABEL[self.by]
        if self.range_name == "custom":
            first, last = self.custom
            r = f"{first or '…'} – {last or '…'}"
        else:
            r = tr(*_RANGE_LABEL[self.range_name])
        self.query_one("#usage-title", Static).update(f"{tr(*g)} · {r}")

    def set_group(self, by: GroupBy) -> None:
        if by in GROUPS:
            self.by = by
            self.load()

    def next_range(self) -> None:
        current = RANGES.index(self.range_name) if self.range_name in RANGES else -1
        self.range_name = RANGES[(current + 1) % len(RANGES)]
        self.load()

    def ask_custom_range(self) -> None:
        from .modals import Field, FormModal

        fields = [Field("first", tr("开始日期 (YYYY-MM-DD，可空)", "From (YYYY-MM-DD, may be empty)"), value=self.custom[0]),
                  Field("last", tr("结束日期（含当天，可空）", "To (inclusive, may be empty)"), value=self.custom[1])]

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return
            first, last = values.get("first", "").strip(), values.get("last", "").strip()
            try:
                self.services.date_bounds(first, last)
            except ValueError as exc:
                self.notify(str(exc), severity="error")
                return
            self.custom, self.range_name = (first, last), "custom"
            self.load()

        self.app.push_screen(FormModal(tr("自定日期范围", "Date range"), fields), done)

    def bounds(self) -> tuple[float | None, float | None]:
        if self.range_name == "custom":
            return self.services.date_bounds(*self.custom)
        return self.services.range_bounds(self.range_name)

    def load(self) -> None:
        super().load()
        self._title()
        by = self.by
        since, until = self.bounds()
        self.in_thread(lambda: (by, self.services.report(by, since, until)), self._show_pair)

    def _show_pair(self, pair: tuple[GroupBy, list[ReportLine]]) -> None:
        by, lines = pair
        if by == self.by:
            self.show(lines)

    def show(self, lines: list[ReportLine]) -> None:
        self.lines = lines
        spark = self.query_one("#usage-spark", Sparkline)
        timeline = self.by in ("day", "hour")
        spark.display = timeline and len(lines) > 1
        spark.data = [line.cost_cny for line in lines] if timeline else []
        chart = self.query_one("#usage-chart", Static)
        chart.display = not timeline
        chart.update(bar_chart([(line.label, line.cost_cny, f"{cny(line.cost_cny)} · {count(line.tokens)} tokens")
                                for line in lines[:12]]) if not timeline else "")
        table = self.query_one("#usage-table", UsageTable)
        table.clear(columns=True)
        for label, width in ((tr(*_GROUP_LABEL[self.by]), 28), (tr("请求", "Requests"), 16), ("Tokens", 12),
                             (tr("费用", "Cost"), 14)):
            table.add_column(label, width=width)  # fixed: no re-measuring on reload, stable snapshots
        for i, line in enumerate(lines):
            table.add_row(line.label, count(line.requests), count(line.tokens), cny(line.cost_cny), key=str(i))

    def export(self, fmt: str) -> None:
        lines, by = list(self.lines), self.by

        def done(path: object) -> None:
            self.last_export = path
            self.notify(f"{tr('已导出', 'Exported')}: {path}", title=tr("导出", "Export"))

        self.in_thread(lambda: self.services.export(lines, "json" if fmt == "json" else "csv", by=by), done,
                       group="export")
