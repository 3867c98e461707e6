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
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any

import httpx2

from .._catalog import encoding_name_for
from .._quota import Decision, QuotaMode
from .._tokens import BUNDLED_ENCODINGS, is_loaded
from ._proxies import _AsyncEnvProxyTransport, _EnvProxyTransport
from ._wire import (
    APP_HEADER,
    LOCAL_QUOTA_HEADER,
    LOCAL_QUOTA_TYPE,
    ORIGINAL_STATUS_HEADER,
    RETRY_AFTER_MS_HEADER,
    SHOULD_RETRY_HEADER,
    RelayAnswer,
    RelayStreamError,
    SSEDecoder,
    classify,
    error_body,
    is_event_stream,
    might_be_error,
    parse_relay_error,
    parse_retry_after,
)

if TYPE_CHECKING:
    from .._meter import Meter, RequestInfo, Reservation
    from .._retry import RetryPolicy
    from .._tokens import StreamCounter

__all__ = [
    "MeteredTransport",
    "AsyncMeteredTransport",
    "http_client",
    "async_http_client",
    "APP_HEADER",
    "DEFAULT_MAX_WAIT",
    "RAISE_STREAM_ERRORS",
    "STREAM_SCANNED",
    "STREAM_TALLY",
    "RELAY_ANSWER",
    "SETTLE_AFTER",
    "read_response",
]


RAISE_STREAM_ERRORS = "baicai.raise_stream_errors"
"""Request extension: a metered stream raises :class:`~._wire.RelayStreamError` at a relay error event (after the
bytes before it) instead of passing the event on. ``Baicai`` asks for it, so a reply is scanned once, here."""
STREAM_TALLY = "baicai.stream_tally"
"""Response extension on every metered stream: its tally (``done``: ``data: [DONE]`` came; ``relay_code``), up to
date as each chunk leaves the stream, so a reader above (the sidecar) need not parse the bytes again."""
STREAM_SCANNED = "baicai.stream_scanned"
"""Response extension set when the stream honours :data:`RAISE_STREAM_ERRORS` (else the client scans it itself):
the stream's tally, whose ``done`` says whether ``data: [DONE]`` came."""
RELAY_ANSWER = "baicai.relay_error"
"""Response extension on a complete answer whose body is JSON: the relay error it holds (a ``RelayAnswer``) or
None, as classified here — a reader above (the sidecar) need not parse the body again to find it."""
SETTLE_AFTER = "baicai.settle_after"
"""Request extension (the sidecar sets it): a successful complete answer comes back with its ledger row still
pending and, as the response extension of the same name, the call that settles it — for the caller to make once it
has passed the answer on, so the app does not wait for the ledger's commit. A row never settled (the process died
in between) is settled as ``orphaned`` by the next Meter, like any request in flight. A stream read to its end is
settled when the caller closes it (after the app's last byte) rather than as its last chunk is read."""
EMULATOR_HEADER = "x-baicai-emulator"
"""Sent by the relay emulator on every answer: its address then follows the relay's hourly limits."""
_WAITED = "baicai.waited"
_SUPERSEDED_ROW = "baicai.superseded_row"
"""Request extension: the ledger row of an attempt that failed or was told to retry. When the caller sends this same
Request again (the sidecar's retries), the new attempt's row replaces it: one app request, one row."""
_METERED_SUFFIXES = ("/chat/completions", "/completions", "/images/generations", "/embeddings")
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)  # openai's defaults
DEFAULT_MAX_WAIT = 120.0
"""How long ``quota="wait"`` sleeps for a window to free before refusing (openai's own cap on Retry-After)."""


def _describe_request() -> Callable[[str, dict[str, Any]], RequestInfo]:
    """``_meter.describe_request``, imported on first use (the meter's imports are not paid by ``import baicai_sdk``),
    then kept: an import statement per request cost ~0.6 % of a sidecar request."""
    global _DESCRIBE
    if _DESCRIBE is None:
        from .._meter import describe_request

        _DESCRIBE = describe_request
    return _DESCRIBE


_DESCRIBE: Callable[[str, dict[str, Any]], RequestInfo] | None = None


def _is_metered(request: httpx2.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith(_METERED_SUFFIXES)


def _bearer(request: httpx2.Request) -> str:
    value = request.headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else value.strip()


def _attempt_number(request: httpx2.Request) -> int:
    """Which try of its app request this is: openai's clients (the SDK's own and an app's behind the sidecar) send
    ``x-stainless-retry-count`` with each attempt; 0 when absent or unreadable."""
    try:
        return max(0, int(request.headers.get("x-stainless-retry-count", "0")))
    except ValueError:
        return 0


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def read_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes, *, request: httpx2.Request,
                  extensions: dict[str, Any] | None = None) -> httpx2.Response:
    """What ``httpx2.Response(status, headers=headers, content=body, …)`` makes — a response already read and closed,
    ``Content-Length`` added when absent — for an answer whose whole body is here (an upstream transport that read it
    with the head), without that constructor reading ``body`` again through httpx2's decoder chain: ~30 µs, 5–8 % of
    a sidecar request's in-process CPU. The body is kept as ``read()`` keeps it. A body with a content encoding
    goes through the constructor, which decodes it."""
    length = False
    for name, value in headers:
        name = name.lower()
        if name == b"content-length":
            length = True
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return httpx2.Response(status, headers=headers, content=body, request=request, extensions=extensions)
    if body and not length:
        headers = [*headers, (b"Content-Length", str(len(body)).encode("ascii"))]
    response = httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(body), request=request,
                               extensions=extensions)
    response._content = body  # what Response.read() stores; Response.content returns it
    response.is_stream_consumed = True
    response.is_closed = True
    return response


def _refusal_response(request: httpx2.Request, decision: Decision) -> httpx2.Response:
    """What a refused request gets instead of a network call: an answer any OpenAI client shows to its user."""
    retry_after = None
    if decision.retry_at is not None:
        retry_after = max(1, math.ceil(decision.retry_at - time.time()))
    message = decision.message()
    body = error_body(message.zh, message.en, type=LOCAL_QUOTA_TYPE, code=LOCAL_QUOTA_TYPE,
                      retry_at=decision.retry_at, family=decision.family, tier=decision.tier,
                      **({"alternatives": list(decision.alternatives)} if decision.alternatives else {}))
    headers = {"content-type": "application/json", SHOULD_RETRY_HEADER: "false", LOCAL_QUOTA_HEADER: "1"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return httpx2.Response(decision.status, headers=headers, json=body, request=request)


def _malformed(path: str, body: dict[str, Any]) -> tuple[str, str, str] | None:
    """What is wrong with a body no OpenAI endpoint would accept, as (param, 中文, English); None when its shape
    is fine. OpenAI answers these with 400 ``invalid_type``; answering here keeps a bare AttributeError from deep
    in the token counter out of the caller's hands (and the sidecar's 500 out of an app's)."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        kind = type(model).__name__
        return "model", f"model 必须是字符串，收到的是 {kind}", f"model must be a string, got {kind}"
    if not path.endswith("/chat/completions") or "messages" not in body:
        return None
    messages = body["messages"]
    if not isinstance(messages, list):
        kind = type(messages).__name__
        return ("messages", f"messages 必须是消息对象的列表，收到的是 {kind}",
                f"messages must be a list of message objects, got {kind}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            kind = type(message).__name__
            return (f"messages[{i}]", f"messages[{i}] 必须是含 role 和 content 的对象，收到的是 {kind}",
                    f"messages[{i}] must be an object with role and content, got {kind}")
    return None


def _malformed_response(request: httpx2.Request, param: str, zh: str, en: str) -> httpx2.Response:
    """OpenAI's own answer to a malformed body (400 ``invalid_type``), made here without sending it."""
    body = error_body(f"请求格式有误：{zh}", f"invalid request: {en}", type="invalid_request_error",
                      code="invalid_type")
    body["error"]["param"] = param
    return httpx2.Response(400, headers={"content-type": "application/json", SHOULD_RETRY_HEADER: "false"},
                           json=body, request=request)


@dataclass
class _StreamTally:
    """What a metered SSE stream said, read as it passes: ``[DONE]``, a relay error event, and the token count.

    Each chunk is split into events on its way through (:class:`~._wire.SSEDecoder`), and only an event that could
    be an error is decoded at once; the rest wait until the stream ends and are decoded together (one JSON parse
    instead of one per event) — nothing needs the figures before the stream is settled.
    """

    counter: StreamCounter
    raise_errors: bool = False
    decoder: SSEDecoder = field(default_factory=SSEDecoder)
    payloads: list[bytes] = field(default_factory=list)
    done: bool = False
    broken: bool = False
    relay_code: int | None = None
    answered: int = 0
    """Answer events (chunks with choices) decoded: an error after any of them came from a request that ran."""

    def feed(self, chunk: bytes) -> tuple[int, RelayAnswer] | None:
        """Take ``chunk``; for the first relay error event it completes, where that event starts in it."""
        plain = self.decoder.plain_data(chunk)
        if plain is not None and not might_be_error(chunk):
            # The common chunk, `data: {…}` events none of which can be an error, the last one possibly `[DONE]`
            # (an unpaced stream's last read holds many events and the end): what _take would keep, kept.
            done = plain[-1] == b"[DONE]"
            if done:
                plain.pop()
            for data in plain:
                if data[:1] != b"{" or data[-1:] != b"}":
                    break  # (the events are read from the chunk again below)
            else:
                self.payloads.extend(plain)
                if done:  # the end goes through the decoder, as every event but an answer's (one event: its shortcut)
                    for event in self.decoder.feed(_DONE_EVENT):
                        self._take(event.data)
                return None
        found = None
        for event in self.decoder.feed(chunk):
            answer = self._take(event.data)
            if answer is not None and found is None:
                found = (event.start, answer)
        return found

    def end(self) -> RelayAnswer | None:
        """The stream ended: take an event it left open; the relay error in it, if any."""
        found = None
        for event in self.decoder.flush():
            found = self._take(event.data) or found
        return found

    def _take(self, data: bytes) -> RelayAnswer | None:
        data = data.strip()
        if not data:
            return None
        if data == b"[DONE]":
            self.done = True
            return None
        if might_be_error(data):
            answer = parse_relay_error(_json_or_none(data))
            if answer is not None:
                self.relay_code = answer.code
                return answer
        self.payloads.append(data)
        return None

    def finish(self) -> None:
        """Count the tokens of the events kept (their order is the text's order)."""
        self.end()
        payloads, self.payloads = self.payloads, []
        if not payloads:
            return
        if len(payloads) >= _TEMPLATE_MIN_EVENTS and self._count_by_template(payloads):
            return
        events = _json_or_none(b"[" + b",".join(payloads) + b"]")
        if not isinstance(events, list):  # some event is not JSON (a cut last one, several data lines): one by one
            events = []
            for payload in payloads:
                one = _json_or_none(payload)
                events.extend([one] if one is not None or b"\n" not in payload else
                              [_json_or_none(line) for line in payload.split(b"\n")])
        for event in events:
            if isinstance(event, dict):
                if event.get("choices"):
                    self.answered += 1
                self.counter.feed_chunk(event)

    def _count_by_template(self, payloads: list[bytes]) -> bool:
        """Count the events as :meth:`finish` does, decoding only each text where the events differ in nothing
        else; False (nothing counted) when that cannot be done exactly — then the caller decodes them all.

        A stream's content events are one template — ``{"id": …, "choices": [{"index": 0, "delta": {"content":
        "`` + the text + ``"}, "finish_reason": null}]}`` — with the same id, time, model and index in each. One
        event (from the middle) is decoded whole and shows the template: one choice whose delta has nothing to
        count but its content, and no usage. Every event that begins and ends as that one does differs only in
        its text, and the texts are decoded together as one JSON array of strings: an event whose "text" held an
        unescaped quote would not be one string there (the array would not parse, or would hold more strings than
        events), and then nothing is taken from here; nor when the text found in that middle event is not the one
        decoding it gave. The other events (the first, with the role; the last, with the finish reason) are
        decoded whole, as before. Decoding and counting a stream's events: ~6 µs an event before, ~1.2 now."""
        middle = len(payloads) // 2
        template = _content_template(payloads[middle])
        if template is None:
            return False
        head, tail, choice, text = template
        cut, end = len(head), -len(tail)
        shortest = len(head) + len(tail)
        fits = [len(p) >= shortest and p.startswith(head) and p.endswith(tail) for p in payloads]
        texts = _json_or_none(b'["' + b'","'.join([p[cut:end] for p, fit in zip(payloads, fits) if fit]) + b'"]')
        if not isinstance(texts, list) or len(texts) != fits.count(True) or texts[fits[:middle].count(True)] != text:
            return False  # (the last: the text found in the middle event is not the one it holds)
        others = [p for p, fit in zip(payloads, fits) if not fit]
        events: Any = _json_or_none(b"[" + b",".join(others) + b"]") if others else []
        if not isinstance(events, list) or len(events) != len(others):
            return False
        counter = self.counter
        taken = {True: 0, False: 0}
        for fit, run in groupby(fits):
            first = taken[fit]
            taken[fit] = last = first + sum(1 for _ in run)
            if fit:  # a run of the template's events: their texts, one after the other, are one piece of its choice
                self.answered += last - first
                counter.feed("".join(texts[first:last]), choice=choice)
                continue
            for event in events[first:last]:
                if isinstance(event, dict):
                    if event.get("choices"):
                        self.answered += 1
                    counter.feed_chunk(event)
        return True


_DONE_EVENT = b"data: [DONE]\n\n"
_TEMPLATE_MIN_EVENTS = 4
"""Fewer events than this are decoded whole: finding the template would cost more than it saves."""
_CONTENT_KEY = b'"content"'


def _content_template(sample: bytes) -> tuple[bytes, bytes, int, str] | None:
    """What comes before and after the content text of a stream's event ``sample``, its choice's index and the
    text — when decoding ``sample`` shows one choice whose delta holds its content (and perhaps the role) and
    nothing else a count reads (no refusal, tool call or function call), and no usage; else None."""
    at = sample.find(_CONTENT_KEY)
    if at < 0 or sample.find(_CONTENT_KEY, at + 1) >= 0:
        return None  # no content, or the key twice (the last would win): not a template
    start = at + len(_CONTENT_KEY)
    while sample[start:start + 1] in (b" ", b"\t"):
        start += 1
    if sample[start:start + 1] != b":":
        return None
    start += 1
    while sample[start:start + 1] in (b" ", b"\t"):
        start += 1
    if sample[start:start + 1] != b'"':
        return None
    start += 1  # the text begins after its opening quote
    end = sample.find(b'"', start)
    while end > 0:
        escapes = 0
        while sample[end - 1 - escapes] == 0x5C:  # backslashes before the quote: an odd count escapes it
            escapes += 1
        if escapes % 2 == 0:
            break
        end = sample.find(b'"', end + 1)
    if end < 0:
        return None
    event = _json_or_none(sample)
    if type(event) is not dict or event.get("usage"):
        return None
    choices = event.get("choices")
    if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
        return None
    delta = choices[0].get("delta")
    if type(delta) is not dict or not delta.keys() <= {"content", "role"} or not isinstance(delta.get("content"), str):
        return None
    try:
        choice = int(choices[0].get("index") or 0)
    except (TypeError, ValueError):
        return None
    return sample[:start], sample[end:], choice, delta["content"]


@dataclass
class _Attempt:
    """One metered HTTP attempt between reserve and settle."""

    pipeline: _Pipeline
    reservation: Reservation
    info: RequestInfo
    api_key: str
    started: float = field(default_factory=time.monotonic)
    settled: bool = False
    answered_at: float | None = None
    """Meter-clock time the answer's headers arrived: the latest the relay can have counted the request."""

    def settle(self, **outcome: Any) -> None:
        if self.settled:
            return
        self.settled = True
        outcome.setdefault("latency_ms", int((time.monotonic() - self.started) * 1000))
        outcome.setdefault("answered_at", self.answered_at)
        self.reservation.settle(**outcome)

    def answered(self, request: httpx2.Request, response: httpx2.Response) -> None:
        """The answer's headers arrived: note when, and whether the server said it is the relay's emulator."""
        meter = self.pipeline.meter
        self.answered_at = meter.clock()
        if EMULATOR_HEADER in response.headers:
            meter.learn_relay_host(request.url, "emulator")


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
    def prepare(self, request: httpx2.Request) -> tuple[str | None, RequestInfo | httpx2.Response | None]:
        """Strip our own header, ask for an unencoded answer (we parse it), describe the body if metered; or the
        400 answer for a body no OpenAI endpoint accepts (e.g. ``messages=[1, 2, 3]``), sent nowhere."""
        # Kept on the request too: a retry resends this same Request, and its attempt belongs to the same app.
        # (The sidecar passes it as the extension alone: no header to remove.)
        headers = request.headers
        app = (headers.pop(APP_HEADER, None) if APP_HEADER in headers else None) or request.extensions.get(APP_HEADER)
        request.extensions[APP_HEADER] = app
        if not _is_metered(request):
            return app, None
        headers["accept-encoding"] = "identity"
        describe_request = _describe_request()
        # A server in front (the sidecar) may have parsed this very body already: a large one is parsed once.
        parsed = request.extensions.get(PARSED_BODY_EXTENSION)
        body = parsed if parsed is not None else _json_or_none(request.read())
        if not isinstance(body, dict):
            return app, None  # the relay answers 40039/48002 itself; nothing to reserve
        problem = _malformed(request.url.path, body)
        if problem is not None:
            return app, _malformed_response(request, *problem)
        try:
            return app, describe_request(request.url.path, body)
        except (TypeError, AttributeError, ValueError, KeyError) as exc:  # a shape the counter cannot read
            reason = f"{type(exc).__name__}: {exc}"[:200]
            return app, _malformed_response(request, "", f"请求体的结构无法识别（{reason}）",
                                            f"the request body has a shape that cannot be read ({reason})")

    def admit(self, request: httpx2.Request, info: RequestInfo, app: str | None) -> _Attempt | httpx2.Response | float:
        """Reserve: an attempt to send, a refusal to answer with, or seconds to sleep before asking again."""
        key = _bearer(request)
        outcome = self.meter.reserve(key, info, app=app, enforce=self.quota != "off", url=request.url,
                                     attempt=_attempt_number(request))
        if not isinstance(outcome, Decision):
            request.extensions.pop(_WAITED, None)
            superseded = request.extensions.pop(_SUPERSEDED_ROW, None)
            if superseded is not None:
                self.meter.forget_failed(superseded)  # this attempt speaks for the request now
            return _Attempt(self, outcome, info, key)
        waited = float(request.extensions.get(_WAITED) or 0.0)
        if outcome.kind == "wait" and self.quota == "wait" and waited + outcome.wait_seconds <= self.max_wait:
            step = max(0.05, outcome.wait_seconds)
            request.extensions[_WAITED] = waited + step  # short in-flight waits add up to max_wait at most
            return step
        request.extensions.pop(_WAITED, None)
        return _refusal_response(request, outcome)

    def failed(self, request: httpx2.Request, attempt: _Attempt, exc: BaseException | None = None, *,
               answer_began: bool = False) -> None:
        """The send raised. Before the request was fully sent (connect, pool, write errors) nothing reached the
        relay: ``failed``, remembered on the request so that a resend of this same Request (the sidecar's retries)
        keeps one row. After it was sent (a read timeout, the connection closed before the answer, the caller
        cancelled while waiting) the relay may have served and billed it: ``timeout``/``dropped``/``cancelled``,
        counted in the window and booked with bounds."""
        after_send = answer_began or isinstance(
            exc, (httpx2.ReadTimeout, httpx2.ReadError, httpx2.RemoteProtocolError)) or (
            exc is not None and not isinstance(exc, Exception))
        if not after_send:
            attempt.settle(status="failed", prompt_tokens=0, completion_tokens=0, images=0)
            request.extensions[_SUPERSEDED_ROW] = attempt.reservation.id
            return
        status = ("timeout" if isinstance(exc, httpx2.ReadTimeout)
                  else "dropped" if isinstance(exc, Exception) else "cancelled")
        attempt.settle(status=status, measured=False, counted=True, answered_at=self.meter.clock())

    def metered_stream_response(
        self, request: httpx2.Request, response: httpx2.Response, attempt: _Attempt | None
    ) -> httpx2.Response | None:
        """For a successful event stream: the response to hand back (wrapped when metered); else None."""
        if response.status_code >= 400 or not is_event_stream(response.headers):
            return None
        if attempt is None:
            return response
        tally = self.stream_tally(attempt.info, raise_errors=bool(request.extensions.get(RAISE_STREAM_ERRORS)))
        response.extensions[STREAM_TALLY] = tally
        if tally.raise_errors:
            response.extensions[STREAM_SCANNED] = tally  # the client reads ``done`` from it, not the bytes again
        wrapper = _AsyncMeteredStream if isinstance(response.stream, httpx2.AsyncByteStream) else _MeteredStream
        # The metered stream put in place of the answer's own, as annotate sets a complete answer's status: a
        # second httpx2.Response per stream would only copy the headers again.
        response.stream = wrapper(response.stream, self, attempt, response.status_code, tally,
                                  settle_on_close=bool(request.extensions.get(SETTLE_AFTER)))
        response.request = request
        return response

    # -- after the answer ----------------------------------------------------------------------------------------
    def annotate(self, request: httpx2.Request, response: httpx2.Response, body: bytes, attempt: _Attempt | None) -> httpx2.Response:
        """Classify a complete (non-streamed) answer, settle, and return the response the caller should see."""
        parsed = _json_or_none(body) if body else None
        verdict = classify(response.status_code, parsed)
        answer, status = verdict.answer, verdict.status
        # The caller gets this same response, read, with its status and headers made to say what it now holds:
        # rebuilding one (httpx2.Response(content=...) reads its body through the decoder chain again) cost ~6 %
        # of a sidecar request's CPU.
        headers = response.headers
        if not _describes(headers, body):
            for name in _BODY_HEADERS:
                headers.pop(name, None)
            if body:
                headers["Content-Length"] = str(len(body))
        response.status_code = status
        response.request = request
        if verdict.rewritten:
            headers[ORIGINAL_STATUS_HEADER] = str(verdict.original_status)

        if answer is not None:
            if attempt is not None and answer.known is not None:
                self.meter.learn_relay_host(request.url, "relay-code")
            if attempt is not None:
                # Settle first: what the relay refused must not count in the window the meter learns from.
                attempt.settle(status="error", relay_code=answer.code, http_status=status,
                               prompt_tokens=0, completion_tokens=0, images=0)
                self.meter.observe(attempt.api_key, attempt.info.model, answer.code)
        elif attempt is not None:
            if status >= 400:
                attempt.settle(status="error", http_status=status, prompt_tokens=0, completion_tokens=0, images=0)
            elif request.extensions.get(SETTLE_AFTER):
                response.extensions[SETTLE_AFTER] = _SettleLater(attempt, status, parsed)
            else:
                attempt.settle(status="ok", http_status=status, **_usage_outcome(parsed, attempt.info))

        if status >= 400 and SHOULD_RETRY_HEADER not in headers:
            self._retry_headers(request, headers, status, answer.code if answer else None)
        if attempt is not None and status >= 400 and headers.get(SHOULD_RETRY_HEADER) == "true":
            request.extensions[_SUPERSEDED_ROW] = attempt.reservation.id  # if resent, the next row replaces it
        if parsed is not None:
            response.extensions[RELAY_ANSWER] = answer  # (a body that is not JSON: the reader decides on its own)
        return response

    def _retry_headers(self, request: httpx2.Request, headers: httpx2.Headers, status: int, relay_code: int | None) -> None:
        policy = self.retry_policy
        retry = policy.should_retry(relay_code=relay_code, status=status)
        headers[SHOULD_RETRY_HEADER] = "true" if retry else "false"
        if retry:
            attempt_no = int(request.headers.get("x-stainless-retry-count", "0") or 0)
            retry_after = parse_retry_after(headers)
            headers[RETRY_AFTER_MS_HEADER] = str(int(policy.delay(attempt_no, retry_after) * 1000))

    def stream_tally(self, info: RequestInfo, *, raise_errors: bool = False) -> _StreamTally:
        from .._tokens import StreamCounter

        return _StreamTally(counter=StreamCounter(info.model), raise_errors=raise_errors)

    def settle_stream(self, attempt: _Attempt, tally: _StreamTally, status_code: int, *, closed_early: bool) -> None:
        if attempt.settled:
            return  # the stream was both exhausted and closed
        tally.finish()
        completion = tally.counter.tokens
        prompt = tally.counter.prompt_tokens_reported  # None: the meter takes its own count (and its bounds)
        measured, counted = True, None
        if tally.relay_code is not None:
            state = "error"
            # An error after the answer began: the request ran, and the relay bills what it sent and counts it.
            counted = tally.answered > 0 or None
        elif tally.done:
            state = "ok"
        else:
            state = "cancelled" if closed_early and not tally.broken else "dropped"
            measured = False  # what we read is the low end: the relay bills what it generated
        attempt.settle(status=state, http_status=status_code, relay_code=tally.relay_code,
                       prompt_tokens=prompt, completion_tokens=completion, stream=True, measured=measured,
                       counted=counted)
        if tally.relay_code is not None:
            self.meter.observe(attempt.api_key, attempt.info.model, tally.relay_code)


_BODY_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


def _describes(headers: httpx2.Headers, body: bytes) -> bool:
    """Whether ``headers`` describe ``body`` as it was read: no content or transfer encoding (the body is decoded
    already), one ``content-length`` that is its length (none for an empty body)."""
    length = None
    for name, value in headers.raw:
        name = name.lower()
        if name == b"content-length":
            if length is not None:
                return False
            length = value
        elif name in (b"content-encoding", b"transfer-encoding"):
            return False
    return length == str(len(body)).encode() if body else length is None


class _SettleLater:
    """The settle of a successful complete answer, made when called (once), with the latency of the answer's
    arrival rather than of the call."""

    __slots__ = ("attempt", "status", "body", "latency_ms")

    def __init__(self, attempt: _Attempt, status: int, body: Any) -> None:
        self.attempt, self.status, self.body = attempt, status, body
        self.latency_ms = int((time.monotonic() - attempt.started) * 1000)

    def __call__(self) -> None:
        """Called on the event loop that reserved: the row's ``UPDATE`` then goes into the next reservation's commit,
        or a timer of that loop writes it within ``SETTLE_FLUSH_SECONDS`` (``Meter.flush_settles``): one commit per
        request instead of two while requests keep coming. Without a running asyncio loop it is written at once."""
        import asyncio

        attempt = self.attempt
        if attempt.settled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        attempt.settle(status="ok", http_status=self.status, latency_ms=self.latency_ms, deferred=loop is not None,
                       **_usage_outcome(self.body, attempt.info))
        if loop is not None:
            attempt.pipeline.meter.flush_settles_soon(loop.call_later)


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

    # No usage: count as OpenAI bills — each choice on its own (n > 1 is n completions, not one joined text), and a
    # tool call's name and arguments as the completion they are (the same counter a stream goes through).
    counter = StreamCounter(info.model)
    for position, choice in enumerate((body.get("choices") or ()) if isinstance(body, dict) else ()):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        index = choice.get("index") if isinstance(choice.get("index"), int) else position
        counter.feed_chunk({"choices": [{"index": index, "delta": message}]})
    return {"prompt_tokens": None, "completion_tokens": counter.tokens}  # the prompt: the meter's own count


class _SettlingStream:
    """What the sync and async metered streams share: the answer's bytes feed the tally, and the attempt is settled
    once — at the end, on close, or when a stream is dropped unread (``__del__``)."""

    def __init__(self, inner: Any, pipeline: _Pipeline, attempt: _Attempt, status: int, tally: _StreamTally,
                 *, settle_on_close: bool = False) -> None:
        self._inner, self._pipeline, self._attempt, self._status = inner, pipeline, attempt, status
        self._tally = tally
        self._finished = False
        self._settle_on_close = settle_on_close
        """SETTLE_AFTER: a stream read to its end is settled when closed (the caller closes it once the app has
        the last byte), not as its last chunk is read; one that breaks or is abandoned, at once as always."""

    def _settle(self) -> None:
        self._pipeline.settle_stream(self._attempt, self._tally, self._status, closed_early=not self._finished)

    def __del__(self) -> None:
        # A stream dropped without being read to the end or closed: settle it rather than hold its reservation.
        if not self._attempt.settled:
            try:
                self._pipeline.settle_stream(self._attempt, self._tally, self._status, closed_early=True)
            except Exception:  # interpreter shutdown, a closed ledger: the next Meter settles it as orphaned
                pass


class _MeteredStream(_SettlingStream, httpx2.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                found = self._tally.feed(chunk)
                if found is not None and self._tally.raise_errors:
                    if found[0]:
                        yield chunk[:found[0]]
                    raise RelayStreamError(found[1])
                yield chunk
            self._finished = True
            last = self._tally.end()
            if last is not None and self._tally.raise_errors:
                raise RelayStreamError(last)
        except RelayStreamError:
            raise
        except Exception:
            self._tally.broken = True  # the connection failed under us: a drop, not the consumer's choice
            raise
        finally:
            self._settle()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._settle()


class _AsyncMeteredStream(_SettlingStream, httpx2.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                found = self._tally.feed(chunk)
                if found is not None and self._tally.raise_errors:
                    if found[0]:
                        yield chunk[:found[0]]
                    raise RelayStreamError(found[1])
                yield chunk
            self._finished = True
            last = self._tally.end()
            if last is not None and self._tally.raise_errors:
                raise RelayStreamError(last)
        except RelayStreamError:
            raise
        except Exception:
            self._tally.broken = True  # the connection failed under us: a drop, not the consumer's choice
            raise
        finally:
            if not (self._finished and self._settle_on_close):
                self._settle()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._settle()


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
        if isinstance(info, httpx2.Response):
            return info  # malformed: answered here, nothing sent
        attempt: _Attempt | None = None
        if info is not None:
            while isinstance(step := pipeline.admit(request, info, app), float):
                time.sleep(step)
            if isinstance(step, httpx2.Response):
                return step
            attempt = step
        try:
            response = self._inner.handle_request(request)
        except BaseException as exc:
            if attempt is not None:
                pipeline.failed(request, attempt, exc)
            raise
        if attempt is not None:
            attempt.answered(request, response)
        streamed = pipeline.metered_stream_response(request, response, attempt)
        if streamed is not None:
            return streamed
        try:
            body = response.read()
        except BaseException as exc:
            if attempt is not None:  # the answer began: whatever broke, the request was sent
                pipeline.failed(request, attempt, exc, answer_began=True)
            raise
        finally:
            response.close()
        return pipeline.annotate(request, response, body, attempt)

    def close(self) -> None:
        self._inner.close()


_OFFLOAD_BYTES = 256 * 1024

PARSED_BODY_EXTENSION = "baicai.parsed_body"
"""Request extension: the JSON body already parsed by whoever built the request (the sidecar's guard)."""


_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


def _stalls_event_loop(request: httpx2.Request) -> bool:
    """Describing this body would stall an event loop: a large body (chat bodies are a few KB; 18 MB takes
    seconds), or the first request for a model whose tokenizer is not loaded yet (o200k, for gpt-4o-style names:
    ~1 s to build, about half of it in tiktoken's Rust constructor, which holds the GIL — a thread halves the stall
    other apps see)."""
    try:
        content = request.content
    except httpx2.RequestNotRead:
        return False
    if len(content) > _OFFLOAD_BYTES:
        return True
    if all(is_loaded(name) for name in BUNDLED_ENCODINGS):
        return False
    parsed = request.extensions.get(PARSED_BODY_EXTENSION)
    if isinstance(parsed, dict):
        model = parsed.get("model")
    else:
        match = _MODEL_FIELD.search(content)
        model = match.group(1).decode("utf-8", "replace") if match else None
    return isinstance(model, str) and not is_loaded(encoding_name_for(model))


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
        pipeline = self._pipeline
        if _stalls_event_loop(request):
            # In a server (the sidecar) every other request would wait: a worker thread does it instead.
            import anyio  # here, not at the top: anyio and its backend are 1.4 MB of a sidecar that never needs them

            app, info = await anyio.to_thread.run_sync(pipeline.prepare, request)
        else:
            app, info = pipeline.prepare(request)
        if isinstance(info, httpx2.Response):
            return info  # malformed: answered here, nothing sent
        attempt: _Attempt | None = None
        if info is not None:
            while isinstance(step := pipeline.admit(request, info, app), float):
                import anyio

                await anyio.sleep(step)
            if isinstance(step, httpx2.Response):
                return step
            attempt = step
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            if attempt is not None:
                pipeline.failed(request, attempt, exc)
            raise
        if attempt is not None:
            attempt.answered(request, response)
        streamed = pipeline.metered_stream_response(request, response, attempt)
        if streamed is not None:
            return streamed
        try:
            body = await response.aread()
        except BaseException as exc:
            if attempt is not None:  # the answer began: whatever broke, the request was sent
                pipeline.failed(request, attempt, exc, answer_began=True)
            raise
        finally:
            await response.aclose()
        return pipeline.annotate(request, response, body, attempt)

    async def aclose(self) -> None:
        if self._pipeline._meter is not None:  # (never opens a ledger only to close it)
            self._pipeline._meter.flush_settles()  # deferred settles: the sidecar's shutdown comes here
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
