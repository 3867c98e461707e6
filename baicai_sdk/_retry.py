"""When to send a failed request again, and after how long — one policy for the SDK and the sidecar.

Retried: relay code -1 (busy) and 45011 (too frequent), connection errors raised before the request body
was sent, and — for answers without a relay code (any OpenAI-compatible server) — what openai retries: 408, 409,
429 and 5xx. Never retried: hourly-limit codes (they go to the quota logic, which waits for the
window or raises with ``retry_at``), authentication, model, endpoint and tier codes — sending them again
cannot help and, for limits, would only spend the next window's budget. Delays are capped exponential
backoff with jitter, and a ``Retry-After`` from the relay wins over our own guess.

The SDK does not run its own loop: the transport (and ``Baicai`` itself) turns the policy into openai's
``x-should-retry`` / ``retry-after-ms`` headers, so openai's retry loop follows it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._codes import relay_code as _documented
from ._text import Text
from ._transport._wire import parse_retry_after

__all__ = ["RetryPolicy", "DEFAULT_RETRY_POLICY", "parse_retry_after"]

_RETRIED_STATUSES = frozenset({408, 409, 429})
"""Besides 5xx: the statuses openai's own client retries (timeout, lock conflict, rate limit)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures to retry, how many times, and how long to wait before each attempt."""

    max_retries: int = 3
    base_delay: float = 0.5
    """The first backoff, in seconds; doubled at each attempt."""
    max_delay: float = 20.0
    """No computed backoff is longer than this."""
    jitter: float = 0.25
    """Each backoff is shortened by a random 0…jitter fraction, so clients that failed together do not return together."""
    max_retry_after: float = 60.0
    """A server-directed ``Retry-After`` is honoured up to this many seconds; ``delay`` caps longer ones here, and
    the clients do not retry at all when asked to wait longer (the caller should hear about it, not hang)."""
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(Text("max_retries 不能为负", "max_retries must be >= 0"))
        if self.base_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(Text("延迟参数无效", "delays must be >= 0 and jitter within 0..1"))

    def should_retry(
        self, *, relay_code: int | None = None, status: int | None = None, connect_error: bool = False
    ) -> bool:
        """Whether the same request may be sent again (ignoring how many attempts were made).

        A relay code decides on its own when it is documented; an undocumented one is retried only with a 5xx
        status. ``connect_error`` means the connection failed before the body was sent, so nothing was charged.
        """
        if relay_code is not None:
            known = _documented(relay_code)
            if known is not None:
                return known.retryable
            return status is not None and status >= 500
        if connect_error:
            return True
        if status is None:
            return False
        return status in _RETRIED_STATUSES or status >= 500

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry).

        ``retry_after`` (seconds, from the answer's headers) is honoured as given, capped at ``max_retry_after``;
        otherwise ``base_delay * 2**attempt`` capped at ``max_delay``, minus up to ``jitter`` of it.
        """
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.base_delay * (2.0 ** min(max(attempt, 0), 60)), self.max_delay)
        return backoff * (1.0 - self.jitter * self.random())


DEFAULT_RETRY_POLICY = RetryPolicy()
