"""The sidecar as an ASGI app: ``create_app(SidecarConfig(...))``.

Layers, outermost first: :class:`~baicai_sidecar._guard.SidecarGuard` (Host, Origin, path, token, body checks —
nothing below runs for a refused request) → by path: ``GET /sidecar/status`` for the TUI (a JSON answer),
``POST /v1/responses`` to :class:`~baicai_sidecar._responses.ResponsesEndpoint` (translated to a chat request
for the same proxy), and everything else to the forwarding :class:`~baicai_sidecar._proxy.Proxy`. The lifespan owns
the one upstream client. Tests pass an explicit upstream URL and key, so they need no keyring.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from baicai_sdk import __version__
from baicai_sdk.integration import is_loopback_host

from ._asgi import Receive, Scope, Send
from ._config import DEFAULT_ALLOWED_ORIGINS, DEFAULT_LIMITS, DEFAULT_MAX_BODY, STATUS_PATH, ProxyConfig, ServerLimits
from ._state import DEFAULT_PORT
from ._tokens import TokenStore

if TYPE_CHECKING:
    from ._guard import GuardConfig

# The guard, the proxy and the Responses route (with httpx2, asyncio and the SDK's transport under them) are
# imported when an app is created, not with this module: ``serve()`` builds the tokenizer between the two, while
# the process is still small (``_config``).

__all__ = ["SidecarConfig", "SidecarApp", "create_app"]


@dataclass
class SidecarConfig(ProxyConfig):
    """Everything a sidecar runs with: the proxy's settings (it *is* a :class:`ProxyConfig`: upstream, key,
    timeouts, retry policy, transport, meter, tier, upstream client, quota mode — handed to the proxy as they are),
    plus where it listens, whom it lets in (:meth:`guard_config`) and its connection limits."""

    profile: str | None = None
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
    windows: Callable[[], Any] | None = None
    """Quota windows for the status page; default: the SDK's ``UsageStore().windows(tier=tier)``."""

    def guard_config(self) -> GuardConfig:
        """The guard's settings: this config's access rules, and the token check of its token store."""
        from ._guard import GuardConfig

        verify = self.verify_token or (self.tokens or TokenStore()).verify
        return GuardConfig(verify_token=verify, open_access=self.open_access, allowed_origins=self.allowed_origins,
                           extra_hosts=self.extra_hosts, max_body=self.max_body,
                           offload_bytes=self.limits.offload_bytes)

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


class SidecarApp:
    """The sidecar's ASGI app: the lifespan, then every HTTP request through the guard to its endpoint.

    No framework: a request the guard lets through goes to the proxy (or the Responses route, or the status page)
    by one comparison of its path. Starlette's routing, its two error middlewares and their ``send`` wrappers cost
    CPU on every request and every streamed chunk and decide nothing here — the guard already checked path and
    method, and uvicorn answers an exception with a 500 as Starlette did; the status page is one JSON answer."""

    def __init__(self, config: SidecarConfig) -> None:
        from ._guard import SidecarGuard
        from ._proxy import Proxy
        from ._responses import ResponsesEndpoint

        self.config = config
        self.proxy = Proxy(config)
        self.responses = ResponsesEndpoint(self.proxy)
        self.started = time.time()
        self.state = SimpleNamespace(proxy=self.proxy, config=config)
        """As Starlette's ``app.state``: ``SidecarServer.proxy`` and tests read the proxy here."""
        self.guard = SidecarGuard(self._route, config.guard_config())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.guard(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == STATUS_PATH:
            await self.status(scope, receive, send)
        elif path in _RESPONSES_PATHS:
            await self.responses(scope, receive, send)
        else:
            await self.proxy(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Open the one upstream client at start (and load the tokenizer, ≈0.3 s, not inside the first app
        request); close it at the end."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.proxy.start()
                    from baicai_sdk.integration import get_encoding, is_loaded

                    if not is_loaded("cl100k_base"):  # ``serve()`` loaded it before the server: no worker thread
                        import anyio

                        await anyio.to_thread.run_sync(get_encoding, "cl100k_base")
                except BaseException as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    raise
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.proxy.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def status(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /sidecar/status`` (the guard let only that method through): the TUI's view of this sidecar, as
        JSON. Written here rather than with Starlette, which served only this page: its import was 1.2 MB of the
        sidecar's memory (bench/bench_memory.py)."""
        from baicai_sdk import mask_key

        config = self.config
        windows: Any = None
        windows_error = None
        try:
            # The limits of the tier this sidecar gates with, so the page agrees with its refusals.
            windows = _jsonable(config.windows() if config.windows else _windows_default(config.tier))
        except Exception as exc:  # the status page must answer even when the ledger is unreadable
            windows_error = f"{type(exc).__name__}: {exc}"[:200]
        stats = self.proxy.stats
        body = json.dumps({
            "version": __version__,
            "upstream": config.upstream,
            "profile": config.profile,
            "key": mask_key(config.api_key),
            "tier": config.tier or "unknown",
            "open": config.open_access,
            "app": scope.get("baicai.app"),
            "uptime_s": round(time.time() - self.started, 3),
            "requests": stats.requests,
            "streams": stats.streams,
            "retries": stats.retries,
            "windows": windows,
            "windows_error": windows_error,
            "recent_errors": list(stats.recent_errors),
        }, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


_RESPONSES_PATHS = frozenset({"/v1/responses", "/responses"})


def create_app(config: SidecarConfig) -> SidecarApp:
    return SidecarApp(config)
