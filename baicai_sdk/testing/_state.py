"""What the emulator remembers: every request, the hourly windows, balances and generated images.

Windows (the relay's rule is undocumented; this is the emulator's choice, and clients must be at least as
conservative): a sliding 3600 s window on the emulator clock, kept per (family, key) **and** per
(family, client IP). A request is admitted only if it fits both: the request count of the key's own window,
and that of every request from the same IP in the family (whatever key sent them — "extra keys do not add
quota"), are each below the tier's limit. Free-tier tokens: a request is refused (40031/40032) when
``tokens already used in the window + this request's prompt tokens > limit``; prompt + completion tokens
are charged after the answer. Only admitted requests count; refused ones do not use the budget.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from ._util import mask_key

__all__ = ["RequestRecord", "EmulatorState", "WINDOW_SECONDS"]

WINDOW_SECONDS = 3600.0


@dataclass
class RequestRecord:
    """One request as the relay saw it. Never holds prompt or completion text."""

    time: float
    method: str
    path: str
    authorization: str | None = field(repr=False)
    """The header exactly as received (tests check key injection); hidden from repr, masked in JSON."""
    client_ip: str
    model: str | None = None
    status: int = 0
    relay_code: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0
    cost: float = 0.0
    stream: bool = False
    key_tier: str | None = None
    finished: bool = False
    """The relay is done with it: answered (or left by its client) and billed. A stream its client left is billed
    when the relay notices, which can be after the client has moved on."""
    outcome: str = "ok"
    """``ok`` or ``error``; ``cancelled`` when the client left during the ``latency`` fault (status 499, nothing
    billed); ``abandoned`` when it left during the ``slow`` fault and was served and billed anyway; for streams also
    ``truncated``, ``reset``, ``stream_error``, ``disconnected``."""

    @property
    def key_masked(self) -> str | None:
        return mask_key(self.authorization) if self.authorization is not None else None

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["authorization"] = self.key_masked
        return out


@dataclass
class _Use:
    time: float
    key: str
    ip: str
    tokens: int = 0


class EmulatorState:
    """Thread-safe: the server thread writes, tests read and adjust from theirs."""

    def __init__(self, paid_keys: list[str], paid_balance: float) -> None:
        self._lock = threading.RLock()
        self.lock = self._lock
        """Held while a request is checked against the windows and counted (one decision at a time)."""
        self.requests: list[RequestRecord] = []
        self._uses: dict[str, deque[_Use]] = {}
        self._recent: dict[str, deque[float]] = {}
        self._spent: dict[str, float] = {}
        self._balance: dict[str, float] = {k: paid_balance for k in paid_keys}
        self.images: dict[str, tuple[int, int, tuple[int, int, int]]] = {}

    # --- records
    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def relay_requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self.requests)

    # --- windows
    def _window(self, family: str, now: float) -> deque[_Use]:
        uses = self._uses.setdefault(family, deque())
        while uses and uses[0].time <= now - WINDOW_SECONDS:
            uses.popleft()
        return uses

    def window_use(self, family: str, key: str, ip: str, now: float) -> tuple[int, int, int, int]:
        """(requests by key, requests from ip, tokens by key, tokens from ip) in the current window."""
        with self._lock:
            uses = self._window(family, now)
            by_key = [u for u in uses if u.key == key]
            by_ip = [u for u in uses if u.ip == ip]
            return len(by_key), len(by_ip), sum(u.tokens for u in by_key), sum(u.tokens for u in by_ip)

    def admit(self, family: str, key: str, ip: str, now: float) -> _Use:
        with self._lock:
            use = _Use(now, key, ip)
            self._window(family, now).append(use)
            return use

    def charge_tokens(self, use: _Use, tokens: int) -> None:
        with self._lock:
            use.tokens += tokens

    def next_free_at(self, family: str, key: str, ip: str, now: float) -> float | None:
        """When the oldest use of this key or IP leaves the window (for tests and the admin view)."""
        with self._lock:
            uses = [u for u in self._window(family, now) if u.key == key or u.ip == ip]
            return uses[0].time + WINDOW_SECONDS if uses else None

    def burst_count(self, key: str, now: float, span: float = 1.0) -> int:
        """Requests of ``key`` within the last ``span`` seconds, this one included."""
        with self._lock:
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - span:
                recent.popleft()
            recent.append(now)
            return len(recent)

    # --- money
    def spend(self, key: str, amount: float) -> None:
        with self._lock:
            self._spent[key] = self._spent.get(key, 0.0) + amount
            if key in self._balance:
                self._balance[key] -= amount

    def spent(self, key: str) -> float:
        with self._lock:
            return self._spent.get(key, 0.0)

    def balance(self, key: str) -> float:
        """CNY left on a paid key (0.0 for free and unknown keys)."""
        with self._lock:
            return self._balance.get(key, 0.0)

    def set_balance(self, key: str, amount: float) -> None:
        with self._lock:
            self._balance[key] = float(amount)

    def top_up(self, key: str, amount: float) -> None:
        with self._lock:
            self._balance[key] = self._balance.get(key, 0.0) + float(amount)

    def total_granted(self, key: str) -> float:
        """Balance + spent: what one-api/new-api report as ``hard_limit_usd``."""
        with self._lock:
            return self._balance.get(key, 0.0) + self._spent.get(key, 0.0) if key in self._balance else 0.0

    def public(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": [r.public() for r in self.requests],
                "balances": {mask_key(k): v for k, v in self._balance.items()},
                "spent": {mask_key(k): v for k, v in self._spent.items()},
            }
