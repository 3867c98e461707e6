"""The one request pipeline, as httpx2 transports (httpx's ``_transports/`` is the model).

- :mod:`._metered` — :class:`MeteredTransport` / :class:`AsyncMeteredTransport`: quota gate, ledger, the relay's
  error rules; :func:`http_client` / :func:`async_http_client` for libraries that take an ``http_client``.
- :mod:`._proxies` — the default inner transports, routed by the environment's proxy variables.
- :mod:`._wire` — the protocol facts every layer reads answers with (headers, SSE, relay errors, Retry-After, the
  OpenAI-shaped error body); it imports neither ``openai`` nor the pipeline.

Import from here; the submodules are this package's own layout.
"""

from __future__ import annotations

from .._quota import QuotaMode
from ._metered import (
    DEFAULT_MAX_WAIT,
    AsyncMeteredTransport,
    MeteredTransport,
    async_http_client,
    http_client,
)
from ._proxies import env_proxy_for
from ._wire import APP_HEADER, LOCAL_QUOTA_HEADER, ORIGINAL_STATUS_HEADER

__all__ = [
    "MeteredTransport",
    "AsyncMeteredTransport",
    "http_client",
    "async_http_client",
    "env_proxy_for",
    "APP_HEADER",
    "DEFAULT_MAX_WAIT",
    "LOCAL_QUOTA_HEADER",
    "ORIGINAL_STATUS_HEADER",
    "QuotaMode",
]
