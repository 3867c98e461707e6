"""接入 / Apply: point third-party apps at the sidecar; the diff is shown before anything is written; undo."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text as Plain
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from .._i18n import Key, Text, tr
from ..services import ApplyAppView, PlanView
from ._base import Page
from .modals import ConfirmModal, DiffModal


class AppsTable(DataTable[str | Plain]):
    BINDINGS = [
        Key("enter", "plan", label=Text("预览", "Preview"), priority=True),
        Key("z", "undo", label=Text("撤销", "Undo")),
        Key("t", "target", label=Text("目标", "Target")),
    ]

    def action_target(self) -> None:
        self.page.toggle_target()

    @property
    def page(self) -> ApplyPage:
        return self.query_ancestor(ApplyPage)

    def action_plan(self) -> None:
        self.page.plan()

    def action_undo(self) -> None:
        self.page.undo()


class ApplyPage(Page):
    apps: list[ApplyAppView] = []
    target = "sidecar"
    last_plan: PlanView | None = None

    def build(self) -> ComposeResult:
        yield Static(tr("选择应用，回车预览改动，确认后才写入（自动备份）。",
                        "Pick an app, press Enter to preview the change; nothing is written until you confirm "
                        "(a backup is kept)."), classes="section-title")
        table = AppsTable(id="apps-table", cursor_type="row", zebra_stripes=True)
        for label, width in ((tr("应用", "App"), 14), (tr("已检测到", "Found"), 8), (tr("位置", "Where"), 40),
                             (tr("将改动", "Will change"), 80)):
            table.add_column(label, width=max(width, cell_len(label)))  # a header is never cut ("已检测到 /")
        yield table
        note = self.services.apply_note()
        if note:
            yield Static(note, id="apply-sandbox", markup=False)
        yield Static("", id="apply-target")
        yield Static("", id="apply-status")

    def on_built(self) -> None:
        self._show_target()

    def _show_target(self) -> None:
        label = tr("本地边车（每个应用一个令牌）", "the local sidecar (a token per app)") if self.target == "sidecar" \
            else tr("白菜GPT 中转（当前档案的密钥）", "the BaicaiGPT relay (the active profile's key)")
        self.query_one("#apply-target", Static).update(f"{tr('指向', 'Point apps at')}: {label}  (t)")

    def toggle_target(self) -> None:
        self.target = "relay" if self.target == "sidecar" else "sidecar"
        self._show_target()

    def focus_main(self) -> None:
        self.query_one("#apps-table").focus()

    def load(self) -> None:
        super().load()
        self.in_thread(self.services.apply_apps, self.show)

    def show(self, apps: list[ApplyAppView]) -> None:
        before = self.selected()
        self.apps = apps
        table = self.query_one("#apps-table", AppsTable)
        table.clear()
        for a in apps:
            # Plain (rich Text), not str: a DataTable reads str cells as Rich markup, and "[model_providers.baicai]" would vanish.
            table.add_row(a.name, tr("是", "yes") if a.detected else tr("否", "no"), Plain(a.target), Plain(a.status),
                          key=a.name)
        names = [a.name for a in apps]
        if before is not None and before.name in names:  # stay on the app just applied, so undo is one key away
            table.move_cursor(row=names.index(before.name))

    def selected(self) -> ApplyAppView | None:
        table = self.query_one("#apps-table", AppsTable)
        return self.apps[table.cursor_row] if 0 <= table.cursor_row < len(self.apps) else None

    def plan(self) -> None:
        app = self.selected()
        if app is None:
            return

        def show(plan: PlanView) -> None:
            self.last_plan = plan

            def done(yes: bool | None) -> None:
                if yes:
                    self.in_thread(lambda: self.services.apply_plan(plan), self._applied, group="change")

            self.app.push_screen(DiffModal(plan.title, plan.diff), done)

        target = self.target
        self.in_thread(lambda: self.services.plan(app.name, target), show, group="change")

    def _applied(self, outcome: str) -> None:
        self.query_one("#apply-status", Static).update(f"{tr('已写入', 'Written')}: {outcome}")
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
        self.query_one("#apply-status", Static).update(f"{tr('已撤销', 'Undone')}: {path}")
        self.load()
