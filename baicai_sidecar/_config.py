"""What a sidecar is configured with, importable without what runs it.

``from baicai_sidecar.app import SidecarConfig`` comes before ``serve()`` in every program that starts a sidecar
(the CLI, the bench, tests), and ``serve()`` builds the chat tokenizer before anything else: the ranks dict it
needs (~13 MB) and tiktoken's tables (~20 MB) coexist for a moment, on top of whatever the process holds then.
So the settings live here, beside nothing heavier than ``dataclasses``: importing the app's config must not pull in
asyncio, httpx2, the guard or the proxy (``tests/sidecar/test_footprint.py``). The modules that use these names
(``_proxy``, ``_guard``, ``_limits``) import them from here and export them as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2

__all__ = ["ProxyConfig", "ServerLimits", "DEFAULT_LIMITS", "DEFAULT_MAX_BODY", "DEFAULT_ALLOWED_ORIGINS",
           "STATUS_PATH"]

DEFAULT_MAX_BODY = 25 * 1024 * 1024
"""Image edits upload a PNG (OpenAI's own cap is 4 MB per image, audio 25 MB); chat bodies are far smaller."""

DEFAULT_ALLOWED_ORIGINS: tuple[str, ...] = (
    # LobeChat and NextChat run locally on these ports by default; Tauri desktop shells use the last two.
    "http://localhost:3210",
    "http://127.0.0.1:3210",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "tauri://localhost",
    "http://tauri.localhost",
)

STATUS_PATH = "/sidecar/status"


@dataclass(frozen=True)
class ServerLimits:
    head_timeout: float = 10.0
    """Seconds for the request line and headers to arrive (slow-loris and silent connections)."""
    keepalive_timeout: float = 5.0
    """Seconds an idle kept-alive connection stays open between requests (uvicorn's ``timeout_keep_alive``)."""
    max_head_bytes: int = 64 * 1024
    """Request line + headers. Browsers and OpenAI clients send a few KB."""
    max_connections: int = 512
    """Open connections before idle ones are closed to make room (and, when none is idle, new ones get 503)."""
    offload_bytes: int = 256 * 1024
    """JSON bodies larger than this are parsed and token-counted in a worker thread, off the event loop."""


DEFAULT_LIMITS = ServerLimits()


@dataclass
class ProxyConfig:
    upstream: str
    """The relay base URL including ``/v1`` (already normalised)."""
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    """Long on purpose: a slow model may take minutes before its first token, and between chunks."""
    retry_policy: Any = None
    """``baicai_sdk.RetryPolicy``-like; default: the SDK's ``DEFAULT_RETRY_POLICY``."""
    transport: httpx2.AsyncBaseTransport | None = None
    """Tests and the bench may replace the whole upstream transport; normally the SDK's metered one."""
    meter: Any = None
    tier: str | None = None
    http_client: str = "auto"
    """The upstream HTTP client: "auto"/"direct" (asyncio + httptools, aiohttp through proxies), "aiohttp" or
    "httpx2" (see :func:`~baicai_sidecar._proxy.upstream_transport`)."""
    quota: str = "raise"
    """The transport's quota mode: "raise" (an app cannot be told to wait: it gets the 429 with Retry-After), or
    "off" (meter and record, never refuse — the bench)."""
