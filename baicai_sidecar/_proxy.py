"""Forwarding: one shared upstream client, key injection, byte-exact pass-through, SSE as it arrives.

The metering (quota gate, ledger, stream token counting, 200-status error rewrite, retry annotations) is not here:
it lives in the SDK's ``AsyncMeteredTransport``, which the upstream transport built by :func:`build_upstream`
is — the same pipeline as ``Baicai``. What is here is what only a proxy has to care about:

* the app's ``Authorization`` is replaced by the profile's key (the relay never sees a local token);
* retries happen only before the first byte reaches the app, and only where the relay cannot have billed
  (connection refused, codes -1 / 45011) — never on a read error after the request went out;
* relay error envelopes become OpenAI's shape with a bilingual message and a hint (:func:`openai_error_from_relay`),
  so the app shows the reason instead of an empty reply;
* a client disconnect cancels the upstream request, and the upstream response is always closed — which is what
  settles the ledger — even when the app vanishes mid-stream (cleanup in ``finally`` of the whole ASGI call).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from baicai_sdk import RELAY_CODES
from baicai_sdk.integration import redact

from ._guard import openai_error_body

__all__ = ["ProxyConfig", "Proxy", "build_upstream", "openai_error_from_relay", "parse_relay_envelope"]

log = logging.getLogger("baicai.sidecar")

_REASON: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar("baicai_sidecar_reason",
                                                                                default=None)
"""(status, why) of the request being answered, set where an error is recorded and read by its console line:
every refused or failed request says why on the console, not just ``-> 429`` or ``-> -``."""


def _console_reason(code: Any, message: str, err: dict[str, Any] | None = None) -> str:
    """One line for the console: the code, and for a local refusal the window that is full."""
    text = " ".join(redact(message).split())
    if len(text) > 240:
        text = text[:239] + "…"
    if err is not None and err.get("type") == "baicai_local_quota":
        window = " ".join(str(x) for x in (err.get("family"), err.get("tier")) if x)
        return f"本地额度 / local quota [{window}]: {text}"
    return f"{code}: {text}" if code not in (None, "") else text

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

APP_HEADER = "x-baicai-app"  # read and stripped by the SDK's transport

# Request headers that belong to the hop between the app and the sidecar, not to the relay.
_DROP_REQUEST = frozenset({
    "host", "authorization", "api-key", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
    "upgrade", "accept-encoding", "cookie", "origin", "referer", "expect", "proxy-authorization",
    "proxy-connection", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
    APP_HEADER,
})
_DROP_RESPONSE = frozenset({
    "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding", "server", "date",
    "set-cookie", "alt-svc", "strict-transport-security",
})


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
    """The upstream HTTP client: "auto" (aiohttp when installed, else httpx2), "aiohttp" or "httpx2"."""
    quota: str = "raise"
    """The transport's quota mode: "raise" (an app cannot be told to wait: it gets the 429 with Retry-After), or
    "off" (meter and record, never refuse — the bench)."""


# -- the relay's error envelopes ---------------------------------------------------------------------------------
def parse_relay_envelope(body: object) -> tuple[int, str] | None:
    """(code, relay message) for any of the relay's error envelopes, None for success and OpenAI's own errors.

    The SDK's ``parse_relay_error`` decides, so the SDK and the sidecar agree on what an error is.
    """
    from baicai_sdk import parse_relay_error

    answer = parse_relay_error(body)
    return None if answer is None else (int(answer.code), str(answer.message or ""))


def openai_error_from_relay(status: int, body: bytes) -> tuple[int, bytes] | None:
    """A relay error envelope (any shape, any status incl. 200) as OpenAI's error shape with the matching status.

    None when ``body`` is not a relay error (success, or OpenAI's own error, which passes through unchanged).
    """
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    return _openai_error(status, parse_relay_envelope(parsed))


_PARSED = "baicai.relay_error"


def _relay_error(response: httpx2.Response) -> tuple[int, str] | None:
    """(code, message) of a read response's relay error envelope; parsed once per response (retry, then rewrite)."""
    if _PARSED not in response.extensions:
        try:
            parsed = json.loads(response.content) if response.content else None
        except ValueError:
            parsed = None
        response.extensions[_PARSED] = parse_relay_envelope(parsed)
    found: tuple[int, str] | None = response.extensions[_PARSED]
    return found


def _openai_error(status: int, found: tuple[int, str] | None) -> tuple[int, bytes] | None:
    if found is None:
        return None
    code, relay_message = found
    known = RELAY_CODES.get(code)
    said = f"（中转原文：{relay_message[:200]}）" if relay_message else ""
    said_en = f" (relay said: {relay_message[:200]})" if relay_message else ""
    if known is not None:
        new_status = known.http_status if status < 400 else status
        return new_status, openai_error_body(
            f"白菜GPT 错误 {code}：{known.message_zh}。{known.hint_zh}{said}",
            f"BaicaiGPT error {code}: {known.message_en}. {known.hint_en[:1].upper()}{known.hint_en[1:]}.{said_en}",
            type=f"baicai_{known.group}", code=str(code), relay_code=code, hint=known.hint)
    return (400 if status < 400 else status), openai_error_body(
        f"白菜GPT 返回未知错误码 {code}{said}", f"BaicaiGPT returned an unknown error code {code}{said_en}",
        type="baicai_relay_error", code=str(code), relay_code=code)


# -- the upstream client -------------------------------------------------------------------------------------------
def build_upstream(config: ProxyConfig) -> tuple[httpx2.AsyncBaseTransport, dict[str, float | None]]:
    """The ONE upstream transport (pooled keep-alive, through the SDK's metered pipeline) and the timeouts every
    forwarded request carries.

    The proxy calls the transport directly: ``httpx2.AsyncClient`` around it would only merge headers, follow no
    redirects and wrap the stream once more — per request, on the hot path. Proxies: the inner transport honours
    ``HTTPS_PROXY`` / ``NO_PROXY`` per request (users in China often need one to reach the relay). Timeouts: connect
    fails fast (the relay is down, or a proxy is needed); read is long (slow first tokens).
    """
    transport = config.transport if config.transport is not None else _metered(config)
    timeouts = httpx2.Timeout(connect=config.connect_timeout, read=config.read_timeout, write=60.0, pool=30.0)
    return transport, timeouts.as_dict()


def _metered(config: ProxyConfig) -> httpx2.AsyncBaseTransport:
    from baicai_sdk import AsyncMeteredTransport

    return AsyncMeteredTransport(upstream_transport(config.http_client), source="sidecar",
                                 quota=config.quota,  # type: ignore[arg-type]
                                 tier=config.tier, meter=config.meter, retry_policy=config.retry_policy)


def upstream_transport(kind: str) -> httpx2.AsyncBaseTransport | None:
    """The bytes-on-the-wire client under the metered pipeline: aiohttp where installed (it costs a fraction of
    httpx2's CPU per forwarded request, see ``_upstream``), else None — the SDK's own httpx2 transport. Both route
    by ``HTTPS_PROXY`` / ``NO_PROXY`` per request."""
    if kind == "httpx2":
        return None
    try:
        from ._upstream import AiohttpTransport
    except ImportError:
        if kind == "aiohttp":
            raise
        return None
    return AiohttpTransport()


def _default_policy() -> Any:
    from baicai_sdk import DEFAULT_RETRY_POLICY

    return DEFAULT_RETRY_POLICY


# -- the proxy -----------------------------------------------------------------------------------------------------
@dataclass
class ProxyStats:
    started: float = field(default_factory=time.time)
    requests: int = 0
    streams: int = 0
    retries: int = 0
    recent_errors: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))

    def error(self, *, status: int, path: str, app: str | None, code: str | int | None, message: str,
              reason: str | None = None) -> None:
        self.recent_errors.append({"at": time.time(), "status": status, "path": path, "app": app,
                                   "code": code, "message": redact(message)[:300]})
        _REASON.set((status, reason or _console_reason(code, message)))


class _Disconnected(Exception):
    pass


class Proxy:
    """The forwarding endpoint, a raw ASGI app (Starlette's StreamingResponse would leave cleanup to a generator
    that may never be resumed after a disconnect)."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.policy = config.retry_policy or _default_policy()
        self.base = config.upstream.rstrip("/")
        self.transport: httpx2.AsyncBaseTransport | None = None
        self.timeouts: dict[str, float | None] = {}
        self.stats = ProxyStats()

    async def start(self) -> None:
        if self.transport is None:
            self.transport, self.timeouts = build_upstream(self.config)

    async def aclose(self) -> None:
        if self.transport is not None:
            transport, self.transport = self.transport, None
            await transport.aclose()

    def _url(self, scope: Scope) -> str:
        path: str = scope["path"]
        tail = path[3:] if path == "/v1" or path.startswith("/v1/") else path
        query = scope.get("query_string", b"")
        return self.base + tail + ("?" + query.decode("latin-1") if query else "")

    def _headers(self, scope: Scope, app: str | None) -> list[tuple[str, str]]:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])
                   if k.decode("latin-1").lower() not in _DROP_REQUEST and not k.lower().startswith(b"sec-")]
        headers.append(("authorization", f"Bearer {self.config.api_key}"))
        headers.append(("accept-encoding", "identity"))
        if app:
            headers.append((APP_HEADER, app))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        app = scope.get("baicai.app")
        path = scope["path"]
        self.stats.requests += 1
        body = b""
        if scope["method"] in ("POST", "PUT", "PATCH"):
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
        if self.transport is None:
            await self.start()
        # A Request of our own rather than client.build_request: the headers are complete already, and merging
        # them with the client's defaults costs more than the rest of the request's preparation.
        request = httpx2.Request(scope["method"], self._url(scope), headers=self._headers(scope, app), content=body,
                                 extensions={"timeout": self.timeouts})
        response: httpx2.Response | None = None
        status = 0
        _REASON.set(None)
        try:
            response = await self._send_with_retries(request, scope, send, path, app)
            if response is None:
                return  # an error answer was already sent
            status = response.status_code
            if _is_event_stream(response) and status < 400:
                self.stats.streams += 1
                await self._relay_stream(response, receive, send, path, app)
            else:
                await self._relay_body(response, send, path, app)
        finally:
            # Always: closing the upstream response is what settles the ledger (as "cancelled"/"dropped" when
            # the stream did not finish) and returns the connection to the pool.
            if response is not None:
                await _shielded_close(response)
            reason = _REASON.get()
            if reason is not None:
                status = status if status >= 400 else reason[0]
            log.info("%s %s -> %s app=%s %.1f ms%s", scope["method"], path, status or "-", app,
                     (time.perf_counter() - started) * 1000, f" · {reason[1]}" if reason is not None else "")

    async def _send_with_retries(self, request: httpx2.Request, scope: Scope, send: Send, path: str,
                                 app: str | None) -> httpx2.Response | None:
        assert self.transport is not None
        attempt = 0
        while True:
            try:
                response = await self.transport.handle_async_request(request)
            except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
                # Nothing reached the relay: a retry cannot bill twice.
                if attempt < self.policy.max_retries and self.policy.should_retry(connect_error=True):
                    await asyncio.sleep(self.policy.delay(attempt, None))
                    attempt += 1
                    self.stats.retries += 1
                    continue
                await self._answer_error(send, 502, path, app, "upstream_unreachable",
                                         f"无法连接白菜GPT中转服务 {self.base}（{type(exc).__name__}）。"
                                         "请检查网络或代理设置（HTTPS_PROXY），稍后再试",
                                         f"cannot reach the relay at {self.base} ({type(exc).__name__}); "
                                         "check the network or proxy settings (HTTPS_PROXY) and retry")
                return None
            except httpx2.TimeoutException as exc:
                await self._answer_error(send, 504, path, app, "upstream_timeout",
                                         f"白菜GPT中转服务响应超时（{type(exc).__name__}），请稍后再试",
                                         f"the relay did not answer in time ({type(exc).__name__}); retry later")
                return None
            except httpx2.TransportError as exc:
                # The request may have reached the relay: no retry (it could bill twice).
                await self._answer_error(send, 502, path, app, "upstream_error",
                                         f"与白菜GPT中转服务的连接中断（{type(exc).__name__}），请重试",
                                         f"the connection to the relay failed ({type(exc).__name__}); retry")
                return None
            except Exception as exc:
                # A bug below us (e.g. the ledger) must still reach the app as a readable error, not a bare 500.
                log.exception("sidecar failure on %s", path)
                await self._answer_error(send, 500, path, app, "sidecar_internal_error",
                                         f"本地代理内部错误（{type(exc).__name__}），请查看 baicai sidecar 的输出",
                                         f"internal sidecar error ({type(exc).__name__}); see the sidecar's output",
                                         retry=False)
                return None

            if response.status_code < 400 and _is_event_stream(response):
                return response
            if response.headers.get("x-baicai-local-quota") == "1" or attempt >= self.policy.max_retries:
                return response
            # A complete answer: small, so read it to decide on a retry before the app sees anything.
            await response.aread()
            found = _relay_error(response)
            if found is not None and self.policy.should_retry(relay_code=found[0], status=response.status_code):
                retry_after = _retry_after(response)
                await response.aclose()
                await asyncio.sleep(self.policy.delay(attempt, retry_after))
                attempt += 1
                self.stats.retries += 1
                continue
            return response

    async def _relay_body(self, response: httpx2.Response, send: Send, path: str, app: str | None) -> None:
        body = await response.aread()
        status = response.status_code
        headers = _response_headers(response)
        if response.headers.get("x-baicai-local-quota") != "1":
            rewritten = _openai_error(status, _relay_error(response))
            if rewritten is not None:
                status, body = rewritten
                headers = [(k, v) for k, v in headers if k != b"content-type"]
                headers.append((b"content-type", b"application/json; charset=utf-8"))
        if status >= 400:
            # Relays, like OpenAI, may quote the key they rejected ("Incorrect API key provided: baicai-…"):
            # the app holds only a local token and must never see the real key.
            body = redact(body.decode("utf-8", "replace")).encode("utf-8")
            self._record(status, path, app, body)
            # The sidecar already retried whatever was safe to retry; an app retrying on top would multiply
            # attempts (and, after a timeout, could bill twice).
            headers = [(k, v) for k, v in headers if k not in (b"x-should-retry", b"retry-after-ms")]
            headers.append((b"x-should-retry", b"false"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _record(self, status: int, path: str, app: str | None, body: bytes) -> None:
        code: Any = None
        message = ""
        err: dict[str, Any] | None = None
        try:
            err = json.loads(body).get("error") or {}
            code, message = err.get("code"), str(err.get("message") or "")
        except (ValueError, AttributeError):
            err, message = None, body[:200].decode("utf-8", "replace")
        self.stats.error(status=status, path=path, app=app, code=code, message=message,
                         reason=_console_reason(code, message, err if isinstance(err, dict) else None))

    async def _answer_error(self, send: Send, status: int, path: str, app: str | None, code: str,
                            zh: str, en: str, *, retry: bool = False) -> None:
        """An answer made here. ``x-should-retry: false`` by default: the sidecar already retried what was safe,
        and after a timeout the relay may have billed the request."""
        body = openai_error_body(zh, en, type="baicai_sidecar_upstream", code=code)
        self.stats.error(status=status, path=path, app=app, code=code, message=f"{zh} / {en}")
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"x-should-retry", b"true" if retry else b"false")]})
        await send({"type": "http.response.body", "body": body})

    async def _relay_stream(self, response: httpx2.Response, receive: Receive, send: Send, path: str,
                            app: str | None) -> None:
        headers = _response_headers(response)
        headers = [(k, v) for k, v in headers if k not in (b"cache-control", b"x-accel-buffering")]
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})

        pump = asyncio.ensure_future(self._pump(response, send, path, app))
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                if not task.done():
                    task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
        if pump in done and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]
        if watch in done and pump not in done:
            log.info("client left mid-stream on %s (app=%s): upstream request cancelled", path, app)

    async def _pump(self, response: httpx2.Response, send: Send, path: str, app: str | None) -> None:
        done_seen = False
        tail = b""
        try:
            async for chunk in response.aiter_raw():
                if not chunk:
                    continue
                window = tail + chunk
                if done_seen:
                    continue  # nothing may follow the one [DONE]
                if b"data: [DONE]" in window or b"data:[DONE]" in window:
                    done_seen = True  # not bare "[DONE]": a reply may contain that text
                tail = window[-16:]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx2.TransportError as exc:
            await self._end_incomplete(send, path, app, "upstream_dropped",
                                       f"白菜GPT中转连接在输出中途中断（{type(exc).__name__}），回答不完整，请重试",
                                       f"the relay connection dropped mid-answer ({type(exc).__name__}); "
                                       "the reply is incomplete, retry")
            return
        if not done_seen:
            # A clean end without [DONE] is a cut answer too: a [DONE] of ours would pass it off as complete.
            await self._end_incomplete(send, path, app, "upstream_incomplete",
                                       "白菜GPT中转的流式回答未正常结束（缺少 [DONE]），回答可能不完整，请重试",
                                       "the relay's stream ended without [DONE]; the reply may be incomplete, retry")
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_incomplete(self, send: Send, path: str, app: str | None, code: str, zh: str, en: str) -> None:
        """End a stream that will not complete with an error event: OpenAI clients raise on it (no [DONE])."""
        self.stats.error(status=502, path=path, app=app, code=code, message=f"{zh} / {en}")
        event = openai_error_body(zh, en, type="baicai_sidecar_upstream", code=code)
        await send({"type": "http.response.body", "body": b"data: " + event + b"\n\n", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _shielded_close(response: httpx2.Response) -> None:
    """Close even while the surrounding task is being cancelled (server shutdown, client gone)."""
    close = asyncio.ensure_future(response.aclose())
    try:
        await asyncio.shield(close)
    except asyncio.CancelledError:
        await close
        raise
    except Exception:  # a broken connection cannot be closed cleanly; the transport still settled
        log.debug("upstream close failed", exc_info=True)


def _is_event_stream(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


def _response_headers(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
    return [(k.lower(), v) for k, v in response.headers.raw if k.lower().decode("latin-1") not in _DROP_RESPONSE]


def _retry_after(response: httpx2.Response) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(name)
        if value:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None
