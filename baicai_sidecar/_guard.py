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

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from baicai_sdk.integration import Text, error_body, is_loopback_host

from ._asgi import ASGIApp, Message, Receive, Scope, Send
from ._config import DEFAULT_ALLOWED_ORIGINS, DEFAULT_MAX_BODY, STATUS_PATH
from ._tokens import TokenFileDamaged

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
PARSED_BODY = "baicai.parsed_body"
"""Scope key: the JSON body as the guard parsed it (a large one in a worker thread), handed on through the proxy to
the metered transport, so a body is parsed once."""
BODY = "baicai.body"
"""Scope key: the request body the guard read (and checked), so the endpoint need not read it again."""


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


_REASON_CAP = 400
"""Characters of a refusal's reason on the console: every hint of ours fits whole; a reason quoting what a client
sent (a Host or Origin header, a model name) cannot fill the console."""


def _clip(text: str, cap: int = _REASON_CAP) -> str:
    """``text`` up to ``cap`` characters, cut after a word or clause, never inside one, and marked with "…"."""
    if len(text) <= cap:
        return text
    cut = text[:cap]
    boundary = max(cut.rfind(mark) for mark in (" ", "，", "；", "。", "、"))
    if boundary > cap // 2:
        cut = cut[:boundary + 1]
    return cut.rstrip(" ,;:，；：") + "…"


def refusal_line(method: str, path: str, status: int, code: str | int | None, why: Text) -> Text:
    """The console line for a request the sidecar answers itself with an error — refused by the guard, or a
    request the Responses route cannot translate — so an app's bare "401" or "400" has its reason beside it."""
    head = f"{method} {path[:100]} -> {status} {code}"
    return Text(f"已拒绝 {head}：{_clip(why.zh)}", f"refused {head}: {_clip(why.en)}")


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


def _cors(origin: str) -> list[tuple[bytes, bytes]]:
    """The CORS headers for an allowed origin: that origin by name, never ``*``."""
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"), _EXPOSED]


def _count(scope: Scope, name: bytes) -> int:
    return sum(1 for k, _ in scope.get("headers", []) if k.lower() == name)


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON = b"application/json; charset=utf-8"
_EXPOSED = (b"access-control-expose-headers", b"x-request-id, retry-after, x-baicai-local-quota")


@dataclass(frozen=True)
class Refusal:
    """An answer the guard gives in the endpoint's place (a refusal, or the answer to a CORS preflight)."""

    status: int
    body: bytes
    extra: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes | None = _JSON
    code: str | None = None
    reason: Text | None = None
    """The message, for the console's line: read by a person, in the language set (the app gets the body)."""


def _refusal(status: int, message: Text, *, type: str, code: str,
             extra: list[tuple[bytes, bytes]] | None = None) -> Refusal:
    return Refusal(status, openai_error_body(message.zh, message.en, type=type, code=code), extra=extra or [],
                   code=code, reason=message)


_UNSEEN = object()
_ROUTE_CACHE = 256

_LEFT = Refusal(0, b"")
"""Not an answer: the app left while uploading, so there is nobody to answer."""


class SidecarGuard:
    """Pure ASGI middleware; sets ``scope["baicai.app"]`` (the app a request is attributed to), and for a request
    with a body ``scope[BODY]`` (the bytes) and, for JSON, ``scope[PARSED_BODY]`` (the object) — read and parsed
    once here, used as they are by the proxy and the metered transport."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config
        self._hosts: dict[int | None, frozenset[str]] = {}
        self._routes: dict[tuple[str, str], bool | None | object] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        headers = _headers(scope)
        method = scope["method"].upper()
        path = scope["path"]
        origin = headers.get("origin")
        cors = _cors(origin) if origin is not None and self.config.origin_allowed(origin) else []
        refusal = (self._check_host(scope, headers) or self._check_origin(scope, headers, method, cors)
                   or self._check_route(path, method, cors) or self._check_token(scope, headers, cors))
        if refusal is None and method in _BODY_METHODS:
            refusal = await self._check_body(scope, receive, headers, path, cors)
            if refusal is None:
                receive = _replay(scope[BODY], receive)
        if refusal is _LEFT:
            return
        if refusal is not None:
            if refusal.status >= 400:
                log.warning("%s", refusal_line(method, path, refusal.status, refusal.code,
                                               refusal.reason or Text("", "")))
            await _reply(send, refusal.status, refusal.body, extra=refusal.extra, content_type=refusal.content_type)
            return
        await self.app(scope, receive, _with_headers(send, cors) if cors else send)

    # -- the steps, in order: each returns the answer that ends the request, or None to go on ----------------
    def _check_host(self, scope: Scope, headers: dict[str, str]) -> Refusal | None:
        host = headers.get("host", "")
        if self._host_ok(scope, host):
            return None
        return _refusal(421 if host else 400, Text(
            "Host 请求头不被接受：请用 http://127.0.0.1:端口 访问本地代理",
            "the Host header is not accepted: reach the sidecar as http://127.0.0.1:PORT "
            "(this blocks DNS-rebinding attacks from web pages)"),
            type="baicai_sidecar_forbidden", code="host_not_allowed")

    def _check_origin(self, scope: Scope, headers: dict[str, str], method: str,
                      cors: list[tuple[bytes, bytes]]) -> Refusal | None:
        origin = headers.get("origin")
        if origin is None:
            return None
        if _count(scope, b"origin") != 1:
            # Browsers send one Origin; two mean a crafted request, and judging either one alone could be wrong.
            return _refusal(400, Text(
                "请求带有多个 Origin 请求头，已拒绝", "the request carries more than one Origin header: refused"),
                type="baicai_sidecar_forbidden", code="origin_not_allowed")
        if not cors:
            return _refusal(403, Text(
                f"来源 {origin[:80]} 未被允许：在 baicai sidecar 上用 --allow-origin 添加该网页应用的地址",
                f"origin {origin[:80]} is not allowed: add the web app's address with "
                "`baicai sidecar --allow-origin URL`"),
                type="baicai_sidecar_forbidden", code="origin_not_allowed")
        if method == "OPTIONS" and "access-control-request-method" in headers:
            return Refusal(204, b"", extra=cors + [
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers",
                 headers.get("access-control-request-headers", "authorization, content-type").encode("latin-1")),
                (b"access-control-max-age", b"600"),
            ], content_type=None)
        return None

    def _check_route(self, path: str, method: str, cors: list[tuple[bytes, bytes]]) -> Refusal | None:
        allowed = self._routes.get((path, method), _UNSEEN)
        if allowed is _UNSEEN:
            # The verdict per path and method, kept: the patterns are tried once, not on every request.
            allowed = route_allowed(path, method)
            if len(self._routes) >= _ROUTE_CACHE:
                self._routes.clear()  # many distinct paths (model names): start over rather than grow
            self._routes[(path, method)] = allowed
        if allowed is None:
            return _refusal(404, Text(
                f"本地代理不转发此路径：{path[:100]}",
                f"the sidecar does not forward this path: {path[:100]} (OpenAI API routes only)"),
                type="invalid_request_error", code="unknown_url", extra=cors)
        if not allowed:
            return _refusal(405, Text(
                f"此路径不支持 {method} 方法", f"method {method} is not allowed on {path[:100]}"),
                type="invalid_request_error", code="method_not_allowed", extra=cors)
        return None

    def _check_token(self, scope: Scope, headers: dict[str, str], cors: list[tuple[bytes, bytes]]) -> Refusal | None:
        try:
            app_name = self._authorise(headers)
        except TokenFileDamaged as exc:  # was "Internal Server Error" to the app and a traceback on the console
            return _refusal(500, exc.message, type="server_error", code="sidecar_token_file_damaged", extra=cors)
        if app_name is not None:
            scope["baicai.app"] = app_name
            return None
        if _bearer(headers).startswith("baicai-"):
            return _refusal(401, Text(
                "这里填的是你的白菜GPT 真实密钥：本地代理不接受它（应用里不应保存真实密钥）。请改填 `baicai sidecar` "
                "启动时显示的本地令牌（sk-baicai-…），或用 `baicai sidecar token add 应用名` 生成一个",
                "that is your real BaicaiGPT key: the sidecar does not take it (apps should not hold it). Paste the "
                "local token `baicai sidecar` printed at start (sk-baicai-…), or make one with "
                "`baicai sidecar token add APP`"),
                type="invalid_request_error", code="invalid_api_key", extra=cors)
        return _refusal(401, Text(
            "本地令牌无效：请在应用中填入 `baicai sidecar` 启动时显示的令牌（sk-baicai-…），"
            "或用 `baicai sidecar token add 应用名` 生成一个",
            "invalid local token: paste the token `baicai sidecar` printed at start (sk-baicai-…), "
            "or make one with `baicai sidecar token add APP`"),
            type="invalid_request_error", code="invalid_api_key", extra=cors)

    async def _check_body(self, scope: Scope, receive: Receive, headers: dict[str, str], path: str,
                          cors: list[tuple[bytes, bytes]]) -> Refusal | None:
        """Type, size and (JSON) syntax; the body and its parse are left in the scope for the endpoint."""
        content_type = headers.get("content-type", "")
        problem = self._content_type_problem(path, content_type)
        if problem is not None:
            return _refusal(415, problem, type="invalid_request_error", code="unsupported_media_type", extra=cors)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.config.max_body):
            return _refusal(413, self._too_large(), type="invalid_request_error", code="request_too_large",
                            extra=cors)
        try:
            body = await self._read_body(receive)
        except ConnectionAbortedError:
            return _LEFT
        except _BodyTooLarge:
            return _refusal(413, self._too_large(), type="invalid_request_error", code="request_too_large",
                            extra=cors)
        scope[BODY] = body
        if content_type.lower().startswith("application/json"):
            try:
                if len(body) > self.config.offload_bytes:
                    # Off the event loop: one app's huge request must not stall the others.
                    import anyio

                    scope[PARSED_BODY] = await anyio.to_thread.run_sync(json.loads, body)
                else:
                    scope[PARSED_BODY] = json.loads(body)
            except ValueError as exc:
                return _refusal(400, Text(
                    f"请求体不是合法的 JSON（{exc.__class__.__name__}）",
                    f"the request body is not valid JSON ({exc})"),
                    type="invalid_request_error", code="invalid_json", extra=cors)
        return None

    # -- checks ----------------------------------------------------------------------------------
    def _host_ok(self, scope: Scope, host: str) -> bool:
        if not host or _count(scope, b"host") != 1:
            return False
        server = scope.get("server")
        return host.strip().lower() in self._allowed_hosts(server[1] if server else None)

    def _allowed_hosts(self, port: int | None) -> frozenset[str]:
        """``name:port`` for loopback and the extra names (bare names too on port 80): built once per port."""
        hosts = self._hosts.get(port)
        if hosts is None:
            names = (*_LOOPBACK_NAMES, *(h.lower() for h in self.config.extra_hosts))
            hosts = frozenset(f"{name}:{port}" for name in names)
            if port in (80, None):
                hosts |= frozenset(names)
            self._hosts[port] = hosts
        return hosts

    def _authorise(self, headers: dict[str, str]) -> str | None:
        token = _bearer(headers)
        app = self.config.verify_token(token) if token else None
        if app is not None:
            return app
        return "open" if self.config.open_access else None

    def _content_type_problem(self, path: str, content_type: str) -> Text | None:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == "application/json":
            return None
        if ctype == "multipart/form-data" and _MULTIPART_ROUTES.match(path):
            return None
        return Text(
            f"请求体类型 {ctype or '（空）'} 不被接受：请以 application/json 发送",
            f"content type {ctype or '(none)'} is not accepted: send application/json "
            "(multipart/form-data only for image edits and audio uploads)")

    def _too_large(self) -> Text:
        limit = _size(self.config.max_body)
        return Text(f"请求体超过 {limit} 上限", f"the request body exceeds the {limit} limit")

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


def _size(size: int) -> str:
    """A byte count as people write it: ``100 KB`` for a limit under a megabyte (not ``0.0976562 MB``)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.4g} KB"
    return f"{size / (1024 * 1024):.4g} MB"
