"""The one request pipeline, as httpx2 transports (httpx's ``_transports/`` is the model).

- :mod:`._metered` — :class:`MeteredTransport` / :class:`AsyncMeteredTransport`: quota gate, ledger, the relay's
  error rules; :func:`http_client` / :func:`async_http_client` for libraries that take an ``http_client``.
- :mod:`._proxies` — the default inner transports, routed by the environment's proxy variables.

Import from here; the submodules are this package's own layout.
"""

from __future__ import annotations

from ._metered import (
    APP_HEADER,
    DEFAULT_MAX_WAIT,
    LOCAL_QUOTA_HEADER,
    ORIGINAL_STATUS_HEADER,
    AsyncMeteredTransport,
    MeteredTransport,
    QuotaMode,
    async_http_client,
    http_client,
)
from ._proxies import env_proxy_for

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
