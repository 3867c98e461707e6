"""接入 / Apply: point third-party apps at the sidecar; the diff is shown before anything is written; undo."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from .._i18n import tr
from ..services import ApplyAppView, PlanView
from ._base import Page
from .modals import ConfirmModal, DiffModal


class AppsTable(DataTable[str]):
    BINDINGS = [
        Binding("enter", "plan", tr("预览并写入", "Preview & write"), priority=True),
        Binding("z", "undo", tr("撤销", "Undo")),
    ]

    @property
    def page(self) -> ApplyPage:
        return self.query_ancestor(ApplyPage)

    def action_plan(self) -> None:
        self.page.plan()

    def action_undo(self) -> None:
        self.page.undo()


class ApplyPage(Page):
    apps: list[ApplyAppView] = []

    def build(self) -> ComposeResult:
        yield Static(tr("选择应用，回车预览改动，确认后才写入（自动备份）。",
                        "Pick an app, press Enter to preview the change; nothing is written until you confirm "
                        "(a backup is kept)."), classes="section-title")
        table = AppsTable(id="apps-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(tr("应用", "App"), tr("已检测到", "Detected"), tr("配置文件", "Config file"),
                          tr("状态", "Status"))
        yield table
        yield Static("", id="apply-status")

    def focus_main(self) -> None:
        self.query_one("#apps-table").focus()

    def load(self) -> None:
        super().load()
        self.in_thread(self.services.apply_apps, self.show)

    def show(self, apps: list[ApplyAppView]) -> None:
        self.apps = apps
        table = self.query_one("#apps-table", AppsTable)
        table.clear()
        for a in apps:
            table.add_row(a.name, tr("是", "yes") if a.detected else tr("否", "no"), a.target, a.status, key=a.name)

    def selected(self) -> ApplyAppView | None:
        table = self.query_one("#apps-table", AppsTable)
        return self.apps[table.cursor_row] if 0 <= table.cursor_row < len(self.apps) else None

    def plan(self) -> None:
        app = self.selected()
        if app is None:
            return

        def show(plan: PlanView) -> None:
            def done(yes: bool | None) -> None:
                if yes:
                    self.in_thread(lambda: self.services.apply_plan(plan), self._applied, group="change")

            self.app.push_screen(DiffModal(tr(f"{plan.app} 将要写入的改动", f"What will change for {plan.app}"),
                                           plan.diff), done)

        self.in_thread(lambda: self.services.plan(app.name), show, group="change")

    def _applied(self, backup: str) -> None:
        self.query_one("#apply-status", Static).update(
            f"{tr('已写入', 'Written')}" + (f" · {tr('备份', 'backup')}: {backup}" if backup else ""))
        self.load()

    def undo(self) -> None:
        app = self.selected()
        if app is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.in_thread(lambda: self.services.undo(app.name), self._undone, group="change")

        self.app.push_screen(ConfirmModal(tr(f"撤销对 {app.name} 的改动？", f"Undo the change to {app.name}?")), done)

    def _undone(self, path: str) -> None:
        self.query_one("#apply-status", Static).update(tr("已撤销", "Undone") + (f" · {path}" if path else ""))
        self.load()
