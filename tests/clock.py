"""A clock a test moves by hand: ``clock = Clock(T0); meter = Meter(clock=clock); clock.t += 3600``."""

from __future__ import annotations


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
