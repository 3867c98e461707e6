"""The wire protocol, in one place: what the relay (or any OpenAI-compatible server) sends, and what we send back.

Everything that reads an answer — the metered transport, ``Baicai``'s stream scanner, ``_errors``, the sidecar and
``doctor`` — asks this module, so they agree on what an answer means and say it in the same words:

- the header names (:data:`APP_HEADER`, :data:`LOCAL_QUOTA_HEADER`, :data:`SHOULD_RETRY_HEADER` …);
- :func:`is_event_stream`;
- :class:`SSEDecoder`, the one incremental Server-Sent-Events parser (bytes in, complete :class:`SSEEvent` out);
- :func:`parse_relay_error` → :class:`RelayAnswer`: which answers are the relay's own errors (its documented codes,
  and numeric codes no HTTP status could be), whatever the envelope. A code that only repeats an HTTP status
  (LiteLLM's ``{"error": {"code": "429"}}``) is a generic server's error and stays ``openai``'s;
- :func:`classify` → the relay answer and the status the caller should see (the one 200 → documented-status rewrite);
- :func:`parse_retry_after` (``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date);
- :func:`relay_error_message` and :func:`error_body`: the one bilingual text for a relay answer and the one
  OpenAI-shaped error body (the SDK's local refusals, the sidecar's answers);
- :func:`redact`: no key leaves in full in anything built from an answer.

No ``openai`` import here: the sidecar and the CLI read answers without paying for it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from .._codes import RelayCode, relay_code
from .._text import Text

__all__ = [
    "APP_HEADER",
    "LOCAL_QUOTA_HEADER",
    "LOCAL_QUOTA_TYPE",
    "ORIGINAL_STATUS_HEADER",
    "SHOULD_RETRY_HEADER",
    "RETRY_AFTER_HEADER",
    "RETRY_AFTER_MS_HEADER",
    "is_event_stream",
    "SSEEvent",
    "SSEDecoder",
    "iter_sse",
    "RelayAnswer",
    "RelayStreamError",
    "parse_relay_error",
    "might_be_error",
    "Classified",
    "classify",
    "documented_status",
    "parse_retry_after",
    "relay_error_message",
    "error_body",
    "redact",
    "redact_value",
]

# ------------------------------------------------------------------------------------------------- header names

APP_HEADER = "x-baicai-app"
"""Request header naming the app a request is for (set by the sidecar); stripped by the transport before sending."""
LOCAL_QUOTA_HEADER = "x-baicai-local-quota"
"""``1`` on the transport's synthetic refusal (nothing was sent to the relay)."""
LOCAL_QUOTA_TYPE = "baicai_local_quota"
"""``error.type`` (and ``error.code``) of that refusal's body."""
ORIGINAL_STATUS_HEADER = "x-baicai-original-status"
"""The status a relay error came with before it got its code's documented status (usually 200)."""
SHOULD_RETRY_HEADER = "x-should-retry"
"""openai's own header: ``true``/``false`` overrides its retry rules (the transport writes our policy there)."""
RETRY_AFTER_MS_HEADER = "retry-after-ms"
RETRY_AFTER_HEADER = "retry-after"


def is_event_stream(headers: Mapping[str, str]) -> bool:
    """True for a ``text/event-stream`` answer (``headers`` case-insensitive, as httpx2's are)."""
    return headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


# ---------------------------------------------------------------------------------------------------- redaction

# No \b before "baicai-": Python counts CJK characters as word characters, and relays write "无效的令牌baicai-…".
# "sk-" needs an ASCII boundary, so that ordinary words ("disk-space") are left alone.
_SECRET_RE = re.compile(r"(sk-baicai-|baicai-|(?<![A-Za-z0-9])sk-proj-|(?<![A-Za-z0-9])sk-)([A-Za-z0-9_\-]{4,})")


def _mask(prefix: str, rest: str) -> str:
    # the same rule as _keys.mask_key: a short secret shows less of its tail
    tail = rest[-4:] if len(rest) >= 16 else rest[-2:] if len(rest) >= 8 else ""
    return f"{prefix}…{tail}"


def _is_placeholder(rest: str) -> bool:
    # "baicai-xxxxxxxx" in a hint is an example, not a secret
    return set(rest.lower()) <= {"x", "*"}


def redact(text: str) -> str:
    """``text`` with every key-looking token shortened the way ``mask_key`` does it (``baicai-…abcd``).

    Relays, like OpenAI, may quote the key they rejected ("Incorrect API key provided: …"); we do not.
    """
    return _SECRET_RE.sub(lambda m: m.group(0) if _is_placeholder(m.group(2)) else _mask(m.group(1), m.group(2)), text)


def redact_value(value: object) -> object:
    """A copy of a decoded JSON body with every string redacted (bodies are kept on exceptions)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------- SSE


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One complete Server-Sent Event.

    ``start`` is where the event's first line begins in the chunk that completed it (0 when it began in an earlier
    chunk): a reader that must stop at this event can still pass on the bytes before it.
    """

    data: bytes
    event: str | None = None
    start: int = 0

    @property
    def is_done(self) -> bool:
        """OpenAI's end-of-stream marker, ``data: [DONE]``."""
        return self.data.strip() == b"[DONE]"

    def json(self) -> Any:
        """The decoded ``data``, or None when it is not JSON."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class SSEDecoder:
    """The incremental SSE parser: :meth:`feed` bytes as they arrive (cut anywhere), get the events they complete.

    Follows the WHATWG rules (``data:`` lines joined by ``\\n``, a blank line dispatches, ``:`` lines are comments,
    one space after the colon dropped), splitting on ``\\n`` with an optional ``\\r``. :meth:`flush` at the end of
    the stream hands over an event whose closing blank line never came (servers that end on ``data: [DONE]\\n``).
    Only line boundaries are searched per chunk; decoding JSON is left to the caller.
    """

    __slots__ = ("_pending", "_data", "_event", "_start")

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] | None = None
        self._event: str | None = None
        self._start: int | None = None

    def plain_data(self, chunk: bytes) -> list[bytes] | None:
        """The data of each event in ``chunk`` when it is a whole number of complete one-line ``data:`` events
        (``data: …\n\n`` each, no ``\r``) and no event is open — a stream's usual chunk, one event or, when the
        relay's writes arrive together, several — else None: then :meth:`feed` it. The decoder's state stays as it
        is. A reader that only wants the data skips building the events (a few µs per streamed event)."""
        if self._start is not None or self._pending or chunk[:6] != b"data: " or chunk[-2:] != b"\n\n":
            return None
        if chunk.find(b"\n") == len(chunk) - 2:
            return None if chunk[-3:-2] == b"\r" else [chunk[6:-2]]
        parts = chunk[:-2].split(b"\n\n")
        for part in parts:
            if part[:6] != b"data: " or b"\n" in part or part[-1:] == b"\r":
                return None
        return [part[6:] for part in parts]

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._start is not None:
            self._start = 0  # the open event began in an earlier chunk: in this one it starts at 0
        elif (not self._pending and chunk[:6] == b"data: " and chunk[-2:] == b"\n\n"
                and chunk.find(b"\n") == len(chunk) - 2):
            return [SSEEvent(chunk[6:-2])]  # the common chunk: exactly one one-line event (about 3x faster)
        if self._pending:
            buffer, offset = self._pending + chunk, len(self._pending)
        else:
            buffer, offset = chunk, 0
        events: list[SSEEvent] = []
        position = 0
        while (end := buffer.find(b"\n", position)) >= 0:
            self._line(buffer[position:end], position - offset if position > offset else 0, events)
            position = end + 1
        self._pending = buffer[position:]
        return events

    def flush(self) -> list[SSEEvent]:
        """The event left open when the stream ended (its last line too, even without a newline)."""
        events: list[SSEEvent] = []
        if self._pending:
            pending, self._pending = self._pending, b""
            self._line(pending, 0, events)
        self._line(b"", 0, events)
        return events

    def _line(self, line: bytes, start: int, events: list[SSEEvent]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:  # dispatch
            if self._data is not None:
                events.append(SSEEvent(b"\n".join(self._data), self._event, self._start or 0))
            self._data, self._event, self._start = None, None, None
            return
        if self._start is None:
            self._start = start
        if line[:1] == b":":
            return  # a comment (": PING")
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._data is None:
                self._data = [value]
            else:
                self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # "id" and "retry" mean nothing to an OpenAI stream


def iter_sse(data: bytes | Iterable[bytes]) -> Iterator[SSEEvent]:
    """Every event in a whole SSE body (or in an iterable of its chunks), the unterminated last one included."""
    decoder = SSEDecoder()
    for chunk in (data,) if isinstance(data, (bytes, bytearray)) else data:
        yield from decoder.feed(bytes(chunk))
    yield from decoder.flush()


# ------------------------------------------------------------------------------------------- relay error answers

Tier = Literal["free", "paid"]


@dataclass(frozen=True)
class RelayAnswer:
    """A relay error found in an answer: its numeric code, the relay's own message and the documented meaning."""

    code: int
    message: str
    known: RelayCode | None
    raw: object
    """The decoded body (or the SSE event) the code was found in, redacted."""

    @property
    def retryable(self) -> bool:
        """What the code's documentation says (an undocumented code: only its HTTP status can tell)."""
        return self.known.retryable if self.known is not None else False

    @property
    def tier(self) -> Tier | None:
        return self.known.reveals_tier if self.known is not None else None


class RelayStreamError(Exception):
    """Raised inside a byte stream, in place of the event that held a relay error (``Baicai`` turns it into the
    typed exception; only requests that ask for it get it: see ``_metered.RAISE_STREAM_ERRORS``)."""

    def __init__(self, answer: RelayAnswer) -> None:
        super().__init__(relay_error_message(answer))
        self.answer = answer


# (code key, message keys) pairs, in the order they are tried on one mapping.
_ENVELOPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errcode", ("errmsg", "message", "msg")),
    ("error_code", ("error_msg", "message", "msg")),
    ("code", ("message", "msg", "errmsg")),
)
ERROR_KEYS = frozenset({"error", *(code_key for code_key, _ in _ENVELOPES)})
"""Keys without which a decoded object is no relay error envelope: the common chunk skips the full check."""
_MARKERS = (b'"error', b'"errcode"', b'"code"')  # '"error' also covers "error_code"
_SUCCESS_CODES = frozenset({0, 200})


def might_be_error(data: bytes) -> bool:
    """A cheap test before decoding: False means ``data`` holds no error envelope (the common stream chunk)."""
    # Three `in` tests spelled out: a generator over _MARKERS cost 3-4 µs more per streamed chunk.
    return b'"error' in data or b'"errcode"' in data or b'"code"' in data


def _as_code(value: object) -> int | None:
    """The relay code in ``value`` (int, or a numeric string like ``"40001"`` / ``"-1"``); None otherwise.

    OpenAI's own codes are words (``"context_length_exceeded"``) and must stay None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    return None


def _is_relays(code: int) -> bool:
    """The relay's documented codes, and codes no HTTP status could be (``49999``): the relay's own vocabulary.

    A three-digit code that reads like an HTTP status (LiteLLM's ``"429"``, ``"500"``) is a generic server echoing
    its status: its error belongs to ``openai``'s classes, as plain ``openai.OpenAI`` would raise them.
    """
    return relay_code(code) is not None or not 100 <= code <= 599


def _from_mapping(body: Mapping[str, Any], raw: object) -> RelayAnswer | None:
    for code_key, message_keys in _ENVELOPES:
        if code_key not in body:
            continue
        code = _as_code(body[code_key])
        if code is None or code in _SUCCESS_CODES or not _is_relays(code):
            return None
        message = next((body[k] for k in message_keys if isinstance(body.get(k), str)), "")
        return RelayAnswer(code, redact(message), relay_code(code), redact_value(raw))
    return None


def _from_object(body: object) -> RelayAnswer | None:
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        # OpenAI's envelope: {"error": {"message", "type", "code": 40001 | "40001" | "invalid_api_key"}}
        return _from_mapping(error, body)
    found = _from_mapping(body, body)
    if found is not None and not found.message and isinstance(error, str):
        return RelayAnswer(found.code, redact(error), found.known, found.raw)  # {"code": 40001, "error": "…"}
    return found


def _from_bytes(data: bytes) -> RelayAnswer | None:
    stripped = data.strip()
    if not stripped:
        return None
    try:
        return _from_object(json.loads(stripped))
    except ValueError:
        pass
    # An SSE body (an error sent inside a stream, or a stream read whole): look at each event.
    for event in iter_sse(stripped):
        if might_be_error(event.data):
            found = _from_object(event.json())
            if found is not None:
                return found
    return None


def parse_relay_error(body: bytes | str | object) -> RelayAnswer | None:
    """The relay error in ``body``, or None for a success body, OpenAI's own errors and generic servers' errors.

    Accepts raw bytes, text (JSON, or SSE ``data:`` lines) or an already decoded JSON value, in any of the
    envelopes relays use: ``{"error": {"code": 40001 | "40001", "message"}}``, ``{"code", "msg"}``,
    ``{"errcode", "errmsg"}``. Code 0 (and 200) mean success; an HTTP-status-like code the relay does not document
    (``"429"``) is not the relay's.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(body))
    if isinstance(body, str):
        return _from_bytes(body.encode("utf-8"))
    return _from_object(body)


def documented_status(answer: RelayAnswer | None, status: int) -> int:
    """The status an answer should carry: a relay error sent with a success status (the relay does that) gets its
    code's documented status — 400 for an undocumented code — so every OpenAI client raises instead of building an
    empty object. Error statuses are kept as sent."""
    if answer is None or status >= 400:
        return status
    return answer.known.http_status if answer.known is not None else 400


@dataclass(frozen=True)
class Classified:
    answer: RelayAnswer | None
    """The relay error in the answer; None for a success, OpenAI's own error or a generic server's."""
    status: int
    """The status to hand on (:func:`documented_status`)."""
    original_status: int

    @property
    def rewritten(self) -> bool:
        return self.status != self.original_status


def classify(status: int, body: bytes | str | object) -> Classified:
    """What a complete answer means: the relay error in ``body`` (if any) and the status the caller should see."""
    answer = parse_relay_error(body)
    return Classified(answer, documented_status(answer, status), status)


# --------------------------------------------------------------------------------------------------- Retry-After


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); None if absent
    or unreadable. ``headers`` should be case-insensitive (httpx2.Headers); ``now`` is for tests of the date form."""
    if headers is None:
        return None
    try:
        value_ms = headers.get(RETRY_AFTER_MS_HEADER)
        if value_ms is not None:
            seconds = float(value_ms) / 1000.0
        else:
            value = headers.get(RETRY_AFTER_HEADER)
            if value is None:
                return None
            try:
                seconds = float(value)
            except ValueError:
                moment = parsedate_to_datetime(value).timestamp()
                seconds = moment - (time.time() if now is None else now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)


# ------------------------------------------------------------------------------------------ what we say about it


def _format_time(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def relay_error_message(answer: RelayAnswer, retry_at: float | None = None) -> str:
    """The one-liner for a relay answer, saying what happened and what to do — in Chinese, English, or both (Chinese
    first; ``_text.current_lang``). The SDK's exceptions and the sidecar's answers to apps carry exactly this text."""
    known = answer.known
    relay_said = answer.message[:200]
    if known is not None and known.message_zh in relay_said:
        relay_said = ""  # the relay only repeated its documented message
    said_zh = f"（中转原文：{relay_said}）" if relay_said else ""
    said_en = f" (the relay said: {relay_said})" if relay_said else ""
    if known is None:
        zh = f"白菜GPT 错误 {answer.code}{said_zh}：中转返回了文档未列出的错误码，请查看原始回复或联系客服"
        en = f"BaicaiGPT relay error {answer.code}{said_en}: an undocumented code; see the raw body or contact support"
        return str(Text(zh, en))
    when_zh = f"，约 {_format_time(retry_at)} 可再试" if retry_at is not None else ""
    when_en = f"; next slot around {_format_time(retry_at)}" if retry_at is not None else ""
    zh = f"白菜GPT 错误 {answer.code}：{known.message_zh}{said_zh}。{known.hint_zh}{when_zh}"
    en = f"BaicaiGPT relay error {answer.code}: {known.message_en}{said_en}. {known.hint_en}{when_en}"
    return str(Text(zh, en))


def error_body(message_zh: str, message_en: str, *, type: str, code: str | int | None = None,
               **extra: Any) -> dict[str, Any]:
    """OpenAI's error shape, what every OpenAI client already knows how to show; the message in the user's language
    (``_text``: both by default, Chinese first)."""
    error: dict[str, Any] = {"message": str(Text(message_zh, message_en)), "type": type, "param": None, "code": code}
    error.update(extra)
    return {"error": error}


def relay_error_body(answer: RelayAnswer, retry_at: float | None = None) -> dict[str, Any]:
    """A relay answer in OpenAI's error shape (what the sidecar hands to apps), with the same words as the SDK."""
    known = answer.known
    error: dict[str, Any] = {
        "message": relay_error_message(answer, retry_at),
        "type": f"baicai_{known.group}" if known is not None else "baicai_relay_error",
        "param": None,
        "code": str(answer.code),
        "relay_code": answer.code,
    }
    if known is not None:
        error["hint"] = str(Text(known.hint_zh, known.hint_en))
    return {"error": error}
