"""Running the sidecar: in the foreground for ``baicai sidecar``, or in a thread for tests, the bench and the TUI.

uvicorn's own access log is off: it would print every request line, and our log line (method, path, status, app,
latency) is written by the proxy without headers or query strings, so no key can end up in a log.
"""

from __future__ import annotations

import gc
import logging
import socket
from typing import Any

from baicai_sdk.integration import BackgroundServer, Text, bind_socket, serve_forever

from .app import SidecarConfig, create_app

# ``_limits`` (asyncio, uvicorn's protocol) is imported where a server is set up, after ``serve()`` has built the
# tokenizer in a process that holds little yet (``_config``).

__all__ = ["SidecarServer", "serve"]


_GRACEFUL_SECONDS = 3
_UVICORN: dict[str, Any] = {"lifespan": "on", "timeout_graceful_shutdown": _GRACEFUL_SECONDS}

log = logging.getLogger("baicai.sidecar")


class _StopMidRequest(logging.Filter):
    """A stop (Ctrl-C, SIGTERM, the TUI) while an app still streams: uvicorn waits ``_GRACEFUL_SECONDS``, then
    cancels the request and logs an ERROR plus a CancelledError traceback for it, which reads like a crash. This
    says it in one line of ours instead; the request itself ends as any cancelled one (its ledger row: cancelled)."""

    def filter(self, record: logging.LogRecord) -> bool:
        import asyncio

        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            return False
        if isinstance(record.msg, str) and record.msg.startswith("Cancel %s running task(s)"):
            count = (record.args or ("some",))[0]  # type: ignore[index]
            log.warning("%s", Text(f"正在停止：{_GRACEFUL_SECONDS} 秒后仍有 {count} 个请求未完成，已取消（应用的流式回答在此中断，"
                                   "账本记为 cancelled）",
                                   f"stopping: cancelled {count} request(s) still running after {_GRACEFUL_SECONDS} s "
                                   "(an app's stream ends here; the ledger books it as cancelled)"))
            return False
        return True


def _say_stopping(in_flight: int) -> None:
    """Ctrl-C (or SIGTERM) on ``baicai sidecar``: one line at once when requests are still being answered, so the
    grace below does not pass in silence (a person seeing nothing presses Ctrl-C again). On a line of its own: the
    terminal echoed ``^C`` without a newline."""
    import sys

    if sys.stderr.isatty():
        sys.stderr.write("\n")
        sys.stderr.flush()
    if in_flight:
        log.warning("%s", Text(f"正在停止：等待 {in_flight} 个进行中的请求，最多 {_GRACEFUL_SECONDS} 秒",
                               f"stopping: waiting up to {_GRACEFUL_SECONDS} s for {in_flight} request(s) in progress"))


def _quiet_stop() -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _StopMidRequest) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_StopMidRequest())


def serve(config: SidecarConfig, *, log_level: str = "info", sock: socket.socket | None = None) -> None:
    """Run until Ctrl-C (the CLI), on ``sock`` when the caller bound it already."""
    _load_tokenizer()
    from ._limits import raise_fd_limit, uvicorn_options

    raise_fd_limit()  # the usual 1,024 files is less than the connection cap plus upstream connections
    sock = sock or bind_socket(config.host, config.port)
    _quiet_stop()
    serve_forever(create_app(config), sock, on_started=_freeze_start_up, on_stopping=_say_stopping,
                  log_level=log_level, **_UVICORN,
                  **uvicorn_options(config.limits))


def _freeze_start_up() -> None:
    """Once serving: what start-up left alive (modules, the catalogue, uvicorn, the app; ~40,000 objects the
    cyclic GC tracks) is moved out of its reach. A request leaves no cycles behind (measured: 126 cyclic objects in
    1,000 chats, all from lazy first-use imports), so collections only ever find young garbage, but a full one still
    walked every start-up object: 35 ms at load 1, 100–170 ms at load 5, an app's request stalled that long.
    Frozen, a full collection takes 0.6–1.9 ms. Young collections are unchanged (a request's objects die by
    reference count: ~9 gen-0 collections per 1,000 chats), so the thresholds stay Python's. Only here, in the
    sidecar's own process (``baicai sidecar``): a ``SidecarServer`` in another program's process (the TUI, tests)
    leaves that program's heap alone."""
    gc.collect()  # start-up's own garbage is freed, not frozen
    gc.freeze()


def _load_tokenizer() -> None:
    """The chat tokenizer, loaded before the server, the upstream client and the ledger exist (the lifespan then
    finds it loaded). Building it needs a ~10 MB Python dict beside the ~22 MB it keeps; what the process allocates
    after the load reuses that freed memory instead of adding to the process's peak (bench/bench_memory.py: peak
    RSS 75 → 67 MB). On this thread, not a worker's: glibc gives a worker thread its own heap (+2.5 MB)."""
    from baicai_sdk.integration import get_encoding

    get_encoding("cl100k_base")


class SidecarServer(BackgroundServer):
    """A sidecar on a free port in a background thread: ``with SidecarServer(config) as sc: sc.base_url``."""

    def __init__(self, config: SidecarConfig, *, port: int = 0) -> None:
        from ._limits import uvicorn_options

        self.config = config
        _quiet_stop()
        super().__init__(create_app(config), config.host, port, name="baicai-sidecar", **_UVICORN,
                         **uvicorn_options(config.limits))

    def stop(self, timeout: float = 2 * (_GRACEFUL_SECONDS + 1)) -> None:
        """Stop; a stream still running gets the ``_GRACEFUL_SECONDS`` a Ctrl-C gives it. ``BackgroundServer``'s
        default forced the stop after 2.5 s, before that grace was over, and a forced uvicorn skips the app's
        shutdown: the upstream connections were left open."""
        super().stop(timeout)

    @property
    def origin(self) -> str:
        return self.url

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def proxy(self) -> Any:
        return self.app.state.proxy
