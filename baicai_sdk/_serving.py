"""Serving an ASGI app on a real socket: the emulator and the sidecar both run through here.

Two shapes: :func:`serve_forever` for a command in the foreground (Ctrl-C stops it cleanly), and
:class:`BackgroundServer` for tests, the demo, the bench and the TUI (a daemon thread; ``start()`` returns once
the socket accepts, ``stop()`` joins the thread and closes the socket).

The socket is bound here with ``TCP_NODELAY``, which accepted connections inherit: without it uvicorn's separate
writes of headers and body meet Nagle's algorithm and the peer's delayed ACK, and every answer on loopback waits
~40 ms (measured: 44 ms → 1.8 ms a request). uvicorn is imported only when a server starts: it comes with the
``[sidecar]`` extra, and ``import baicai_sdk`` must not need it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._text import Text, labelled

__all__ = ["UvicornMissing", "import_uvicorn", "bind_socket", "BackgroundServer", "serve_forever", "answer_lifespan"]


class UvicornMissing(RuntimeError):
    """The ``[sidecar]`` extra (uvicorn) is not installed."""


def import_uvicorn() -> Any:
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        raise UvicornMissing(
            Text("需要 uvicorn：pip install \"baicai[sidecar]\"", "this needs uvicorn: pip install \"baicai[sidecar]\"")
        ) from exc
    return uvicorn


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket with ``TCP_NODELAY`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _server(app: Any, options: dict[str, Any]) -> Any:
    uvicorn = import_uvicorn()
    # proxy_headers off: both servers listen for local apps, and no local app may rewrite the client's address
    # with an X-Forwarded-For header.
    settings: dict[str, Any] = {"log_level": "warning", "access_log": False, "ws": "none", "server_header": False,
                                "date_header": False, "timeout_graceful_shutdown": 1, "proxy_headers": False}
    settings.update(options)
    return uvicorn.Server(uvicorn.Config(app, **settings))


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class BackgroundServer:
    """``app`` served on ``host:port`` from a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "baicai-server",
                 **uvicorn_options: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._requested_port = port
        self._name = name
        self._options = uvicorn_options
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        if self._thread is not None:
            return self
        server = _server(self.app, self._options)
        sock = bind_socket(self.host, self._requested_port)
        self._server, self._socket, self._error = server, sock, None
        self.port = sock.getsockname()[1]

        def run() -> None:
            import asyncio  # here: importing this module (the sidecar's server does) must not pull asyncio in

            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported by start(), never lost in the thread
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"{self._name}:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError(labelled("服务启动失败", "the server failed to start", f"{self._error!r}"))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(Text("服务启动超时", "the server did not start in time"))
            time.sleep(0.002)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout / 2)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout / 2)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = self._server = self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    app: Any,
    sock: socket.socket,
    *,
    on_started: Callable[[], None] | None = None,
    on_stopping: Callable[[int], None] | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve on ``sock`` (from :func:`bind_socket`) until Ctrl-C; ``on_started`` runs once it really accepts,
    ``on_stopping`` as the stop begins (Ctrl-C, SIGTERM) with the number of requests still being answered — before
    the graceful wait for them, so the console can say at once what the wait is for."""
    server = _server(app, uvicorn_options)
    if on_stopping is not None:
        shutdown: Callable[..., Awaitable[None]] = server.shutdown

        async def stopping(sockets: Any = None) -> None:
            on_stopping(len(server.server_state.tasks))  # uvicorn's task per request in progress
            await shutdown(sockets=sockets)

        server.shutdown = stopping
    if on_started is not None:
        original: Callable[..., Awaitable[None]] = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            if server.started:
                on_started()

        server.startup = startup
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


async def answer_lifespan(receive: Callable[[], Awaitable[dict[str, Any]]],
                          send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """The ASGI lifespan of an app with nothing to start or stop (the emulator, test and bench servers): uvicorn's
    default ``lifespan="auto"`` asks, and an app that does not answer gets a warning at every start."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
