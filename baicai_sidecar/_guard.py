"""The sidecar's front door: every check that must pass before any endpoint runs, as one pure ASGI middleware.

Why pure ASGI (not ``@app.middleware("http")`` / ``BaseHTTPMiddleware``): that wrapper hides client disconnects
from streaming endpoints and buffers in ways we do not control. And why reject here rather than lean on
Starlette's ``CORSMiddleware``: that one still runs the endpoint for a disallowed Origin and only withholds the
CORS headers — a cross-site page could still spend the user's balance with a "simple" request it cannot read.

Order of checks (each one answers with an OpenAI-shaped error an app can show):
1. Host allow-list (DNS rebinding): ``localhost`` / ``127.0.0.1`` / ``[::1]`` with the listening port; an empty or
   missing Host is refused (Ollama's Host check was bypassed exactly that way).
2. Origin allow-list: a browser request from any other origin is refused outright; allowed origins get CORS
   headers naming that origin (never ``*``) and their preflights are answered here.
3. Path allow-list: OpenAI's routes (with or without ``/v1``), plus ``/sidecar/status``.
4. Local token (constant-time), unless the sidecar runs ``--open`` on loopback.
5. Body: POST must be JSON (multipart only where OpenAI uses it), under the size limit, and — for JSON — parse.
   The body is buffered here (chat requests are small) and replayed to the endpoint, so the proxy never sees a
   request that failed a check.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from baicai_sdk.integration import error_body

__all__ = [
    "GuardConfig",
    "SidecarGuard",
    "openai_error_body",
    "DEFAULT_ALLOWED_ORIGINS",
    "DEFAULT_MAX_BODY",
    "is_loopback_host",
    "route_allowed",
]

log = logging.getLogger("baicai.sidecar")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

# OpenAI's routes, matched after an optional leading "/v1". NextChat asks for billing without "/v1".
_ROUTES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(pattern), frozenset(methods))
    for pattern, methods in [
        (r"/models", {"GET"}),
        (r"/models/[A-Za-z0-9._:@/-]+", {"GET"}),
        (r"/chat/completions", {"POST"}),
        (r"/completions", {"POST"}),
        (r"/responses", {"POST"}),  # translated to chat completions (_responses.py)
        (r"/embeddings", {"POST"}),
        (r"/moderations", {"POST"}),
        (r"/images/(generations|edits|variations)", {"POST"}),
        (r"/audio/(speech|transcriptions|translations)", {"POST"}),
        (r"/dashboard/billing/(subscription|usage)", {"GET"}),
        (r"/dashboard/billing/credit_grants", {"GET"}),
    ]
)
_MULTIPART_ROUTES = re.compile(r"^(/v1)?/(images/(edits|variations)|audio/(transcriptions|translations))$")
STATUS_PATH = "/sidecar/status"
PARSED_BODY = "baicai.parsed_body"
"""Scope key: a large JSON body the guard parsed (in a worker thread), handed to the proxy so it is parsed once."""


def route_allowed(path: str, method: str) -> bool | None:
    """True: allowed; False: known path, wrong method; None: unknown path."""
    if path == STATUS_PATH:
        return method == "GET"
    tail = path[3:] if path == "/v1" or path.startswith("/v1/") else path
    if any(segment in (".", "..") for segment in tail.split("/")):
        return None  # "/v1/models/..%2f..%2fadmin" arrives decoded: the upstream URL would climb out of /v1
    for pattern, methods in _ROUTES:
        if pattern.fullmatch(tail):
            return method in methods
    return None


def is_loopback_host(host: str) -> bool:
    """Whether listening on ``host`` stays on this machine: decided by the address(es) it resolves to, never by its
    spelling ("127.example.net" or a hosts-file name may resolve to a LAN address). A name that does not resolve is
    not loopback."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def openai_error_body(message_zh: str, message_en: str, *, type: str, code: str | int | None = None,
                      **extra: Any) -> bytes:
    """OpenAI's error shape, message Chinese first (the SDK's ``_wire.error_body``), as bytes to send."""
    return json.dumps(error_body(message_zh, message_en, type=type, code=code, **extra), ensure_ascii=False).encode("utf-8")


@dataclass
class GuardConfig:
    verify_token: Callable[[str], str | None]
    """Local token -> app name (``TokenStore.verify``), None when unknown."""
    open_access: bool = False
    """``--open``: any key is accepted (loopback only); requests are attributed to app ``open``."""
    allowed_origins: Iterable[str] = DEFAULT_ALLOWED_ORIGINS
    extra_hosts: Iterable[str] = ()
    """Host names allowed besides loopback (the LAN address when bound to one with ``--allow-remote``)."""
    max_body: int = DEFAULT_MAX_BODY
    offload_bytes: int = 256 * 1024
    """Larger JSON bodies are parsed in a worker thread: one app's huge request must not stall the others."""
    _origins: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        self._origins = frozenset(o.rstrip("/").lower() for o in self.allowed_origins)

    def origin_allowed(self, origin: str) -> bool:
        return origin.rstrip("/").lower() in self._origins


class _BodyTooLarge(Exception):
    pass


def _headers(scope: Scope) -> dict[str, str]:
    # Later duplicates win, except that a duplicated Host is refused outright below.
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _bearer(headers: dict[str, str]) -> str:
    """The token an app sent: ``Authorization: Bearer …``, or Azure-style ``api-key``."""
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("api-key", "").strip()


def _count(scope: Scope, name: bytes) -> int:
    return sum(1 for k, _ in scope.get("headers", []) if k.lower() == name)


class SidecarGuard:
    """Pure ASGI middleware; sets ``scope["baicai.app"]`` (the app a request is attributed to)."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        headers = _headers(scope)
        method = scope["method"].upper()
        path = scope["path"]

        async def reply(status: int, body: bytes, **options: Any) -> None:
            if status >= 400:
                _log_refusal(method, path, status, body)
            await _reply(send, status, body, **options)

        if not self._host_ok(scope, headers.get("host", "")):
            await reply(421 if headers.get("host") else 400, openai_error_body(
                "Host 请求头不被接受：请用 http://127.0.0.1:端口 访问本地代理",
                "the Host header is not accepted: reach the sidecar as http://127.0.0.1:PORT "
                "(this blocks DNS-rebinding attacks from web pages)",
                type="baicai_sidecar_forbidden", code="host_not_allowed"))
            return

        origin = headers.get("origin")
        cors: list[tuple[bytes, bytes]] = []
        if origin is not None:
            if _count(scope, b"origin") != 1:
                # Browsers send one Origin; two mean a crafted request, and judging either one alone could be wrong.
                await reply(400, openai_error_body(
                    "请求带有多个 Origin 请求头，已拒绝", "the request carries more than one Origin header: refused",
                    type="baicai_sidecar_forbidden", code="origin_not_allowed"))
                return
            if not self.config.origin_allowed(origin):
                await reply(403, openai_error_body(
                    f"来源 {origin[:80]} 未被允许：在 baicai sidecar 上用 --allow-origin 添加该网页应用的地址",
                    f"origin {origin[:80]} is not allowed: add the web app's address with "
                    "`baicai sidecar --allow-origin URL`",
                    type="baicai_sidecar_forbidden", code="origin_not_allowed"))
                return
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                    (b"access-control-expose-headers", b"x-request-id, retry-after, x-baicai-local-quota")]
            if method == "OPTIONS" and "access-control-request-method" in headers:
                await reply(204, b"", extra=cors + [
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers",
                     headers.get("access-control-request-headers", "authorization, content-type").encode("latin-1")),
                    (b"access-control-max-age", b"600"),
                ], content_type=None)
                return

        allowed = route_allowed(path, method)
        if allowed is None:
            await reply(404, openai_error_body(
                f"本地代理不转发此路径：{path[:100]}",
                f"the sidecar does not forward this path: {path[:100]} (OpenAI API routes only)",
                type="invalid_request_error", code="unknown_url"), extra=cors)
            return
        if not allowed:
            await reply(405, openai_error_body(
                f"此路径不支持 {method} 方法", f"method {method} is not allowed on {path[:100]}",
                type="invalid_request_error", code="method_not_allowed"), extra=cors)
            return

        app_name = self._authorise(headers)
        if app_name is None and _bearer(headers).startswith("baicai-"):
            await reply(401, openai_error_body(
                "这里填的是你的白菜GPT 真实密钥：本地代理不接受它（应用里不应保存真实密钥）。请改填 `baicai sidecar` "
                "启动时显示的本地令牌（sk-baicai-…），或用 `baicai sidecar token add 应用名` 生成一个",
                "that is your real BaicaiGPT key: the sidecar does not take it (apps should not hold it). Paste the "
                "local token `baicai sidecar` printed at start (sk-baicai-…), or make one with "
                "`baicai sidecar token add APP`",
                type="invalid_request_error", code="invalid_api_key"), extra=cors)
            return
        if app_name is None:
            await reply(401, openai_error_body(
                "本地令牌无效：请在应用中填入 `baicai sidecar` 启动时显示的令牌（sk-baicai-…），"
                "或用 `baicai sidecar token add 应用名` 生成一个",
                "invalid local token: paste the token `baicai sidecar` printed at start (sk-baicai-…), "
                "or make one with `baicai sidecar token add APP`",
                type="invalid_request_error", code="invalid_api_key"), extra=cors)
            return
        scope["baicai.app"] = app_name

        if method in ("POST", "PUT", "PATCH"):
            problem = self._content_type_problem(path, headers.get("content-type", ""))
            if problem is not None:
                await reply(415, problem, extra=cors)
                return
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.config.max_body):
                await reply(413, self._too_large(), extra=cors)
                return
            try:
                body = await self._read_body(receive)
            except ConnectionAbortedError:
                return  # the app left while uploading: nothing to answer
            except _BodyTooLarge:
                await reply(413, self._too_large(), extra=cors)
                return
            if headers.get("content-type", "").lower().startswith("application/json"):
                try:
                    if len(body) > self.config.offload_bytes:
                        # Parsed once, off the event loop; the metered transport reuses it (PARSED_BODY).
                        scope[PARSED_BODY] = await anyio.to_thread.run_sync(json.loads, body)
                    else:
                        json.loads(body)
                except ValueError as exc:
                    await reply(400, openai_error_body(
                        f"请求体不是合法的 JSON（{exc.__class__.__name__}）",
                        f"the request body is not valid JSON ({exc})",
                        type="invalid_request_error", code="invalid_json"), extra=cors)
                    return
            receive = _replay(body, receive)

        await self.app(scope, receive, _with_headers(send, cors) if cors else send)

    # -- checks ----------------------------------------------------------------------------------
    def _host_ok(self, scope: Scope, host: str) -> bool:
        if not host or _count(scope, b"host") != 1:
            return False
        host = host.strip().lower()
        server = scope.get("server")
        port = server[1] if server else None
        for name in (*_LOOPBACK_NAMES, *(h.lower() for h in self.config.extra_hosts)):
            if host == f"{name}:{port}" or (host == name and port in (80, None)):
                return True
        return False

    def _authorise(self, headers: dict[str, str]) -> str | None:
        token = _bearer(headers)
        app = self.config.verify_token(token) if token else None
        if app is not None:
            return app
        return "open" if self.config.open_access else None

    def _content_type_problem(self, path: str, content_type: str) -> bytes | None:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == "application/json":
            return None
        if ctype == "multipart/form-data" and _MULTIPART_ROUTES.match(path):
            return None
        return openai_error_body(
            f"请求体类型 {ctype or '（空）'} 不被接受：请以 application/json 发送",
            f"content type {ctype or '(none)'} is not accepted: send application/json "
            "(multipart/form-data only for image edits and audio uploads)",
            type="invalid_request_error", code="unsupported_media_type")

    def _too_large(self) -> bytes:
        mb = self.config.max_body / (1024 * 1024)
        return openai_error_body(f"请求体超过 {mb:g} MB 上限", f"the request body exceeds the {mb:g} MB limit",
                                 type="invalid_request_error", code="request_too_large")

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _BodyTooLarge() if size > self.config.max_body else ConnectionAbortedError()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body once, then the real ``receive`` (so the endpoint still hears a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in extra}
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            message = {**message, "headers": kept + extra}
        await send(message)

    return wrapped


def _log_refusal(method: str, path: str, status: int, body: bytes) -> None:
    """One line on the sidecar's console per refused request: an app shows "CORS error" or "401", this says why.
    The body is our own bilingual answer (never a key); its English half is logged."""
    try:
        error = json.loads(body)["error"]
        code, message = error.get("code"), str(error.get("message", "")).rpartition(" / ")[2]
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message = None, ""
    log.warning("refused %s %s -> %d %s: %s", method, path[:100], status, code, message[:200])


async def _reply(send: Send, status: int, body: bytes, *, extra: list[tuple[bytes, bytes]] | None = None,
                 content_type: bytes | None = b"application/json; charset=utf-8") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="baicai-sidecar"'))
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
