"""A real sidecar (uvicorn on a free port, in a thread) in front of the emulator fixture."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from baicai_sdk import RetryPolicy
from baicai_sidecar._server import SidecarServer
from baicai_sidecar._tokens import TokenStore
from baicai_sidecar.app import SidecarConfig

FAST_RETRIES = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, jitter=0.0)


@pytest.fixture
def app_token() -> str:
    """The token a desktop app called "testapp" was given."""
    return TokenStore().issue("testapp")


@pytest.fixture
def sidecar_factory(emulator: Any) -> Iterator[Callable[..., SidecarServer]]:
    servers: list[SidecarServer] = []

    def make(**overrides: Any) -> SidecarServer:
        settings: dict[str, Any] = {"upstream": emulator.base_url, "api_key": emulator.paid_key, "tier": "paid",
                                    "retry_policy": FAST_RETRIES, "connect_timeout": 2.0}
        settings.update(overrides)
        server = SidecarServer(SidecarConfig(**settings)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sidecar(sidecar_factory: Callable[..., SidecarServer]) -> SidecarServer:
    return sidecar_factory()


@pytest.fixture
def fast_retries() -> RetryPolicy:
    return FAST_RETRIES


@pytest.fixture(name="ledger_rows")
def ledger_rows_fixture() -> Callable[[], list[dict[str, Any]]]:
    return ledger_rows


def ledger_rows(*, settled_within: float = 5.0) -> list[dict[str, Any]]:
    """Every ledger row (tests only: the product reads the ledger through the SDK's UsageStore).

    The sidecar settles a non-streamed answer's row just after the app has the answer (``SETTLE_AFTER``), so a
    test reading right after its request may find it still pending for a moment: the rows are read again until
    none is pending, for ``settled_within`` seconds at most (then returned as they are: a row that stays pending
    is the test's to judge)."""
    from baicai_sdk.integration import ledger_path

    path = ledger_path()
    deadline = time.monotonic() + settled_within
    while True:
        if not path.exists():
            return []
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY id")]
        if all(r["status"] != "pending" for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.005)
