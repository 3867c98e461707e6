"""pytest fixtures: ``emulator`` (a running relay emulator, fresh state per test) and ``emulator_factory``.

``emulator`` reuses one server per session and resets it (config, clock, windows, balances, records) before
each test: starting a server is fast, but not starting one is faster, and hundreds of tests use it.
``emulator_factory(**settings)`` starts a dedicated server (e.g. a fixed port or different keys) and stops it
after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._config import EmulatorConfig
from ._server import EmulatorServer


@pytest.fixture(scope="session")
def _baicai_emulator_session() -> Iterator[EmulatorServer]:
    server = EmulatorServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(_baicai_emulator_session: EmulatorServer) -> Iterator[EmulatorServer]:
    server = _baicai_emulator_session
    if not server.running:  # a test stopped it: bring it back on the same port
        server.start()
    server.reset(EmulatorConfig())
    yield server
    server.reset(EmulatorConfig())


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    started: list[EmulatorServer] = []

    def make(config: EmulatorConfig | None = None, **settings: Any) -> EmulatorServer:
        host = settings.pop("host", "127.0.0.1")
        port = settings.pop("port", 0)
        server = EmulatorServer(config, host=host, port=port, **settings).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()
