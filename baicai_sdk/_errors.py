"""What the relay said went wrong, as exceptions a caller can act on.

The relay's error envelope and HTTP status are undocumented (``shared/RELAY.md``), so every answer is
classified by its *code*, found by :func:`parse_relay_error` in any envelope, with any status (200 too),
in a JSON body, a plain-text body or an SSE stream. Each class also subclasses the ``openai`` exception
for the code's documented status, so ``except openai.RateLimitError`` written for OpenAI keeps working.
OpenAI's own errors passed through by the relay stay ``openai``'s classes.

The tree, grouped by what the caller does about it::

    openai.APIStatusError
    └── BaicaiError                          relay_code, relay_message, hint, retryable, tier, retry_at
        ├── RelayAuthenticationError         (+ openai.AuthenticationError)   fix the key
        │   ├── InvalidKey                    40001
        │   ├── MissingKey                    41001
        │   └── MalformedAuthorization        40038
        ├── RelayPermissionError             (+ openai.PermissionDeniedError)
        │   ├── KeyFrozen                     40243  contact support
        │   └── TierNotAllowed                       upgrade, or use what the free tier allows
        │       ├── ModelNotOnFreeTier        40050
        │       └── FreeTierStreamNotAllowed  48005
        ├── RelayBadRequestError             (+ openai.BadRequestError)       fix the request
        │   ├── EmptyBody                     40039
        │   └── ModelMissing                  48002
        ├── RelayNotFoundError               (+ openai.NotFoundError)         fix the model or the base URL
        │   ├── ModelNotSupported             48001
        │   └── EndpointNotSupported          48004
        ├── HourlyLimitError                 (+ openai.RateLimitError)        wait for the window (never blind retry)
        │   ├── RequestLimitReached                  requests per hour
        │   │   ├── FreeGpt35RequestLimit     40020
        │   │   ├── FreeGpt4RequestLimit      40021
        │   │   ├── PaidGpt35RequestLimit     40022
        │   │   ├── PaidGpt4RequestLimit      40023
        │   │   ├── PaidDalle2RequestLimit    40040
        │   │   └── PaidDalle3RequestLimit    40041
        │   ├── TokenLimitReached                    tokens per hour (free tier)
        │   │   ├── FreeGpt35TokenLimit       40031
        │   │   └── FreeGpt4TokenLimit        40032
        │   └── QuotaExceeded                        refused locally by the quota predictor, before sending
        ├── RelayBusyError                                                    retry with backoff
        │   ├── SystemBusy                    -1     (+ openai.InternalServerError)
        │   └── TooFrequent                   45011  (+ openai.RateLimitError)
        └── UnknownRelayError                        a code the README does not list; ``body`` is the raw answer

``MissingCredentials`` (an ``openai.OpenAIError``, raised before any request) is outside the tree, and so is
``IncompleteStream`` (an ``openai.APIConnectionError``): a stream that ended without ``[DONE]``, raised after every
chunk that did arrive was yielded.
No exception here ever holds a key in full: messages and bodies are passed through :func:`redact`.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import httpx2
import openai

from ._codes import RelayCode
from ._keys import MissingKeyError
from ._text import Text
from ._transport._wire import (
    LOCAL_QUOTA_TYPE,
    RelayAnswer,
    Tier,
    parse_relay_error,
    parse_retry_after,
    redact,
    relay_error_message,
)
from ._transport._wire import redact_value as _redact_value

__all__ = [
    "RelayAnswer",
    "parse_relay_error",
    "error_class_for",
    "error_for",
    "error_from_response",
    "is_local_quota_body",
    "redact",
    "MissingCredentials",
    "IncompleteStream",
    "BaicaiError",
    "RelayAuthenticationError",
    "InvalidKey",
    "MissingKey",
    "MalformedAuthorization",
    "RelayPermissionError",
    "KeyFrozen",
    "TierNotAllowed",
    "ModelNotOnFreeTier",
    "FreeTierStreamNotAllowed",
    "RelayBadRequestError",
    "EmptyBody",
    "ModelMissing",
    "RelayNotFoundError",
    "ModelNotSupported",
    "EndpointNotSupported",
    "HourlyLimitError",
    "RequestLimitReached",
    "FreeGpt35RequestLimit",
    "FreeGpt4RequestLimit",
    "PaidGpt35RequestLimit",
    "PaidGpt4RequestLimit",
    "PaidDalle2RequestLimit",
    "PaidDalle3RequestLimit",
    "TokenLimitReached",
    "FreeGpt35TokenLimit",
    "FreeGpt4TokenLimit",
    "QuotaExceeded",
    "RelayBusyError",
    "SystemBusy",
    "TooFrequent",
    "UnknownRelayError",
]



def is_local_quota_body(body: object) -> bool:
    """True for the transport's synthetic local refusal (``error.type == "baicai_local_quota"``)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return inner.get("type") == LOCAL_QUOTA_TYPE or inner.get("code") == LOCAL_QUOTA_TYPE
    return False


# ---------------------------------------------------------------------------------------------------------------
# The exceptions.


class MissingCredentials(MissingKeyError, openai.OpenAIError):
    """No key was found; raised by ``Baicai()`` before any request. The message names every place looked in.

    Also a ``_keys.MissingKeyError`` (what ``resolve_credentials`` raises) and an ``openai.OpenAIError`` (what
    ``openai.OpenAI()`` raises without a key), so either ``except`` keeps working.
    """


class IncompleteStream(openai.APIConnectionError):
    """A streamed answer ended without ``[DONE]`` (the relay cut it, or the connection dropped).

    Raised by the stream's iterator *after* every chunk that arrived was yielded, so the caller keeps the partial
    text and knows it is partial. The relay may have billed what it produced; retrying asks again in full. An
    ``openai.APIConnectionError``, so code written for ``openai`` that handles dropped connections handles this too.
    """

    def __init__(self, *, request: httpx2.Request, reason: str = "") -> None:
        why = f"（{reason}）" if reason else ""
        why_en = f" ({reason})" if reason else ""
        super().__init__(
            message=f"流式回答没有正常结束{why}：缺少 [DONE]，回答可能不完整，已收到的部分已交给你，请重试 / "
            f"the stream ended without [DONE]{why_en}: the answer may be cut short; what arrived was delivered; "
            "retry",
            request=request,
        )


class BaicaiError(openai.APIStatusError):
    """Root of every error the relay (or the local quota guard) reports with one of its own codes.

    Fields: ``relay_code`` (int; ``code`` keeps openai's string form), ``relay_message`` (the relay's own words),
    ``hint`` (bilingual: what to do), ``retryable``, ``tier`` (what the code reveals about the key), ``retry_at``
    (unix time when a window frees, where known), ``family``, ``known`` (the documented meaning, or None).
    """

    relay_code: int
    relay_message: str
    hint: str
    retryable: bool
    tier: Tier | None
    retry_at: float | None
    family: str | None
    known: RelayCode | None
    raw: object
    """The whole decoded answer (redacted); ``body`` follows openai and holds the inner ``error`` object."""

    def __init__(
        self,
        message: str | None = None,
        *,
        response: httpx2.Response,
        body: object | None,
        answer: RelayAnswer,
        retry_at: float | None = None,
    ) -> None:
        known = answer.known
        self.relay_code = answer.code
        self.relay_message = answer.message
        self.known = known
        self.hint = str(Text(known.hint_zh, known.hint_en) if known is not None else _UNKNOWN_HINT)
        self.retryable = _retried(answer.code, response.status_code)
        self.tier = answer.tier
        self.family = known.family if known is not None else None
        self.retry_at = retry_at
        self.raw = answer.raw
        inner = body.get("error", body) if isinstance(body, Mapping) else body
        super().__init__(redact(message or _describe(answer, retry_at)), response=response, body=_redact_value(inner))
        self.code = str(answer.code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(relay_code={self.relay_code}, status_code={self.status_code})"


_UNKNOWN_HINT = Text("中转返回了文档未列出的错误码，请查看原始回复或联系客服",
                     "the relay sent an undocumented code: see the raw body or contact support")


def _retried(code: int, status: int) -> bool:
    """Whether the retry policy sends such an answer again, so ``retryable`` says what actually happened."""
    from ._retry import DEFAULT_RETRY_POLICY

    return code != 0 and DEFAULT_RETRY_POLICY.should_retry(relay_code=code, status=status)


def _describe(answer: RelayAnswer, retry_at: float | None) -> str:
    return relay_error_message(answer, retry_at)


class RelayAuthenticationError(BaicaiError, openai.AuthenticationError):
    """The key is wrong, missing or badly sent: fix it (and use the relay's base URL with a relay key)."""


class InvalidKey(RelayAuthenticationError):
    """40001: the API key is wrong."""


class MissingKey(RelayAuthenticationError):
    """41001: no Authorization header was sent."""


class MalformedAuthorization(RelayAuthenticationError):
    """40038: the Authorization header is not ``Bearer baicai-…``."""


class RelayPermissionError(BaicaiError, openai.PermissionDeniedError):
    """The key may not do this: frozen, or the free tier does not allow it."""


class KeyFrozen(RelayPermissionError):
    """40243: the key is frozen; only support can unfreeze it."""


class TierNotAllowed(RelayPermissionError):
    """The free tier may not do this; the code reveals the key is free tier. Upgrade, or change the request."""


class ModelNotOnFreeTier(TierNotAllowed):
    """40050: the model is not available on the free tier."""


class FreeTierStreamNotAllowed(TierNotAllowed):
    """48005: free keys may not stream (after the beta); retry with ``stream=False``."""


class RelayBadRequestError(BaicaiError, openai.BadRequestError):
    """The request itself is wrong: fix it before sending again."""


class EmptyBody(RelayBadRequestError):
    """40039: the request body was empty."""


class ModelMissing(RelayBadRequestError):
    """48002: the request has no ``model`` (every endpoint but models needs one)."""


class RelayNotFoundError(BaicaiError, openai.NotFoundError):
    """The model or the endpoint does not exist on the relay: fix the model name or the base URL."""


class ModelNotSupported(RelayNotFoundError):
    """48001: the relay does not support this model (yet)."""


class EndpointNotSupported(RelayNotFoundError):
    """48004: the endpoint is not supported — most often ``/v1`` added twice to the base URL."""


class HourlyLimitError(BaicaiError, openai.RateLimitError):
    """An hourly window is full. Never retried blindly: wait until ``retry_at`` (when known), or upgrade."""


class RequestLimitReached(HourlyLimitError):
    """The hourly request limit of a model family is reached."""


class FreeGpt35RequestLimit(RequestLimitReached):
    """40020: free tier, gpt-3.5, requests per hour."""


class FreeGpt4RequestLimit(RequestLimitReached):
    """40021: free tier, gpt-4, requests per hour."""


class PaidGpt35RequestLimit(RequestLimitReached):
    """40022: paid tier, gpt-3.5, requests per hour."""


class PaidGpt4RequestLimit(RequestLimitReached):
    """40023: paid tier, gpt-4, requests per hour."""


class PaidDalle2RequestLimit(RequestLimitReached):
    """40040: paid tier, dall-e-2, requests per hour."""


class PaidDalle3RequestLimit(RequestLimitReached):
    """40041: paid tier, dall-e-3, requests per hour."""


class TokenLimitReached(HourlyLimitError):
    """The free tier's hourly token budget of a model family is spent."""


class FreeGpt35TokenLimit(TokenLimitReached):
    """40031: free tier, gpt-3.5, tokens per hour."""


class FreeGpt4TokenLimit(TokenLimitReached):
    """40032: free tier, gpt-4, tokens per hour."""


class QuotaExceeded(HourlyLimitError):
    """Refused locally, without touching the network: the ledger says this request would break an hourly limit.

    ``retry_at`` is when the window frees (None when unknown); ``decision`` is the quota predictor's full
    answer as the transport reported it (a dict: family, tier, reason).
    """

    decision: Mapping[str, Any]


class RelayBusyError(BaicaiError):
    """The relay is busy or calls came too fast; the same request may succeed in seconds (retried with backoff)."""


class SystemBusy(RelayBusyError, openai.InternalServerError):
    """-1: system busy, overloaded or an internal error."""


class TooFrequent(RelayBusyError, openai.RateLimitError):
    """45011: calls too frequent; pause, then retry."""


class UnknownRelayError(BaicaiError):
    """A relay code the README does not list; ``body`` is the raw answer, ``relay_message`` the relay's words."""


_CLASS_BY_CODE: dict[int, type[BaicaiError]] = {
    40001: InvalidKey,
    41001: MissingKey,
    40038: MalformedAuthorization,
    40039: EmptyBody,
    40243: KeyFrozen,
    45011: TooFrequent,
    48001: ModelNotSupported,
    48002: ModelMissing,
    48004: EndpointNotSupported,
    48005: FreeTierStreamNotAllowed,
    40020: FreeGpt35RequestLimit,
    40021: FreeGpt4RequestLimit,
    40022: PaidGpt35RequestLimit,
    40023: PaidGpt4RequestLimit,
    40031: FreeGpt35TokenLimit,
    40032: FreeGpt4TokenLimit,
    40040: PaidDalle2RequestLimit,
    40041: PaidDalle3RequestLimit,
    40050: ModelNotOnFreeTier,
    -1: SystemBusy,
}


def error_class_for(code: int) -> type[BaicaiError]:
    """The exception class for a relay code (``UnknownRelayError`` for codes the README does not list)."""
    return _CLASS_BY_CODE.get(code, UnknownRelayError)


error_for = error_class_for
"""The name docs/internals.md uses."""


def _retry_after_seconds(headers: httpx2.Headers) -> float | None:
    return parse_retry_after(headers)


def _local_quota_error(response: httpx2.Response, body: object) -> QuotaExceeded:
    inner = body.get("error", body) if isinstance(body, Mapping) else {}
    assert isinstance(inner, Mapping)
    raw_retry_at = inner.get("retry_at")
    retry_at = float(raw_retry_at) if isinstance(raw_retry_at, (int, float)) else None
    if retry_at is None:
        seconds = _retry_after_seconds(response.headers)
        retry_at = time.time() + seconds if seconds else None
    message = inner.get("message") if isinstance(inner.get("message"), str) else None
    answer = RelayAnswer(code=0, message=redact(message or ""), known=None, raw=_redact_value(body))
    error = QuotaExceeded(
        message or str(Text("本地额度保护拒绝了该请求，请等待窗口释放",
                            "refused locally: an hourly limit would be exceeded, wait for the window")),
        response=response,
        body=inner,
        answer=answer,
        retry_at=retry_at,
    )
    error.code = LOCAL_QUOTA_TYPE
    if retry_at is not None:
        error.hint = str(Text("等待一小时窗口释放后再试，或升级为付费会员", "wait for the hourly window, or top up to a paid key"))
    elif response.status_code == 400:  # the request alone is over the hourly token budget
        error.hint = str(Text("等待无济于事：缩短对话或减小 max_tokens",
                              "waiting will not help: shorten the conversation or lower max_tokens"))
    elif response.status_code == 404:  # a model the relay does not serve
        error.hint = str(Text("换用白菜GPT 支持的模型（client.models.list() 可列出）",
                              "use a model the relay serves (client.models.list() lists them)"))
    else:  # 403: the model (a chat model, or DALL·E) is not on this tier; the gate named what it allows
        alternatives = inner.get("alternatives")
        names = [str(n) for n in alternatives] if isinstance(alternatives, list) else []
        if names:
            error.hint = str(Text(f"等待无济于事：换用本等级可用的模型（{'、'.join(names)}），或充值升级为付费会员",
                                  f"waiting will not help: use a model this tier allows ({', '.join(names)}), or top "
                                  "up to a paid key"))
        else:
            error.hint = str(Text("等待无济于事：本等级没有可替代的模型，充值升级为付费会员后可用",
                                  "waiting will not help: this tier has no model to use instead; top up to a paid key"))
    family, tier = inner.get("family"), inner.get("tier")
    error.family = family if isinstance(family, str) else None
    error.tier = tier if tier in ("free", "paid") else None
    error.decision = dict(inner)
    return error


def error_from_response(response: httpx2.Response, body: object, *, answer: RelayAnswer | None = None) -> BaicaiError | None:
    """The typed exception for a relay (or local-quota) answer; None when ``body`` holds neither.

    ``body`` is the decoded JSON (or the text) of ``response``. ``retry_at`` for hourly limits comes from the
    answer's ``retry-after`` when the transport set one, else stays None (the window's end is not knowable here).
    """
    if is_local_quota_body(body):
        return _local_quota_error(response, body)
    if answer is None:
        answer = parse_relay_error(body)
    if answer is None:
        return None
    cls = error_class_for(answer.code)
    retry_at: float | None = None
    if issubclass(cls, (HourlyLimitError, RelayBusyError)):
        seconds = _retry_after_seconds(response.headers)
        if seconds is not None:
            retry_at = time.time() + seconds
    return cls(response=response, body=body, answer=answer, retry_at=retry_at)
