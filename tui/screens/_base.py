"""What every page has: its services, a worker runner that reports back on the UI thread, a stale flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.worker import Worker, get_current_worker

from .._i18n import Key, Text

if TYPE_CHECKING:
    from ..app import BaicaiApp
    from ..services import Services

T = TypeVar("T")

APP_KEYS: list[BindingType] = [
    Key("r", "app.refresh", label=Text("刷新", "Refresh")),
    Key("l", "app.cycle_lang", label=Text("语言", "Language")),
]
"""The app's refresh and language keys, for the footer of a page that has no keys of its own (they work on every
page; the app's own bindings stay out of the footer so that a page's keys, help and quit fit in 80 columns)."""


class Page(Vertical):
    """A tab's content. ``load`` reads from services in a thread worker and ``show``s the result."""

    stale = True
    built = False
    """Pages are composed on first view: start-up pays only for the overview (see bench/bench_tui.py)."""

    def compose(self) -> ComposeResult:
        if self.built:
            yield from self.build()

    def build(self) -> ComposeResult:
        """The page's widgets; pages override."""
        yield from ()

    async def ensure_built(self) -> None:
        if not self.built:
            self.built = True
            await self.recompose()
            self.on_built()

    def on_built(self) -> None:
        """Runs once the page's widgets exist (what ``on_mount`` would do for an eager page)."""

    @property
    def services(self) -> Services:
        return self.baicai.services

    @property
    def baicai(self) -> BaicaiApp:
        return self.app  # type: ignore[return-value]

    def load(self) -> None:
        """Start reading this page's figures (in a worker); pages override."""
        self.stale = False

    def tick(self) -> None:
        """Once a second, from the injected clock, with no I/O: countdowns. Pages override."""

    def focus_main(self) -> None:
        """Move focus to the page's main widget, so its key bindings show in the footer."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Worker messages do not bubble: hand failures to the app's one error handler."""
        self.baicai.worker_failed(event)

    def in_thread(self, fetch: Callable[[], T], show: Callable[[T], Any], *, group: str = "load") -> None:
        """Run ``fetch`` in a thread worker (exclusive per page and group) and pass its result to ``show``.

        Errors go to the app's one handler (``BaicaiApp.on_worker_state_changed``), never crash the app.
        """

        def job() -> None:
            result = fetch()
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(deliver, result)

        def deliver(result: T) -> None:
            if self.is_attached and self.built:  # not after the app closed or the page was recomposed away
                show(result)

        self.run_worker(job, thread=True, exclusive=True, group=group, exit_on_error=False,
                        name=f"{self.id}:{group}")
