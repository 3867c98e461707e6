"""边车 / Sidecar: up or down, port, recent errors, per-app local tokens; start/stop when launched here."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from .._i18n import Key, Text, tr
from ..services import SidecarView
from ._base import Page
from .modals import ConfirmModal, Field, FormModal, NoticeModal


class TokensTable(DataTable[str]):
    BINDINGS = [
        Key("s", "start_stop", label=Text("启停", "Start-stop")),
        Key("i", "issue", label=Text("签发", "Issue")),
        Key("v", "revoke", label=Text("吊销", "Revoke")),
    ]

    @property
    def page(self) -> SidecarPage:
        return self.query_ancestor(SidecarPage)

    def action_start_stop(self) -> None:
        self.page.toggle()

    def action_issue(self) -> None:
        self.page.issue()

    def action_revoke(self) -> None:
        self.page.revoke()


class SidecarPage(Page):
    view: SidecarView | None = None

    def build(self) -> ComposeResult:
        yield Static(tr("边车状态查询中…", "checking the sidecar…"), id="sidecar-status", classes="figure")
        yield Static(tr("各应用令牌", "Per-app tokens"), classes="section-title")
        table = TokensTable(id="tokens-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(tr("应用", "App"), tr("令牌", "Token"))
        yield table
        yield Static(tr("最近错误", "Recent errors"), classes="section-title")
        yield Static("", id="sidecar-errors")

    def focus_main(self) -> None:
        self.query_one("#tokens-table").focus()

    def load(self) -> None:
        super().load()
        self.in_thread(self.services.sidecar_status, self.show)

    def show(self, view: SidecarView) -> None:
        self.view = view
        if view.up:
            state = f"● {tr('运行中', 'up')} · {view.url} · {tr('端口', 'port')} {view.port}"
        else:
            state = f"○ {tr('未运行', 'down')} · {view.url} ({view.detail})"
        if view.started_here:
            state += f" · {tr('由本界面启动', 'started from here')}"
        status = self.query_one("#sidecar-status", Static)
        status.update(state)
        status.set_class(not view.up, "-error")
        table = self.query_one("#tokens-table", TokensTable)
        table.clear()
        for t in view.tokens:
            table.add_row(t.app, t.masked, key=t.app)
        self.query_one("#sidecar-errors", Static).update(
            "\n".join(view.recent_errors[-10:]) or tr("（无）", "(none)"))

    def toggle(self) -> None:
        if self.view is not None and self.view.started_here:
            self.in_thread(self.services.stop_sidecar, lambda _: self.load(), group="change")
        elif self.view is not None and self.view.up:
            self.notify(tr("边车不是由本界面启动的，无法在此停止。", "The sidecar was not started here; stop it where it runs."),
                        severity="warning")
        else:
            self.in_thread(self.services.start_sidecar, lambda _: self.set_timer(1.0, self.load), group="change")

    def issue(self) -> None:
        def done(values: dict[str, str] | None) -> None:
            app = (values or {}).get("app", "").strip()
            if not app:
                return

            def show(token: str) -> None:
                self.load()
                self.app.push_screen(NoticeModal(
                    tr(f"{app} 的令牌（只显示这一次）", f"Token for {app} (shown once)"), token))

            self.in_thread(lambda: self.services.issue_token(app), show, group="change")

        self.app.push_screen(FormModal(tr("为应用签发令牌", "Issue a token for an app"),
                                       [Field("app", tr("应用名", "App name"))]), done)

    def revoke(self) -> None:
        table = self.query_one("#tokens-table", TokensTable)
        if self.view is None or not self.view.tokens or not 0 <= table.cursor_row < len(self.view.tokens):
            return
        app = self.view.tokens[table.cursor_row].app

        def done(yes: bool | None) -> None:
            if yes:
                self.in_thread(lambda: self.services.revoke_token(app), lambda _: self.load(), group="change")

        self.app.push_screen(ConfirmModal(tr(f"吊销 {app} 的令牌？", f"Revoke the token of {app}?")), done)
