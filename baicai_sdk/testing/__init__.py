"""The BaicaiGPT relay emulator: what every test (and ``baicai emulator``) talks to instead of the real relay.

``RelayEmulator`` is a pure ASGI app; ``EmulatorServer`` serves it on a real socket in a thread; the pytest
plugin (``baicai_sdk.testing.pytest_plugin``) gives the ``emulator`` and ``emulator_factory`` fixtures.
uvicorn (the ``[sidecar]`` extra) is needed only to serve.
"""

from __future__ import annotations

from ._app import RelayEmulator
from ._clock import Clock
from ._config import (
    FREE_DEMO_KEY,
    FROZEN_DEMO_KEY,
    PAID_DEMO_KEY,
    EmulatorConfig,
    Faults,
    FaultSpecError,
    demo_keys,
)
from ._server import EmulatorServer, UvicornMissing
from ._state import EmulatorState, RequestRecord
from ._wait import wait_until

__all__ = [
    "Clock",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Faults",
    "FaultSpecError",
    "FREE_DEMO_KEY",
    "FROZEN_DEMO_KEY",
    "PAID_DEMO_KEY",
    "RelayEmulator",
    "RequestRecord",
    "UvicornMissing",
    "demo_keys",
    "wait_until",
]
