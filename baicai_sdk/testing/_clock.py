"""The emulator's own clock.

Hourly windows are the whole point of the relay's limits, and no test can wait an hour. Every time the
emulator reads (window starts, ``created`` fields, ledger-like records) comes from this clock, which is the
real time plus an offset, or a frozen fake time that tests move by hand. Delays that a client *feels*
(chunk delay, added latency) stay real: they are about sockets, not windows.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Clock"]


class Clock:
    """Real time plus ``offset`` seconds, or a frozen time once :meth:`set` or :meth:`freeze` is called."""

    def __init__(self, offset: float = 0.0, *, frozen_at: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = float(offset)
        self._frozen: float | None = frozen_at

    def now(self) -> float:
        with self._lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    __call__ = now

    @property
    def offset(self) -> float:
        """Seconds between the emulator's time and real time (also while frozen)."""
        with self._lock:
            return self._frozen - time.time() if self._frozen is not None else self._offset

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen is not None

    def advance(self, seconds: float) -> float:
        """Move time forward (or back, if negative); returns the new time."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
                return self._frozen
            self._offset += seconds
            return time.time() + self._offset

    def set(self, when: float) -> None:
        """Freeze the clock at the unix time ``when``; it moves only by :meth:`advance` from then on."""
        with self._lock:
            self._frozen = float(when)

    def freeze(self) -> float:
        """Freeze at the current emulator time (tests that count windows exactly want no drift)."""
        with self._lock:
            if self._frozen is None:
                self._frozen = time.time() + self._offset
            return self._frozen

    def unfreeze(self) -> None:
        """Run again from the frozen time, keeping the offset it had reached."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None

    def reset(self, offset: float = 0.0) -> None:
        with self._lock:
            self._frozen = None
            self._offset = float(offset)

    def __repr__(self) -> str:
        return f"Clock(offset={self.offset:.3f}, frozen={self.frozen})"
