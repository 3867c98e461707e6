"""The one request pipeline, as httpx2 transports (httpx's ``_transports/`` is the model).

- :mod:`._metered` — :class:`MeteredTransport` / :class:`AsyncMeteredTransport`: quota gate, ledger, the relay's
  error rules; :func:`http_client` / :func:`async_http_client` for libraries that take an ``http_client``.
- :mod:`._proxies` — the default inner transports, routed by the environment's proxy variables.
- :mod:`._wire` — the protocol facts every layer reads answers with (headers, SSE, relay errors, Retry-After, the
  OpenAI-shaped error body); it imports neither ``openai`` nor the pipeline.

Import from here; the submodules are this package's own layout.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._quota import QuotaMode
    from ._metered import (
        DEFAULT_MAX_WAIT,
        AsyncMeteredTransport,
        MeteredTransport,
        async_http_client,
        http_client,
    )
    from ._proxy_env import env_proxy_for
    from ._wire import APP_HEADER, LOCAL_QUOTA_HEADER, ORIGINAL_STATUS_HEADER

# Loaded on first use: `baicai usage balance` needs only `_wire` and `_proxy_env`, not httpx2, the metered pipeline
# and the quota predictor behind it (bench/bench_cli.py).
_HOME = {
    "QuotaMode": "baicai_sdk._quota",
    "DEFAULT_MAX_WAIT": "._metered", "AsyncMeteredTransport": "._metered", "MeteredTransport": "._metered",
    "async_http_client": "._metered", "http_client": "._metered",
    "env_proxy_for": "._proxy_env",
    "APP_HEADER": "._wire", "LOCAL_QUOTA_HEADER": "._wire", "ORIGINAL_STATUS_HEADER": "._wire",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
