"""The one request pipeline, as an httpx2 transport.

Everything that talks to the relay — ``Baicai``, ``AsyncBaicai``, a third-party library handed
:func:`http_client` (AutoGen, LangChain…), and the sidecar's upstream client — sends through
:class:`MeteredTransport` / :class:`AsyncMeteredTransport`. Doing it at the transport means every HTTP *attempt* is
seen (the relay counts retries against the hourly window too), and libraries that know nothing of baicai get the
quota gate and the ledger by passing one ``http_client``.

Per attempt, for the metered endpoints (chat, completions, images, embeddings):

1. describe the JSON body (model, token counts, images) — the text itself is never kept;
2. ``Meter.reserve``: decision and ledger row in one SQLite transaction. ``wait`` sleeps (up to ``max_wait``) and
   asks again; ``refuse`` answers a synthetic OpenAI-shaped 429 (``x-baicai-local-quota: 1``) without sending;
3. send; a relay error sent with HTTP 200 gets the code's documented status (so ``openai`` raises instead of returning
   an empty object), and every error gets ``x-should-retry`` / ``retry-after-ms`` from the :class:`RetryPolicy`, so
   openai's own retry loop follows our policy and never retries an hourly limit;
4. settle the reservation from the body's ``usage``, or, for streams, from a parsed copy of the SSE as it passes
   (chunks are yielded untouched, as they arrive) — on ``[DONE]``, on early close, or on a dropped connection.

The sync and async transports share :class:`_Pipeline`, which does no I/O of its own.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx2

from .._codes import RELAY_CODES
from .._errors import _ENVELOPES, parse_relay_error
from .._quota import Decision
from ._proxies import _AsyncEnvProxyTransport, _EnvProxyTransport

if TYPE_CHECKING:
    from .._meter import Meter, Reservation, RequestInfo
    from .._retry import RetryPolicy
    from .._tokens import StreamCounter

__all__ = [
    "MeteredTransport",
    "AsyncMeteredTransport",
    "http_client",
    "async_http_client",
    "APP_HEADER",
    "DEFAULT_MAX_WAIT",
]

QuotaMode = Literal["wait", "raise", "off"]

APP_HEADER = "x-baicai-app"
"""Request header naming the app a request is for (set by the sidecar); stripped before sending."""
LOCAL_QUOTA_HEADER = "x-baicai-local-quota"
ORIGINAL_STATUS_HEADER = "x-baicai-original-status"

_ERROR_KEYS = frozenset({"error", *(code_key for code_key, _ in _ENVELOPES)})
"""Keys without which a decoded SSE event is no relay error envelope: the common chunk skips the full check."""
_FAILED_ROW = "baicai.failed_row"
_METERED_SUFFIXES = ("/chat/completions", "/completions", "/images/generations", "/embeddings")
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)  # openai's defaults
DEFAULT_MAX_WAIT = 120.0
"""How long ``quota="wait"`` sleeps for a window to free before refusing (openai's own cap on Retry-After)."""


def _is_metered(request: httpx2.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith(_METERED_SUFFIXES)


def _bearer(request: httpx2.Request) -> str:
    value = request.headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else value.strip()


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _refusal_response(request: httpx2.Request, decision: Decision) -> httpx2.Response:
    """What a refused request gets instead of a network call: an answer any OpenAI client shows to its user."""
    retry_after = None
    if decision.retry_at is not None:
        retry_after = max(1, math.ceil(decision.retry_at - time.time()))
    body = {
        "error": {
            "message": decision.message(),
            "type": "baicai_local_quota",
            "code": "baicai_local_quota",
            "param": None,
            "retry_at": decision.retry_at,
            "family": decision.family,
            "tier": decision.tier,
        }
    }
    headers = {"content-type": "application/json", "x-should-retry": "false", LOCAL_QUOTA_HEADER: "1"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return httpx2.Response(decision.status, headers=headers, json=body, request=request)


@dataclass
class _StreamTally:
    """A copy of an SSE stream's bytes, read once it ends (counts only; see ``StreamCounter``).

    Nothing needs the figures before the stream is settled, so each chunk costs one ``append`` on its way through,
    and the events are decoded together at the end (one JSON parse instead of one per event).
    """

    counter: StreamCounter
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    broken: bool = False
    relay_code: int | None = None

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        """Decode what was copied: ``[DONE]``, a relay error in the stream, and the text for the token count."""
        data, self.chunks = b"".join(self.chunks), []
        payloads: list[bytes] = []
        for raw in data.split(b"\n"):
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue  # comments (": PING"), event names, blank separators
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
            elif payload:
                payloads.append(payload)
        events = _json_or_none(b"[" + b",".join(payloads) + b"]") if payloads else []
        if not isinstance(events, list):  # some event is not JSON (a cut last line): decode one by one
            events = [_json_or_none(payload) for payload in payloads]
        for event in events:
            if not isinstance(event, dict):
                continue
            # A chunk without any of the envelope keys is no relay error (parse_relay_error would say None):
            # the common case skips the full check.
            answer = parse_relay_error(event) if not _ERROR_KEYS.isdisjoint(event) else None
            if answer is not None:
                self.relay_code = answer.code
            else:
                self.counter.feed_chunk(event)


@dataclass
class _Attempt:
    """One metered HTTP attempt between reserve and settle."""

    pipeline: _Pipeline
    reservation: Reservation
    info: RequestInfo
    api_key: str
    started: float = field(default_factory=time.monotonic)
    settled: bool = False

    def settle(self, **outcome: Any) -> None:
        if self.settled:
            return
        self.settled = True
        outcome.setdefault("latency_ms", int((time.monotonic() - self.started) * 1000))
        self.reservation.settle(**outcome)


class _Pipeline:
    """Decisions and bookkeeping shared by the sync and async transports (no I/O here)."""

    def __init__(
        self,
        *,
        source: str,
        quota: QuotaMode,
        max_wait: float,
        tier: str | None,
        meter: Meter | None,
        retry_policy: RetryPolicy | None,
    ) -> None:
        self.source = source
        self.quota: QuotaMode = quota
        self.max_wait = max_wait
        self.tier = tier
        self._meter = meter
        self._retry_policy = retry_policy

    @property
    def meter(self) -> Meter:
        if self._meter is None:
            from .._meter import Meter

            self._meter = Meter(source=self.source, tier=self.tier)  # type: ignore[arg-type]
        return self._meter

    @property
    def retry_policy(self) -> RetryPolicy:
        if self._retry_policy is None:
            from .._retry import DEFAULT_RETRY_POLICY

            self._retry_policy = DEFAULT_RETRY_POLICY
        return self._retry_policy

    # -- before sending ------------------------------------------------------------------------------------------
    def prepare(self, request: httpx2.Request) -> tuple[str | None, RequestInfo | None]:
        """Strip our own header, ask for an unencoded answer (we parse it), describe the body if metered."""
        # Kept on the request too: a retry resends this same Request, and its attempt belongs to the same app.
        app = request.headers.pop(APP_HEADER, None) or request.extensions.get(APP_HEADER)
        request.extensions[APP_HEADER] = app
        if not _is_metered(request):
            return app, None
        request.headers["accept-encoding"] = "identity"
        from .._meter import describe_request

        body = _json_or_none(request.read())
        if not isinstance(body, dict):
            return app, None  # the relay answers 40039/48002 itself; nothing to reserve
        return app, describe_request(request.url.path, body)

    def admit(self, request: httpx2.Request, info: RequestInfo, app: str | None) -> _Attempt | httpx2.Response | float:
        """Reserve: an attempt to send, a refusal to answer with, or seconds to sleep before asking again."""
        outcome = self.meter.reserve(_bearer(request), info, app=app, enforce=self.quota != "off")
        if not isinstance(outcome, Decision):
            failed_before = request.extensions.pop(_FAILED_ROW, None)
            if failed_before is not None:
                self.meter.forget_failed(failed_before)  # this attempt speaks for the request now
            return _Attempt(self, outcome, info, _bearer(request))
        if outcome.kind == "wait" and self.quota == "wait" and outcome.wait_seconds <= self.max_wait:
            return max(0.05, outcome.wait_seconds)
        return _refusal_response(request, outcome)

    def failed(self, request: httpx2.Request, attempt: _Attempt) -> None:
        """The send raised: nothing came back. Remembered on the request, so that if the caller resends this same
        Request (the sidecar's retries), the ledger keeps one row for it rather than one per attempt."""
        attempt.settle(status="failed", prompt_tokens=0, completion_tokens=0, images=0)
        request.extensions[_FAILED_ROW] = attempt.reservation.id

    def metered_stream_response(
        self, request: httpx2.Request, response: httpx2.Response, attempt: _Attempt | None
    ) -> httpx2.Response | None:
        """For a successful event stream: the response to hand back (wrapped when metered); else None."""
        if response.status_code >= 400 or not _is_event_stream(response):
            return None
        if attempt is None:
            return response
        wrapper = _AsyncMeteredStream if isinstance(response.stream, httpx2.AsyncByteStream) else _MeteredStream
        stream = wrapper(response.stream, self, attempt, response.status_code)  # type: ignore[arg-type]
        return httpx2.Response(response.status_code, headers=response.headers, stream=stream,
                               request=request, extensions=response.extensions)

    # -- after the answer ----------------------------------------------------------------------------------------
    def annotate(self, request: httpx2.Request, response: httpx2.Response, body: bytes, attempt: _Attempt | None) -> httpx2.Response:
        """Classify a complete (non-streamed) answer, settle, and return the response the caller should see."""
        parsed = _json_or_none(body) if body else None
        answer = parse_relay_error(parsed) if parsed is not None else None
        status = response.status_code
        headers = httpx2.Headers(response.headers)
        for name in ("content-encoding", "content-length", "transfer-encoding"):
            headers.pop(name, None)

        if answer is not None:
            known = RELAY_CODES.get(answer.code)
            if status < 400:
                headers[ORIGINAL_STATUS_HEADER] = str(status)
                status = known.http_status if known else 400
            if attempt is not None:
                # Settle first: what the relay refused must not count in the window the meter learns from.
                attempt.settle(status="error", relay_code=answer.code, http_status=status,
                               prompt_tokens=0, completion_tokens=0, images=0)
                self.meter.observe(attempt.api_key, attempt.info.model, answer.code)
        elif attempt is not None:
            if status >= 400:
                attempt.settle(status="error", http_status=status, prompt_tokens=0, completion_tokens=0, images=0)
            else:
                attempt.settle(status="ok", http_status=status, **_usage_outcome(parsed, attempt.info))

        if status >= 400 and "x-should-retry" not in headers:
            self._retry_headers(request, headers, status, answer.code if answer else None)
        return httpx2.Response(status, headers=headers, content=body, request=request, extensions=response.extensions)

    def _retry_headers(self, request: httpx2.Request, headers: httpx2.Headers, status: int, relay_code: int | None) -> None:
        policy = self.retry_policy
        retry = policy.should_retry(relay_code=relay_code, status=status)
        headers["x-should-retry"] = "true" if retry else "false"
        if retry:
            attempt_no = int(request.headers.get("x-stainless-retry-count", "0") or 0)
            retry_after = _float_or_none(headers.get("retry-after"))
            headers["retry-after-ms"] = str(int(policy.delay(attempt_no, retry_after) * 1000))

    def stream_tally(self, info: RequestInfo) -> _StreamTally:
        from .._tokens import StreamCounter

        return _StreamTally(counter=StreamCounter(info.model))

    def settle_stream(self, attempt: _Attempt, tally: _StreamTally, status_code: int, *, closed_early: bool) -> None:
        if attempt.settled:
            return  # the stream was both exhausted and closed
        tally.finish()
        completion = tally.counter.tokens
        prompt = tally.counter.prompt_tokens_reported
        if prompt is None:
            prompt = attempt.info.prompt_tokens
        if tally.relay_code is not None:
            state = "error"
        elif tally.done:
            state = "ok"
        else:
            state = "cancelled" if closed_early and not tally.broken else "dropped"
        attempt.settle(status=state, http_status=status_code, relay_code=tally.relay_code,
                       prompt_tokens=prompt, completion_tokens=completion, stream=True)
        if tally.relay_code is not None:
            self.meter.observe(attempt.api_key, attempt.info.model, tally.relay_code)


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _usage_outcome(body: Any, info: RequestInfo) -> dict[str, Any]:
    """Actual usage from a successful body; what the relay bills when the body has no ``usage``."""
    if info.endpoint == "images":
        images = len(body.get("data") or ()) if isinstance(body, dict) else info.images
        return {"images": images, "prompt_tokens": 0, "completion_tokens": 0}
    usage = body.get("usage") if isinstance(body, dict) else None
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        return {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                "completion_tokens": int(usage.get("completion_tokens") or 0)}
    from .._tokens import StreamCounter

    counter = StreamCounter(info.model)
    for choice in (body.get("choices") or ()) if isinstance(body, dict) else ():
        message = choice.get("message") or {}
        counter.feed(message.get("content") if isinstance(message.get("content"), str) else None)
    return {"prompt_tokens": info.prompt_tokens, "completion_tokens": counter.tokens}


def _is_event_stream(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


class _MeteredStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, pipeline: _Pipeline, attempt: _Attempt, status: int) -> None:
        self._inner, self._pipeline, self._attempt, self._status = inner, pipeline, attempt, status
        self._tally = pipeline.stream_tally(attempt.info)
        self._finished = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                self._tally.feed(chunk)
                yield chunk
            self._finished = True
        except Exception:
            self._tally.broken = True  # the connection failed under us: a drop, not the consumer's choice
            raise
        finally:
            self._pipeline.settle_stream(self._attempt, self._tally, self._status, closed_early=not self._finished)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._pipeline.settle_stream(self._attempt, self._tally, self._status, closed_early=not self._finished)


class _AsyncMeteredStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, pipeline: _Pipeline, attempt: _Attempt, status: int) -> None:
        self._inner, self._pipeline, self._attempt, self._status = inner, pipeline, attempt, status
        self._tally = pipeline.stream_tally(attempt.info)
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                self._tally.feed(chunk)
                yield chunk
            self._finished = True
        except Exception:
            self._tally.broken = True  # the connection failed under us: a drop, not the consumer's choice
            raise
        finally:
            self._pipeline.settle_stream(self._attempt, self._tally, self._status, closed_early=not self._finished)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._pipeline.settle_stream(self._attempt, self._tally, self._status, closed_early=not self._finished)


class MeteredTransport(httpx2.BaseTransport):
    """Wraps a transport (default: httpx2's own) with the quota gate, the ledger and the relay's error rules."""

    def __init__(
        self,
        inner: httpx2.BaseTransport | None = None,
        *,
        source: str = "sdk",
        quota: QuotaMode = "wait",
        max_wait: float = DEFAULT_MAX_WAIT,
        tier: str | None = None,
        meter: Meter | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._inner = inner or _EnvProxyTransport(limits=_LIMITS)
        self._pipeline = _Pipeline(source=source, quota=quota, max_wait=max_wait, tier=tier, meter=meter,
                                   retry_policy=retry_policy)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        pipeline = self._pipeline
        app, info = pipeline.prepare(request)
        attempt: _Attempt | None = None
        if info is not None:
            while isinstance(step := pipeline.admit(request, info, app), float):
                time.sleep(step)
            if isinstance(step, httpx2.Response):
                return step
            attempt = step
        try:
            response = self._inner.handle_request(request)
        except BaseException:
            if attempt is not None:
                pipeline.failed(request, attempt)
            raise
        streamed = pipeline.metered_stream_response(request, response, attempt)
        if streamed is not None:
            return streamed
        try:
            body = response.read()
        finally:
            response.close()
        return pipeline.annotate(request, response, body, attempt)

    def close(self) -> None:
        self._inner.close()


class AsyncMeteredTransport(httpx2.AsyncBaseTransport):
    """The async twin of :class:`MeteredTransport` (used by ``AsyncBaicai`` and the sidecar)."""

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport | None = None,
        *,
        source: str = "sdk",
        quota: QuotaMode = "wait",
        max_wait: float = DEFAULT_MAX_WAIT,
        tier: str | None = None,
        meter: Meter | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._inner = inner or _AsyncEnvProxyTransport(limits=_LIMITS)
        self._pipeline = _Pipeline(source=source, quota=quota, max_wait=max_wait, tier=tier, meter=meter,
                                   retry_policy=retry_policy)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        import anyio

        pipeline = self._pipeline
        app, info = pipeline.prepare(request)
        attempt: _Attempt | None = None
        if info is not None:
            while isinstance(step := pipeline.admit(request, info, app), float):
                await anyio.sleep(step)
            if isinstance(step, httpx2.Response):
                return step
            attempt = step
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            if attempt is not None:
                pipeline.failed(request, attempt)
            raise
        streamed = pipeline.metered_stream_response(request, response, attempt)
        if streamed is not None:
            return streamed
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        return pipeline.annotate(request, response, body, attempt)

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(**options: Any) -> httpx2.Client:
    """An ``httpx2.Client`` whose requests go through the baicai pipeline.

    For libraries built on ``openai`` that accept ``http_client=`` (AutoGen, LangChain…): their requests then get the
    quota gate and land in the ledger like ``Baicai``'s. ``options`` are :class:`MeteredTransport`'s.
    """
    return httpx2.Client(transport=MeteredTransport(**options), timeout=httpx2.Timeout(600.0, connect=10.0))


def async_http_client(**options: Any) -> httpx2.AsyncClient:
    """The async twin of :func:`http_client`."""
    return httpx2.AsyncClient(transport=AsyncMeteredTransport(**options), timeout=httpx2.Timeout(600.0, connect=10.0))
