"""The Textual app: tabs, bindings, the refresh loop and the one error handler. No business logic here.

``make_app`` is the factory used by ``baicai tui``, ``baicai demo``, the tests and the benchmark: it takes the
home folder, the clock and the services to use, so a test can run the app on a temporary ledger at a fixed time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Protocol

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ._i18n import LANGS, Key, Text, get_lang, relabel_bindings, set_lang, tr
from .screens._base import Page
from .screens.apply import ApplyPage
from .screens.keys import KeysPage
from .screens.ledger import LedgerPageView
from .screens.modals import HelpScreen
from .screens.overview import OverviewPage
from .screens.quota import QuotaPage
from .screens.sidecar import SidecarPage
from .screens.usage import UsagePage
from .services import Services
from .widgets._format import stamp

__all__ = ["BaicaiApp", "make_app", "DemoTraffic", "PAGES"]

# (id, page class, 中文, English): the order is the 1–7 keys.
PAGES: list[tuple[str, type[Page], str, str]] = [
    ("overview", OverviewPage, "总览", "Overview"),
    ("quota", QuotaPage, "额度", "Quota"),
    ("usage", UsagePage, "用量", "Usage"),
    ("ledger", LedgerPageView, "明细", "Log"),
    ("keys", KeysPage, "密钥", "Keys"),
    ("sidecar", SidecarPage, "边车", "Sidecar"),
    ("apply", ApplyPage, "接入", "Apply"),
]
_LEDGER_PAGES = {"overview", "quota", "usage", "ledger"}


class DemoTraffic(Protocol):
    """Something that sends sample requests until told to stop (see ``baicai_tui._demo``)."""

    def run(self, should_stop: Callable[[], bool]) -> None: ...


class BaicaiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "白菜GPT · BaicaiGPT"

    BINDINGS = [
        *[Binding(str(i + 1), f"show_page('{pid}')", tr(zh, en), show=False) for i, (pid, _, zh, en) in enumerate(PAGES)],
        # Shown in the footer by the pages without keys of their own (screens/_base.py, APP_KEYS): in both
        # languages 80 columns hold a page's keys, help and quit, not these two as well. The help lists them.
        Key("r", "refresh", label=Text("刷新", "Refresh"), show=False),
        Key("l", "cycle_lang", label=Text("语言", "Language"), show=False),
        Key("question_mark,f1", "help", label=Text("帮助", "Help")),
        Key("q", "quit", label=Text("退出", "Quit")),
    ]

    def __init__(self, services: Services, *, demo: DemoTraffic | None = None, refresh_interval: float = 1.0,
                 sidecar_interval: float = 5.0) -> None:
        relabel_bindings()  # footer labels in the language set before the app was built (--lang, BAICAI_LANG)
        super().__init__()
        self.services = services
        self.demo = demo
        self.refresh_interval = refresh_interval
        self.sidecar_interval = sidecar_interval
        self.last_change: tuple[int, int] | None = None
        self.reloads = 0
        self._stopping = False
        self._since_sidecar = 0.0

    # ---- layout
    def compose(self) -> ComposeResult:
        yield Header(icon="🥬")
        with TabbedContent(initial="tab-overview", id="tabs"):
            for i, (pid, cls, zh, en) in enumerate(PAGES):
                with TabPane(f"{i + 1} {tr(zh, en)}", id=f"tab-{pid}"):
                    yield cls(id=pid)
        yield Static("", id="status")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns hold every page's keys

    def page(self, pid: str) -> Page:
        return self.query_one(f"#{pid}", Page)

    @property
    def active_page(self) -> Page:
        active = self.query_one("#tabs", TabbedContent).active or "tab-overview"  # empty while recomposing
        return self.page(active.removeprefix("tab-"))

    async def on_mount(self) -> None:
        await self.page("overview").ensure_built()
        self.page("overview").focus_main()  # its keys (refresh, language) show in the footer from the start
        self.sub_title = tr("用量与额度", "usage & quota") + (f" · {tr('演示', 'demo')}" if self.demo else "")
        self._check_changes(force=True)
        self.reload_balance()
        self.set_interval(self.refresh_interval, self._tick, name="tick")
        if self.demo is not None:
            demo = self.demo
            self.run_worker(lambda: demo.run(lambda: self._stopping), thread=True, group="demo",
                            exit_on_error=False, name="demo")

    def on_unmount(self) -> None:
        self._stopping = True
        self.services.close()

    # ---- refresh: a cheap change check once a second, reload only what is shown
    def _check_changes(self, *, force: bool = False) -> None:
        """Ask the ledger for its change token (in a worker: the first call opens SQLite) and reload on change."""

        def poll() -> None:
            try:
                token: tuple[int, int] | None = self.services.change_token()
                error = None
            except Exception as exc:
                token, error = None, exc
            if not self._stopping:
                self.call_from_thread(self._apply_change, token, error, force)

        self.run_worker(poll, thread=True, group="poll", exclusive=not force, exit_on_error=False, name="poll")

    def _apply_change(self, token: tuple[int, int] | None, error: BaseException | None, force: bool) -> None:
        if self._stopping or not self.query("#tabs") or not self.query("#overview"):
            return  # the answer came back after the app closed (or mid-recompose)
        if error is not None:
            self.set_status(f"{tr('账本不可读', 'ledger unreadable')}: {error}", error=True)
            return
        if force or token != self.last_change:
            self.last_change = token
            self.reloads += 1
            for pid in _LEDGER_PAGES:
                self.page(pid).stale = True
            for page in {self.active_page, self.page("overview")}:  # the overview always follows the ledger
                if page.built:
                    page.load()
            self.set_status(f"{tr('更新于', 'updated')} {stamp(self.services.clock(), self.services.tz)}")

    def _pages_mounted(self) -> bool:
        """False for the moment the language switch recomposes the screen."""
        return bool(self.query("#overview"))

    def _tick(self) -> None:
        if not self._pages_mounted():
            return
        self._check_changes()
        page = self.active_page
        if not page.built:
            return
        page.tick()
        self._since_sidecar += self.refresh_interval
        if page.id == "sidecar" and self._since_sidecar >= self.sidecar_interval:
            self._since_sidecar = 0.0
            page.load()

    def reload_overview(self) -> None:
        self.page("overview").load()
        self.reload_balance()

    def reload_balance(self) -> None:
        overview = self.page("overview")
        assert isinstance(overview, OverviewPage)
        overview.load_balance()

    def set_status(self, text: str, *, error: bool = False) -> None:
        for status in self.query("#status").results(Static):  # none while the language switch recomposes
            status.update(text)
            status.set_class(error, "-error")

    # ---- navigation
    @on(TabbedContent.TabActivated)
    async def _on_tab(self, event: TabbedContent.TabActivated) -> None:
        if not self._pages_mounted():
            return
        page = self.active_page
        await page.ensure_built()
        if page.stale:
            page.load()
        page.focus_main()

    def action_show_page(self, pid: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{pid}"

    def action_refresh(self) -> None:
        self._check_changes(force=True)
        self.reload_balance()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_cycle_lang(self) -> None:
        set_lang(LANGS[(LANGS.index(get_lang()) + 1) % len(LANGS)])
        relabel_bindings()  # the recomposed pages copy the new labels; the app keeps its instance, so renew its own
        self._bindings = self._merged_bindings.copy() if self._merged_bindings is not None else self._bindings
        active = self.query_one("#tabs", TabbedContent).active
        self.refresh_bindings()
        await self.recompose()
        await self.page("overview").ensure_built()
        self.query_one("#tabs", TabbedContent).active = active
        await self.active_page.ensure_built()
        self._check_changes(force=True)
        self.reload_balance()

    # ---- the one error handler: a failed worker becomes a status line and a toast, never a crash
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_failed(event)

    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Called for the app's workers and, through ``Page``, for every page's."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        text = str(error).splitlines()[0] if error is not None and str(error) else type(error).__name__
        self.set_status(f"{tr('出错', 'error')} ({event.worker.name}): {text}", error=True)
        self.notify(text, title=tr("出错了", "Something failed"), severity="error")


def make_app(
    *,
    clock: Callable[[], float] | None = None,
    services: Services | None = None,
    demo: DemoTraffic | None = None,
    tz: dt.tzinfo | None = None,
    lang: str | None = None,
    refresh_interval: float = 1.0,
) -> BaicaiApp:
    """Build the app. Tests pass a fixed ``clock`` and ``tz`` (and set ``BAICAI_HOME`` themselves)."""
    if lang is not None:
        set_lang(lang)
    if services is None:
        services = Services(clock=clock or time.time, tz=tz)
    return BaicaiApp(services, demo=demo, refresh_interval=refresh_interval)


