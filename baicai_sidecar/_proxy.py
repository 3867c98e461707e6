"""Forwarding: one shared upstream client, key injection, byte-exact pass-through, SSE as it arrives.

The metering (quota gate, ledger, stream token counting, 200-status error rewrite, retry annotations) is not here:
it lives in the SDK's ``AsyncMeteredTransport``, which the upstream transport built by :func:`build_upstream`
is — the same pipeline as ``Baicai``. What is here is what only a proxy has to care about:

* the app's ``Authorization`` is replaced by the profile's key (the relay never sees a local token);
* retries happen only before the first byte reaches the app, and only where the relay cannot have billed
  (connection refused, codes -1 / 45011) — never on a read error after the request went out;
* the relay's own error envelopes become OpenAI's shape with the SDK's bilingual message and a hint
  (``relay_error_body``), so the app shows the reason instead of an empty reply; errors of any other
  OpenAI-compatible server pass through as that server sent them;
* a client disconnect cancels the upstream request, and the upstream response is always closed — which is what
  settles the ledger — even when the app vanishes mid-stream (cleanup in ``finally`` of the whole ASGI call).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2

from baicai_sdk import RelayAnswer, mask_key, parse_relay_error
from baicai_sdk.integration import (
    APP_HEADER,
    LOCAL_QUOTA_HEADER,
    RELAY_ANSWER,
    SETTLE_AFTER,
    SHOULD_RETRY_HEADER,
    STREAM_TALLY,
    SSEDecoder,
    Text,
    documented_status,
    is_event_stream,
    labelled,
    parse_retry_after,
    redact,
    relay_error_body,
    tr,
)

from ._asgi import Receive, Scope, Send
from ._config import ProxyConfig
from ._guard import BODY, PARSED_BODY, openai_error_body

APP_PATH = "baicai.app_path"
"""Scope key: the path the app called, when an endpoint hands the proxy a translated request (``/v1/responses`` sent
on as ``/v1/chat/completions``), so the console line and the recent errors name what the app asked for."""

__all__ = ["ProxyConfig", "Proxy", "build_upstream"]

log = logging.getLogger("baicai.sidecar")

_REASON: contextvars.ContextVar[list[tuple[int, str] | None] | None] = contextvars.ContextVar(
    "baicai_sidecar_reason", default=None)
"""A box for (status, why) of the request being answered, filled where an error is recorded and read by its console
line: every refused or failed request says why on the console, not just ``-> 429`` or ``-> -``. A box, not the value:
the upstream request and the stream pump run in tasks of their own, and a task's ContextVar.set is not seen by the
request's task (each task runs in a copy of the context), while the one box is shared."""


def _console_reason(code: Any, message: str, err: dict[str, Any] | None = None) -> str:
    """One line for the console: the code, and for a local refusal the window that is full."""
    text = " ".join(redact(message).split())
    if len(text) > 240:
        text = text[:239] + "…"
    if err is not None and err.get("type") == "baicai_local_quota":
        window = " ".join(str(x) for x in (err.get("family"), err.get("tier")) if x)
        return labelled("本地额度", "local quota", f"[{window}] {text}")
    return f"{code}: {text}" if code not in (None, "") else text



# What of an app's request reaches the relay: an allow-list of what OpenAI's API reads, so that nothing else an app
# (or a program posing as one) puts in a header travels on — not its local token in X-Api-Key, not True-Client-IP /
# CF-Connecting-IP / Via / X-HTTP-Method-Override, not cookies. The profile's key is added as Authorization.
_FORWARD_REQUEST = frozenset({
    "content-type", "accept", "user-agent", "idempotency-key", "x-client-request-id", "openai-organization",
    "openai-project", "openai-beta",
})
_FORWARD_REQUEST_PREFIXES = ("openai-", "x-stainless-")


_FORWARD_RAW = frozenset(name.encode("ascii") for name in _FORWARD_REQUEST)
_FORWARD_RAW_PREFIXES = tuple(prefix.encode("ascii") for prefix in _FORWARD_REQUEST_PREFIXES)
_IDENTITY = (b"accept-encoding", b"identity")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def forwarded(name: str) -> bool:
    """Whether a request header (lower-case) of an app's request is sent on to the relay."""
    return name in _FORWARD_REQUEST or name.startswith(_FORWARD_REQUEST_PREFIXES)


_DROP_RESPONSE = frozenset({
    b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"content-encoding", b"server", b"date",
    b"set-cookie", b"alt-svc", b"strict-transport-security",
})


# -- the relay's error envelopes ---------------------------------------------------------------------------------
def _relay_error(response: httpx2.Response) -> RelayAnswer | None:
    """The relay error in a read response (None for a success, OpenAI's own or another server's error): as the
    metered transport classified it (``RELAY_ANSWER``), else parsed here — once per response (retry, then
    rewrite)."""
    if RELAY_ANSWER not in response.extensions:
        response.extensions[RELAY_ANSWER] = parse_relay_error(response.content) if response.content else None
    found: RelayAnswer | None = response.extensions[RELAY_ANSWER]
    return found


def _openai_error(status: int, answer: RelayAnswer | None) -> tuple[int, bytes] | None:
    """A relay error as OpenAI's error shape with its documented status, in the same words the SDK raises with."""
    if answer is None:
        return None
    body = relay_error_body(answer)
    return documented_status(answer, status), json.dumps(body, ensure_ascii=False).encode("utf-8")


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
    """The bytes-on-the-wire client under the metered pipeline. "auto" (the default) and "direct": direct
    connections on asyncio + httptools, requests through an environment proxy by aiohttp (``_direct``);
    "aiohttp": aiohttp for all; "httpx2", or auto without the ``[sidecar]`` extra: None — the SDK's own httpx2
    transport. All route by ``HTTPS_PROXY`` / ``NO_PROXY`` per request. Figures: ``bench/bench_sidecar.py``."""
    if kind == "httpx2":
        return None
    try:
        if kind == "aiohttp":
            from ._upstream import AiohttpTransport

            return AiohttpTransport()
        from ._direct import DirectTransport
    except ImportError:
        if kind != "auto":
            raise
        return None
    return DirectTransport()


def _default_policy() -> Any:
    from baicai_sdk import DEFAULT_RETRY_POLICY

    return DEFAULT_RETRY_POLICY


# -- the proxy -----------------------------------------------------------------------------------------------------
_URL_CACHE = 256
T = TypeVar("T")


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
        box = _REASON.get()
        if box is not None:
            box[0] = (status, reason or _console_reason(code, message))


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
        self._key = config.api_key.encode("utf-8")
        self._masked = mask_key(config.api_key).encode("utf-8")
        self._auth = (b"authorization", b"Bearer " + self._key)
        self._urls: dict[tuple[str, bytes], httpx2.URL] = {}

    async def start(self) -> None:
        if self.transport is None:
            self.transport, self.timeouts = build_upstream(self.config)

    async def aclose(self) -> None:
        if self.transport is not None:
            transport, self.transport = self.transport, None
            await transport.aclose()

    def _url(self, scope: Scope) -> httpx2.URL:
        """The upstream URL, parsed once per path and query (parsing one took ~6 % of a request's CPU here)."""
        key = (scope["path"], scope.get("query_string", b""))
        url = self._urls.get(key)
        if url is None:
            path, query = key
            tail = path[3:] if path == "/v1" or path.startswith("/v1/") else path
            url = httpx2.URL(self.base + tail + ("?" + query.decode("latin-1") if query else ""))
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()  # many distinct queries (model names): start over rather than grow
            self._urls[key] = url
        return url

    def _response_headers(self, response: httpx2.Response) -> list[tuple[bytes, bytes]]:
        """The relay's response headers an app may see: hop-by-hop ones dropped, the real key never included."""
        return [(k.lower(), v.replace(self._key, self._masked) if self._key in v else v)
                for k, v in response.headers.raw if k.lower() not in _DROP_RESPONSE]

    def _request(self, scope: Scope, app: str | None, body: bytes) -> httpx2.Request:
        """The upstream request: the app's forwarded headers as the bytes it sent (ASGI names are lower-case),
        the profile's key, and the ``Host`` and ``Content-Length`` that ``httpx2.Request(content=...)`` would add —
        built here and handed over as a stream already read, because that constructor (header normalisation,
        encoding the content, ``setdefault`` lookups) cost more than the rest of the request's preparation."""
        url = self._url(scope)
        method = scope["method"]
        headers = [(b"Host", url.netloc)]
        headers += [(k, v) for k, v in scope.get("headers", [])
                    if (name := k.lower()) in _FORWARD_RAW or name.startswith(_FORWARD_RAW_PREFIXES)]
        headers += (self._auth, _IDENTITY)
        if body or method in _BODY_METHODS:
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        # The app's name rides as an extension: the metered transport reads it there (as from the header it strips).
        request = httpx2.Request(method, url, headers=headers, stream=httpx2.ByteStream(body),
                                 extensions={"timeout": self.timeouts, PARSED_BODY: scope.get(PARSED_BODY),
                                             APP_HEADER: app or None, SETTLE_AFTER: True})
        request.read()
        return request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        app = scope.get("baicai.app")
        path = scope.get(APP_PATH) or scope["path"]  # said on the console and in recent errors; the URL is _url's
        self.stats.requests += 1
        body = b""
        if scope["method"] in ("POST", "PUT", "PATCH"):
            read = scope.get(BODY)  # the guard read it already
            if read is None:
                read = await read_body(receive)
                if read is None:
                    return
            body = read
        if self.transport is None:
            await self.start()
        # A Request of our own rather than client.build_request: the headers are complete already, and merging
        # them with the client's defaults costs more than the rest of the request's preparation.
        request = self._request(scope, app, body)
        response: httpx2.Response | None = None
        status = 0
        box: list[tuple[int, str] | None] = [None]
        _REASON.set(box)
        answered: list[httpx2.Response] = []
        try:
            # One watcher of the app for the upstream answer and, for a stream, its whole relay: if the app leaves
            # first (closed the connection, gave up, timed out), the upstream request is cancelled — its connection
            # closed, so the relay stops working on it — instead of running on to be billed for an answer nobody
            # reads (and again for each of the app's retries).
            left, streamed = await _unless_app_leaves(self._exchange(request, scope, send, path, app, answered),
                                                      receive)
            response = answered[0] if answered else None
            if left:
                if response is None:
                    log.info("%s", Text(f"{path}：应用（{app}）在回答前离开，已取消上游请求",
                                        f"{path}: the app ({app}) left before the answer: upstream request cancelled"))
                else:
                    log.info("%s", Text(f"应用在流式回答中途离开 {path}（app={app}），已取消上游请求",
                                        f"client left mid-stream on {path} (app={app}): upstream request cancelled"))
            if response is None:
                return  # an error answer was already sent, or the app left
            status = response.status_code
            if not streamed and not left:
                await self._relay_body(response, send, path, app)
                _settle_after(response)  # the app has its answer: now the ledger row
        except asyncio.CancelledError:  # the sidecar is stopping (or the server gave up on the connection)
            status = answered[0].status_code if answered else status
            box[0] = box[0] or (status, tr("已取消", "cancelled"))
            raise
        finally:
            response = answered[0] if answered else None  # also when sending to the app failed mid-stream
            if response is not None:
                _settle_after(response)  # the app left, or sending failed: the answer came all the same
            # Always: closing the upstream response is what settles the ledger (as "cancelled"/"dropped" when
            # the stream did not finish) and returns the connection to the pool. A complete answer the metered
            # transport read was closed (and settled) there already.
            if response is not None and not response.is_closed:
                await _shielded_close(response)
            reason = box[0]
            if reason is not None:
                status = status if status >= 400 else reason[0]
            log.info("%s %s -> %s app=%s %.1f ms%s", scope["method"], path, status or "-", app,
                     (time.perf_counter() - started) * 1000, f" · {reason[1]}" if reason is not None else "")

    async def _exchange(self, request: httpx2.Request, scope: Scope, send: Send, path: str, app: str | None,
                        answered: list[httpx2.Response]) -> bool:
        """The upstream answer (put in ``answered`` as soon as it is there, for the caller to close whatever
        happens next) and, when it is an event stream, its relay to the app; True for a stream. A complete answer
        is relayed by the caller, no longer watching the app."""
        response = await self._send_with_retries(request, scope, send, path, app)
        if response is None:
            return False
        answered.append(response)
        if response.status_code >= 400 or not is_event_stream(response.headers):
            return False
        self.stats.streams += 1
        await self._relay_stream(response, send, path, app)
        return True

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
                log.exception("%s", Text(f"本地代理处理 {path} 时出错", f"sidecar failure on {path}"))
                await self._answer_error(send, 500, path, app, "sidecar_internal_error",
                                         f"本地代理内部错误（{type(exc).__name__}），请查看 baicai sidecar 的输出",
                                         f"internal sidecar error ({type(exc).__name__}); see the sidecar's output",
                                         retry=False)
                return None

            if response.status_code < 400 and is_event_stream(response.headers):
                return response
            if response.headers.get(LOCAL_QUOTA_HEADER) == "1" or attempt >= self.policy.max_retries:
                return response
            try:
                # A complete answer: small, so read it to decide on a retry before the app sees anything.
                await response.aread()
                if not self._should_retry(response):
                    return response
            except BaseException:  # cancelled (the app left): the answer nobody will read is closed here
                _settle_after(response)
                await _shielded_close(response)
                raise
            retry_after = parse_retry_after(response.headers)
            await response.aclose()
            await asyncio.sleep(self.policy.delay(attempt, retry_after))
            attempt += 1
            self.stats.retries += 1

    def _should_retry(self, response: httpx2.Response) -> bool:
        """The retry policy's verdict, as the metered transport wrote it (``x-should-retry``; it also covers generic
        servers' 429/5xx, as openai retries them), else asked here. Resending this same Request keeps one ledger
        row for the app's request (the transport replaces the retried attempt's row)."""
        said = response.headers.get(SHOULD_RETRY_HEADER)
        if said in ("true", "false"):
            return said == "true"
        if response.status_code < 400:
            found = _relay_error(response)
            return found is not None and self.policy.should_retry(relay_code=found.code, status=response.status_code)
        found = _relay_error(response)
        return bool(self.policy.should_retry(relay_code=found.code if found else None, status=response.status_code))

    async def _relay_body(self, response: httpx2.Response, send: Send, path: str, app: str | None) -> None:
        body = await response.aread()
        status = response.status_code
        headers = self._response_headers(response)
        if response.headers.get(LOCAL_QUOTA_HEADER) != "1":
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
        if self._key in body:
            body = body.replace(self._key, self._masked)  # the relay echoed the key in a success body, somehow
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
        self.stats.error(status=status, path=path, app=app, code=code, message=str(Text(zh, en)))
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"x-should-retry", b"true" if retry else b"false")]})
        await send({"type": "http.response.body", "body": body})

    async def _relay_stream(self, response: httpx2.Response, send: Send, path: str, app: str | None) -> None:
        headers = self._response_headers(response)
        headers = [(k, v) for k, v in headers if k not in (b"cache-control", b"x-accel-buffering")]
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await self._pump(response, send, path, app)

    async def _pump(self, response: httpx2.Response, send: Send, path: str, app: str | None) -> None:
        done_seen = False
        # The metered transport reads the stream's events already (its tally knows [DONE]): one pass, not two.
        tally: Any = response.extensions.get(STREAM_TALLY)
        events = SSEDecoder() if tally is None else None
        scrub = KeyScrubber(self._key, self._masked)
        # The response's own stream, not ``response.aiter_raw()``: that is one more async generator per chunk (byte
        # counting, a chunker) for nothing a relay needs; what it did at the end — close the stream and the
        # response, also when the pump is cancelled or the connection breaks — is done here.
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        chunks = stream.__aiter__()
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if done_seen:
                    continue  # nothing may follow the one [DONE]
                done_seen = tally.done if events is None else any(e.is_done for e in events.feed(chunk))
                chunk = scrub.feed(chunk)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx2.TransportError as exc:
            await _close_stream(chunks, response)
            await self._end_incomplete(send, path, app, "upstream_dropped",
                                       f"白菜GPT中转连接在输出中途中断（{type(exc).__name__}），回答不完整，请重试",
                                       f"the relay connection dropped mid-answer ({type(exc).__name__}); "
                                       "the reply is incomplete, retry")
            return
        except BaseException:
            await _close_stream(chunks, response)
            raise
        if events is None:
            done_seen = done_seen or tally.done
        else:
            done_seen = done_seen or any(event.is_done for event in events.flush())
        rest = scrub.flush()
        if rest:
            await send({"type": "http.response.body", "body": rest, "more_body": True})
        if not done_seen:
            # A clean end without [DONE] is a cut answer too: a [DONE] of ours would pass it off as complete.
            await self._end_incomplete(send, path, app, "upstream_incomplete",
                                       "白菜GPT中转的流式回答未正常结束（缺少 [DONE]），回答可能不完整，请重试",
                                       "the relay's stream ended without [DONE]; the reply may be incomplete, retry")
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # The app has the whole answer: now close, which settles the ledger row (SETTLE_AFTER: the metered stream
        # left it to the close) and gives the connection back to the pool. If a send above raised, the request's
        # finally closes it.
        await _close_stream(chunks, response)

    async def _end_incomplete(self, send: Send, path: str, app: str | None, code: str, zh: str, en: str) -> None:
        """End a stream that will not complete with an error event: OpenAI clients raise on it (no [DONE])."""
        self.stats.error(status=502, path=path, app=app, code=code, message=str(Text(zh, en)))
        event = openai_error_body(zh, en, type="baicai_sidecar_upstream", code=code)
        await send({"type": "http.response.body", "body": b"data: " + event + b"\n\n", "more_body": False})


async def _unless_app_leaves(work: Coroutine[Any, Any, T], receive: Receive) -> tuple[bool, T | None]:
    """Run ``work`` in this task while one watcher task waits for the app to leave; if it leaves first, ``work``
    is cancelled: ``(True, None)``, else ``(False, its result)``. A task and an ``asyncio.wait`` less per request
    (and per stream) than racing two tasks. The watcher marks why it cancels, so a cancellation from outside — the
    server shutting down — still propagates."""
    task = asyncio.current_task()
    assert task is not None
    left = False
    watching = True

    def app_left(watch: asyncio.Future[None]) -> None:
        nonlocal left
        # ``watching``: a callback already scheduled when the work ended must not cancel what follows it
        if watching and not watch.cancelled() and watch.exception() is None:
            left = True
            task.cancel()

    watch = asyncio.ensure_future(_wait_disconnect(receive))
    watch.add_done_callback(app_left)
    try:
        return False, await work
    except asyncio.CancelledError:
        if not left:
            raise
        task.uncancel()
        return True, None
    finally:
        watching = False
        watch.remove_done_callback(app_left)
        if not watch.done():
            watch.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the app left before sending it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _close_stream(chunks: Any, response: httpx2.Response) -> None:
    """What httpx2's ``aiter_raw`` did at its end: close the stream's iterator, then the response."""
    if isinstance(chunks, AsyncGenerator):
        await chunks.aclose()
    await response.aclose()


def _settle_after(response: httpx2.Response) -> None:
    """Settle the ledger row of a successful complete answer, when the metered transport left it to us
    (``SETTLE_AFTER``); at most once."""
    settle = response.extensions.pop(SETTLE_AFTER, None)
    if settle is not None:
        try:
            settle()
        except Exception:  # the app has its answer; a ledger failure is the ledger's to report
            log.exception("%s", Text("账本记录结算失败", "settling the ledger row failed"))


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


class KeyScrubber:
    """Replaces the real key with its masked form in a byte stream on its way to an app (an SSE error event that
    quotes it, say), also when the key is split across chunks: a chunk's tail that could begin the key is held back
    until the next chunk (SSE chunks end with a newline, so in practice nothing waits)."""

    def __init__(self, key: bytes, masked: bytes) -> None:
        self.key, self.masked, self.pending = key, masked, b""
        self._first = key[:1]
        self._key_bytes = frozenset(key)

    def feed(self, chunk: bytes) -> bytes:
        data = self.pending + chunk if self.pending else chunk
        if self.key in data:
            data = data.replace(self.key, self.masked)
        if not data or data[-1] not in self._key_bytes:
            # No tail can begin the key: it would end with the chunk's last byte, which is none of the key's (the
            # usual chunk ends with a newline; a key is letters, digits, - and _).
            self.pending = b""
            return data
        # The longest tail that begins the key is held back. Only where the key's first byte occurs in the last
        # len(key) - 1 bytes can one begin (the usual chunk ends "\n\n": none) — a few µs less per streamed chunk
        # than trying every tail length.
        pos = data.find(self._first, max(0, len(data) - len(self.key) + 1))
        while pos != -1:
            if self.key.startswith(data[pos:]):
                self.pending = data[pos:]
                return data[:pos]
            pos = data.find(self._first, pos + 1)
        self.pending = b""
        return data

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return rest
