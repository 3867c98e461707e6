"""Running the sidecar: in the foreground for ``baicai sidecar``, or in a thread for tests, the bench and the TUI.

uvicorn's own access log is off: it would print every request line, and our log line (method, path, status, app,
latency) is written by the proxy without headers or query strings, so no key can end up in a log.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import uvicorn

from .app import SidecarConfig, create_app

__all__ = ["SidecarServer", "serve", "uvicorn_config"]


def uvicorn_config(app: Any, host: str, port: int, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level=extra.pop("log_level", "warning"),
        lifespan="on", server_header=False, date_header=False, timeout_graceful_shutdown=3, **extra,
    )


def serve(config: SidecarConfig, *, log_level: str = "info") -> None:
    """Run until Ctrl-C (the CLI)."""
    uvicorn.Server(uvicorn_config(create_app(config), config.host, config.port, log_level=log_level)).run()


class SidecarServer:
    """A sidecar on a free port in a background thread: ``with SidecarServer(config) as sc: sc.base_url``."""

    def __init__(self, config: SidecarConfig, *, port: int = 0) -> None:
        self.config = config
        self.app = create_app(config)
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    @property
    def proxy(self) -> Any:
        return self.app.state.proxy

    def start(self) -> SidecarServer:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self._requested_port))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(self.app, self.config.host, self.port))
        server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
        self._server = server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name=f"baicai-sidecar-{self.port}", daemon=True)
        self._thread.start()
        for _ in range(500):
            if server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("本地代理未能启动 / the sidecar did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SidecarServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
