"""The exception tree, parse_relay_error in every envelope, redaction, and the retry policy (issue 3)."""

from __future__ import annotations

import inspect
import json

import httpx2
import openai
import pytest

from baicai_sdk import _errors
from baicai_sdk._codes import RELAY_CODES
from baicai_sdk._errors import (
    BaicaiError,
    HourlyLimitError,
    QuotaExceeded,
    RelayAnswer,
    UnknownRelayError,
    error_class_for,
    error_from_response,
    parse_relay_error,
    redact,
)
from baicai_sdk._retry import DEFAULT_RETRY_POLICY, RetryPolicy, parse_retry_after

KEY = "baicai-unit-0123456789abcdefWXYZ"


# -- parse_relay_error ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "API_KEY不正确", "type": "x", "code": 40001}},
        {"error": {"message": "API_KEY不正确", "type": "x", "code": "40001"}},
        {"code": 40001, "msg": "API_KEY不正确"},
        {"code": "40001", "message": "API_KEY不正确"},
        {"errcode": 40001, "errmsg": "API_KEY不正确"},
        {"errcode": "40001", "errmsg": "API_KEY不正确"},
        {"code": 40001, "error": "API_KEY不正确"},
    ],
)
def test_every_envelope_is_recognised(body: object) -> None:
    for form in (body, json.dumps(body), json.dumps(body).encode(), "  " + json.dumps(body, ensure_ascii=False) + "\n"):
        answer = parse_relay_error(form)
        assert answer is not None
        assert answer.code == 40001
        assert answer.message == "API_KEY不正确"
        assert answer.known is RELAY_CODES[40001]
        assert answer.retryable is False


@pytest.mark.parametrize("code", [-1, "-1"])
def test_minus_one_as_int_and_string(code: object) -> None:
    answer = parse_relay_error({"error": {"code": code, "message": "系统繁忙"}})
    assert answer is not None and answer.code == -1 and answer.retryable


@pytest.mark.parametrize(
    "body",
    [
        {"id": "chatcmpl-1", "object": "chat.completion", "choices": []},
        {"code": 0, "msg": "ok", "data": {}},
        {"errcode": 0, "errmsg": "ok"},
        {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}},
        {"error": {"message": "no code", "type": "server_error", "code": None}},
        {"data": [{"id": "gpt-3.5-turbo"}], "object": "list"},
        [],
        None,
        "",
        "Bad Gateway",
        b"<html>502</html>",
        "data: {\"choices\": []}\n\ndata: [DONE]\n\n",
    ],
)
def test_success_and_openai_errors_are_not_relay_errors(body: object) -> None:
    assert parse_relay_error(body) is None


def test_sse_text_is_scanned_line_by_line() -> None:
    text = 'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: {"errcode": -1, "errmsg": "busy"}\n\n'
    answer = parse_relay_error(text)
    assert answer is not None and answer.code == -1 and answer.message == "busy"


def test_unknown_codes_are_kept_raw() -> None:
    body = {"code": 49999, "msg": "新错误", "extra": 1}
    answer = parse_relay_error(body)
    assert answer is not None and answer.known is None and answer.raw == body
    assert answer.tier is None and answer.retryable is False


def test_tier_revealed_by_codes() -> None:
    for code, entry in RELAY_CODES.items():
        answer = parse_relay_error({"errcode": code, "errmsg": "x"})
        assert answer is not None and answer.tier == entry.reveals_tier
    assert parse_relay_error({"errcode": 40020}).tier == "free"  # type: ignore[union-attr]
    assert parse_relay_error({"errcode": 40041}).tier == "paid"  # type: ignore[union-attr]


# -- the tree -------------------------------------------------------------------------------------------------

# code -> (group class name, openai parent): written out here, not derived from the implementation
EXPECTED = {
    -1: ("RelayBusyError", openai.InternalServerError),
    40001: ("RelayAuthenticationError", openai.AuthenticationError),
    41001: ("RelayAuthenticationError", openai.AuthenticationError),
    40038: ("RelayAuthenticationError", openai.AuthenticationError),
    40039: ("RelayBadRequestError", openai.BadRequestError),
    40243: ("RelayPermissionError", openai.PermissionDeniedError),
    45011: ("RelayBusyError", openai.RateLimitError),
    48001: ("RelayNotFoundError", openai.NotFoundError),
    48002: ("RelayBadRequestError", openai.BadRequestError),
    48004: ("RelayNotFoundError", openai.NotFoundError),
    48005: ("TierNotAllowed", openai.PermissionDeniedError),
    40020: ("RequestLimitReached", openai.RateLimitError),
    40021: ("RequestLimitReached", openai.RateLimitError),
    40022: ("RequestLimitReached", openai.RateLimitError),
    40023: ("RequestLimitReached", openai.RateLimitError),
    40031: ("TokenLimitReached", openai.RateLimitError),
    40032: ("TokenLimitReached", openai.RateLimitError),
    40040: ("RequestLimitReached", openai.RateLimitError),
    40041: ("RequestLimitReached", openai.RateLimitError),
    40050: ("TierNotAllowed", openai.PermissionDeniedError),
}


def test_expected_table_covers_every_documented_code() -> None:
    assert set(EXPECTED) == set(RELAY_CODES)


@pytest.mark.parametrize("code", sorted(RELAY_CODES))
def test_one_class_per_code_with_both_parents(code: int) -> None:
    cls = error_class_for(code)
    group, openai_parent = EXPECTED[code]
    assert issubclass(cls, getattr(_errors, group))
    assert issubclass(cls, openai_parent)
    assert issubclass(cls, BaicaiError) and issubclass(cls, openai.APIStatusError)
    assert cls.__doc__ and str(code) in cls.__doc__
    others = [error_class_for(c) for c in RELAY_CODES if c != code]
    assert cls not in others  # a class per code


def test_hourly_limits_share_a_parent_with_the_local_refusal() -> None:
    for code in (40020, 40021, 40022, 40023, 40031, 40032, 40040, 40041):
        assert issubclass(error_class_for(code), HourlyLimitError)
    assert issubclass(QuotaExceeded, HourlyLimitError) and issubclass(QuotaExceeded, openai.RateLimitError)


def test_every_class_has_a_docstring_and_the_module_draws_the_tree() -> None:
    classes = [v for v in vars(_errors).values() if inspect.isclass(v) and v.__module__ == _errors.__name__]
    assert len(classes) >= 30
    for cls in classes:
        assert cls.__doc__, cls
        if issubclass(cls, (BaicaiError, _errors.MissingCredentials)):
            assert cls.__name__ in (_errors.__doc__ or ""), cls
    assert error_class_for(12345) is UnknownRelayError


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx2.Response:
    request = httpx2.Request("POST", "http://relay.test/v1/chat/completions")
    return httpx2.Response(status, json=body, headers=headers, request=request)


def test_error_fields_and_bilingual_message() -> None:
    body = {"errcode": 40031, "errmsg": "免费会员tokens超限"}
    error = error_from_response(_response(429, body, {"retry-after": "120"}), body)
    assert isinstance(error, _errors.FreeGpt35TokenLimit)
    assert error.relay_code == 40031 and error.code == "40031"
    assert error.relay_message == "免费会员tokens超限"
    assert error.hint == str(RELAY_CODES[40031].hint)
    assert error.retryable is False and error.tier == "free" and error.family == "gpt-3.5"
    assert error.retry_at is not None and 100 < error.retry_at - __import__("time").time() <= 120
    text = str(error)
    assert text.index("免费会员") < text.index(" / ")  # Chinese first
    assert "wait" in text and "等待" in text
    assert error.status_code == 429 and error.body == body
    assert "40031" in repr(error)


def test_local_quota_refusal_becomes_quota_exceeded() -> None:
    body = {
        "error": {
            "message": "本地额度已满 / local quota reached",
            "type": "baicai_local_quota",
            "code": "baicai_local_quota",
            "retry_at": 1_900_000_000.5,
            "family": "gpt-4",
            "tier": "free",
        }
    }
    error = error_from_response(_response(429, body, {"x-baicai-local-quota": "1"}), body)
    assert isinstance(error, QuotaExceeded) and isinstance(error, openai.RateLimitError)
    assert error.retry_at == 1_900_000_000.5 and error.family == "gpt-4" and error.tier == "free"
    assert error.retryable is False and error.decision["family"] == "gpt-4"
    assert "local quota reached" in str(error)


def test_keys_are_redacted_everywhere() -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": 40001}}
    error = error_from_response(_response(401, body), body)
    assert error is not None
    for text in (str(error), repr(error), error.relay_message, json.dumps(error.body, ensure_ascii=False),
                 json.dumps(error.raw, ensure_ascii=False)):
        assert KEY not in text
    assert "baicai-…WXYZ" in error.relay_message
    assert redact(f"Bearer sk-{'a' * 40}") == "Bearer sk-…aaaa"


def test_relay_answer_is_a_value() -> None:
    answer = RelayAnswer(45011, "慢点", RELAY_CODES[45011], {})
    assert answer.retryable and answer.tier is None


# -- retry policy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(RELAY_CODES))
def test_policy_per_code(code: int) -> None:
    expected = code in (-1, 45011)
    assert DEFAULT_RETRY_POLICY.should_retry(relay_code=code, status=RELAY_CODES[code].http_status) is expected
    assert DEFAULT_RETRY_POLICY.should_retry(relay_code=code, status=200) is expected


def test_policy_without_code() -> None:
    """Without a relay code the answer is any OpenAI-compatible server's: retried as plain openai retries it."""
    policy = RetryPolicy()
    assert policy.should_retry(connect_error=True)
    assert policy.should_retry(status=502) and policy.should_retry(status=500) and policy.should_retry(status=408)
    assert policy.should_retry(status=429) and policy.should_retry(status=409)
    assert not policy.should_retry(status=400) and not policy.should_retry(status=404)
    assert not policy.should_retry(status=401)
    # the relay's hourly limits come with their code, and those are never retried blindly
    assert not policy.should_retry(relay_code=40020, status=429)
    assert not policy.should_retry()
    assert policy.should_retry(relay_code=49999, status=503) and not policy.should_retry(relay_code=49999, status=400)


def test_delay_is_capped_exponential_with_jitter() -> None:
    no_jitter = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.25, random=lambda: 0.0)
    assert [no_jitter.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    full_jitter = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.25, random=lambda: 1.0)
    assert full_jitter.delay(1) == pytest.approx(0.75)
    delays = {RetryPolicy().delay(2) for _ in range(50)}
    assert len(delays) > 1 and all(1.5 <= d <= 2.0 for d in delays)
    assert RetryPolicy().delay(10_000) <= 20.0


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    assert policy.delay(0, retry_after=7.5) == 7.5
    assert policy.delay(5, retry_after=0.0) == 0.0
    assert policy.delay(0, retry_after=3600.0) == 60.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after(httpx2.Headers({"retry-after-ms": "1500"})) == 1.5
    assert parse_retry_after(httpx2.Headers({"Retry-After": "3"})) == 3.0
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(httpx2.Headers({"retry-after": date}), now=1445412480.0 - 10) == pytest.approx(10.0)
    assert parse_retry_after(httpx2.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx2.Headers({})) is None


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2)
    assert RetryPolicy() == DEFAULT_RETRY_POLICY and DEFAULT_RETRY_POLICY.max_retries == 3
