"""``wait_until``: the one way tests wait for something another thread or process makes true a moment later.

The emulator records a request, books its cost and marks a cut stream just *after* it has answered; the sidecar
settles its ledger row after the app has its reply; a detached helper writes its file when it gets to it. A test
that asserts at once races them, so it polls — here, with one deadline and one message, instead of a loop per test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.01, what: str = "") -> T:
    """Call ``condition`` until it returns something truthy, and return that; raise ``AssertionError`` naming
    ``what`` (and the last value) when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or 'the condition'} (last: {value!r})")
        time.sleep(interval)
