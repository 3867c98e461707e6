"""``EmulatorServer``: the emulator on a real socket, in a background thread.

Tests start many of these, so starting must be quick: the socket is bound here (port 0 → a free port) and
handed to uvicorn, and ``start()`` returns as soon as uvicorn says it is serving. ``stop()`` asks uvicorn to
exit, gives open streams a moment, then forces it, and joins the thread: no thread or socket is left behind.
uvicorn is imported only here, and only when a server starts.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from .._serving import BackgroundServer, UvicornMissing, bind_socket, import_uvicorn
from .._text import Text
from ._app import ConnectionReset, RelayEmulator
from ._clock import Clock
from ._config import FREE_DEMO_KEY, FROZEN_DEMO_KEY, PAID_DEMO_KEY, EmulatorConfig
from ._state import EmulatorState, RequestRecord
from ._wait import wait_until

__all__ = ["EmulatorServer", "UvicornMissing", "bind_socket", "import_uvicorn"]  # the last three re-exported


class _DropInjectedResets(logging.Filter):
    """A reset we injected on purpose is not a server error: keep it out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionReset)


_reset_filter = _DropInjectedResets()
logging.getLogger("uvicorn.error").addFilter(_reset_filter)


def _first_key(config: EmulatorConfig, tier: str, demo: str) -> str | None:
    keys = config.keys or {}
    if demo in keys and keys[demo] == tier:
        return demo
    return next((k for k, t in keys.items() if t == tier), None)


class EmulatorServer:
    """The relay emulator served over HTTP on ``host:port`` (default 127.0.0.1 and a free port)."""

    def __init__(self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 **settings: Any) -> None:
        if config is None:
            config = EmulatorConfig(**settings)
        elif settings:
            config = config.replace(**settings)
        self.app = RelayEmulator(config)
        self._server = BackgroundServer(self.app, host, port, name="baicai-emulator", lifespan="off", http="h11",
                                        timeout_keep_alive=5)

    # --- what tests use
    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def config(self) -> EmulatorConfig:
        return self.app.config

    @property
    def state(self) -> EmulatorState:
        return self.app.state

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @property
    def free_key(self) -> str:
        return self._key("free", FREE_DEMO_KEY)

    @property
    def paid_key(self) -> str:
        return self._key("paid", PAID_DEMO_KEY)

    @property
    def frozen_key(self) -> str:
        return self._key("frozen", FROZEN_DEMO_KEY)

    def _key(self, tier: str, demo: str) -> str:
        key = _first_key(self.app.config, tier, demo)
        if key is None:
            raise LookupError(Text(f"模拟器没有 {tier} 等级的密钥", f"the emulator has no {tier} key"))
        return key

    def configure(self, **changes: Any) -> EmulatorConfig:
        return self.app.configure(**changes)

    def reset(self, config: EmulatorConfig | None = None) -> None:
        self.app.reset(config)

    def wait_for_requests(self, count: int, *, timeout: float = 5.0) -> list[RequestRecord]:
        """The requests seen so far, once there are at least ``count`` and each has its status (the emulator
        records just after answering, so a test that checks at once may find the last one missing)."""

        def answered() -> bool:
            records = list(self.state.requests)
            return len(records) >= count and all(r.status for r in records)

        wait_until(answered, timeout=timeout, what=f"{count} answered request(s) at the emulator")
        return list(self.state.requests)

    # --- lifecycle
    def start(self, timeout: float = 5.0) -> "EmulatorServer":
        from .._meter import _netloc, register_relay_host

        self._server.start(timeout)
        # Requests from this process to this address follow the relay's hourly limits from the first one on
        # (other processes learn it from the marker header the emulator sends with every answer).
        register_relay_host(_netloc(self.base_url))
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.stop(timeout)

    @property
    def running(self) -> bool:
        return self._server.running

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer({self.url if self.running else 'stopped'})"
