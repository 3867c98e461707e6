"""The sidecar as an ASGI app: ``create_app(SidecarConfig(...))``.

Layers, outermost first: Starlette's error handling → :class:`~baicai_sidecar._guard.SidecarGuard` (Host, Origin,
path, token, body checks — nothing below runs for a refused request) → routes: ``GET /sidecar/status`` for the TUI,
``POST /v1/responses`` to :class:`~baicai_sidecar._responses.ResponsesEndpoint` (translated to a chat request
for the same proxy), and everything else to the forwarding :class:`~baicai_sidecar._proxy.Proxy`. The lifespan owns the one upstream
client. Tests pass an explicit upstream URL and key, so they need no keyring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from baicai_sdk import __version__

from ._guard import DEFAULT_ALLOWED_ORIGINS, DEFAULT_MAX_BODY, STATUS_PATH, GuardConfig, SidecarGuard, is_loopback_host
from ._limits import DEFAULT_LIMITS, ServerLimits
from ._proxy import Proxy, ProxyConfig
from ._responses import ResponsesEndpoint
from ._state import DEFAULT_PORT
from ._tokens import TokenStore

__all__ = ["SidecarConfig", "create_app"]


@dataclass
class SidecarConfig:
    upstream: str
    """The relay base URL (normalised: ``…/v1`` once)."""
    api_key: str = field(repr=False)
    profile: str | None = None
    tier: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    open_access: bool = False
    allow_remote: bool = False
    allowed_origins: Iterable[str] = DEFAULT_ALLOWED_ORIGINS
    extra_hosts: Iterable[str] = ()
    max_body: int = DEFAULT_MAX_BODY
    limits: ServerLimits = DEFAULT_LIMITS
    """Head timeout and size, idle keep-alive, connection cap, off-loop parsing (``_limits``)."""
    tokens: TokenStore | None = None
    verify_token: Callable[[str], str | None] | None = None
    """Overrides ``tokens.verify`` (tests)."""
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    retry_policy: Any = None
    transport: Any = None
    """An ``httpx2.AsyncBaseTransport`` replacing the SDK's metered one (tests, bench); normally None."""
    meter: Any = None
    http_client: str = "auto"
    """The upstream HTTP client under the metered pipeline: "auto" (aiohttp when installed), "aiohttp", "httpx2"."""
    quota: str = "raise"
    """"raise": refuse over-quota requests with a readable 429; "off": record only (the bench)."""
    windows: Callable[[], Any] | None = None
    """Quota windows for the status page; default: the SDK's ``UsageStore().windows(tier=tier)``."""

    def __post_init__(self) -> None:
        if not is_loopback_host(self.host):
            if not self.allow_remote:
                raise ValueError(
                    f"出于安全考虑，本地代理默认只监听本机回环地址；{self.host} 解析到的不是（或无法解析），要在其上监听请加 "
                    f"--allow-remote / the sidecar listens on loopback only; {self.host} does not resolve to a loopback "
                    f"address (or does not resolve): pass --allow-remote to listen on it"
                )
            if self.open_access:
                raise ValueError(
                    "--open 只能用于本机回环地址：监听其他地址时必须使用令牌 / "
                    "--open is for loopback only: listening on another address requires a token"
                )


def _windows_default(tier: str | None) -> Any:
    from baicai_sdk import UsageStore

    # per_key: each key's own window (by its own tier's limits) after this IP's, so a user sees which one is full
    return UsageStore().windows(tier=tier if tier in ("free", "paid") else None,  # type: ignore[arg-type]
                                per_key=True)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def create_app(config: SidecarConfig) -> Starlette:
    tokens = config.tokens or TokenStore()
    verify = config.verify_token or tokens.verify
    proxy = Proxy(ProxyConfig(
        upstream=config.upstream, api_key=config.api_key, connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout, retry_policy=config.retry_policy, transport=config.transport,
        meter=config.meter, tier=config.tier, quota=config.quota, http_client=config.http_client,
    ))
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        # Load the tokenizer now (≈0.3 s), not inside the first app request.
        from baicai_sdk.integration import get_encoding

        await anyio.to_thread.run_sync(get_encoding, "cl100k_base")
        try:
            yield
        finally:
            await proxy.aclose()

    async def status(request: Request) -> JSONResponse:
        from baicai_sdk import mask_key

        windows: Any = None
        windows_error = None
        try:
            # The limits of the tier this sidecar gates with, so the page agrees with its refusals.
            windows = _jsonable(config.windows() if config.windows else _windows_default(config.tier))
        except Exception as exc:  # the status page must answer even when the ledger is unreadable
            windows_error = f"{type(exc).__name__}: {exc}"[:200]
        stats = proxy.stats
        return JSONResponse({
            "version": __version__,
            "upstream": config.upstream,
            "profile": config.profile,
            "key": mask_key(config.api_key),
            "tier": config.tier or "unknown",
            "open": config.open_access,
            "app": request.scope.get("baicai.app"),
            "uptime_s": round(time.time() - started, 3),
            "requests": stats.requests,
            "streams": stats.streams,
            "retries": stats.retries,
            "windows": windows,
            "windows_error": windows_error,
            "recent_errors": list(stats.recent_errors),
        })

    guard = GuardConfig(verify_token=verify, open_access=config.open_access,
                        allowed_origins=config.allowed_origins, extra_hosts=config.extra_hosts,
                        max_body=config.max_body, offload_bytes=config.limits.offload_bytes)
    responses = ResponsesEndpoint(proxy)
    app = Starlette(
        routes=[Route(STATUS_PATH, status, methods=["GET"]),
                Route("/v1/responses", endpoint=responses, methods=["POST"]),
                Route("/responses", endpoint=responses, methods=["POST"]),
                Route("/{path:path}", endpoint=proxy)],
        middleware=[Middleware(SidecarGuard, config=guard)],
        lifespan=lifespan,
    )
    app.state.proxy = proxy
    app.state.config = config
    return app
