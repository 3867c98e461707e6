"""Every documented code × every envelope × {HTTP 200, matching status} × {plain, streamed}, through ``Baicai``.

Unit tests over httpx2 ``MockTransport`` (no metering transport): the client's own classification must hold.
Streamed covers three shapes: a JSON answer to ``stream=True``, an SSE stream whose first event is the error,
and an error event after some content.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from baicai_sdk import AsyncBaicai, Baicai, BaicaiError, _errors
from baicai_sdk._codes import RELAY_CODES
from baicai_sdk.integration import ledger_path

KEY = "baicai-unit-0123456789abcdefWXYZ"
BASE = "http://relay.test/v1"
MESSAGES = [{"role": "user", "content": "你好"}]

ENVELOPES = ("openai", "openai-str", "code-msg", "errcode")
STATUS_CLASS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
}
GROUP = {  # written out, not derived from the implementation
    "busy": "RelayBusyError",
    "authentication": "RelayAuthenticationError",
    "frozen": "RelayPermissionError",
    "bad_request": "RelayBadRequestError",
    "model": "RelayNotFoundError",
    "endpoint": "RelayNotFoundError",
    "tier": "TierNotAllowed",
    "rate_limit": "RequestLimitReached",
    "token_limit": "TokenLimitReached",
}


@pytest.fixture(scope="module")
def _module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One BAICAI_HOME for this module's ~650 unit tests, checked empty at the end.

    A rate-limit error looks its retry time up in the ledger, and a fresh home makes a fresh ledger (schema
    migration and fsyncs, ~30 ms on a busy disk) for each test. Nothing here is metered, so no test writes a row:
    the check below keeps it so, and with it each test's view of an empty ledger.
    """
    home = tmp_path_factory.mktemp("client-errors-home")
    yield home
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BAICAI_HOME", str(home))
        ledger = ledger_path()
    if ledger.exists():  # the rate-limit tests look there
        with sqlite3.connect(ledger) as db:
            assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0


@pytest.fixture(autouse=True)
def _shared_home(_module_home: Path, baicai_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_HOME", str(_module_home))


def envelope(style: str, code: int, message: str) -> dict[str, Any]:
    if style == "openai":
        return {"error": {"message": message, "type": "baicai_error", "param": None, "code": code}}
    if style == "openai-str":
        return {"error": {"message": message, "type": "baicai_error", "param": None, "code": str(code)}}
    if style == "code-msg":
        return {"code": code, "msg": message, "data": None}
    return {"errcode": code, "errmsg": message}


def chunk(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }


def sse(*events: object) -> bytes:
    return b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events)


def make_client(handler: Callable[[httpx2.Request], httpx2.Response], **options: Any) -> Baicai:
    options.setdefault("max_retries", 0)
    return Baicai(api_key=KEY, base_url=BASE, http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
                  **options)


def check(error: BaseException, code: int, message: str, *, status: int) -> None:
    known = RELAY_CODES[code]
    cls = _errors.error_class_for(code)
    assert type(error) is cls
    assert isinstance(error, getattr(_errors, GROUP[known.group]))
    assert isinstance(error, STATUS_CLASS[known.http_status])
    assert isinstance(error, BaicaiError) and isinstance(error, openai.APIStatusError)
    assert error.relay_code == code
    assert error.code == str(code)
    assert error.relay_message == message
    assert error.hint == str(known.hint)
    assert error.retryable is known.retryable
    assert error.tier == known.reveals_tier
    assert error.family == known.family
    assert error.retry_at is None  # no ledger, no Retry-After
    assert error.status_code == status
    text = str(error)
    assert known.message_zh in text and known.message_en in text and known.hint_en in text
    assert text.index(known.message_zh) < text.index(known.message_en)
    assert KEY not in text and KEY not in repr(error)


CASES = [(code, style, status) for code in sorted(RELAY_CODES) for style in ENVELOPES for status in ("200", "http")]


@pytest.mark.parametrize(("code", "style", "status_choice"), CASES)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream-json"])
def test_json_answers(code: int, style: str, status_choice: str, streamed: bool) -> None:
    message = f"中转说 {code}"
    status = 200 if status_choice == "200" else RELAY_CODES[code].http_status
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(status, json=envelope(style, code, message))

    client = make_client(handler)
    with pytest.raises(BaicaiError) as caught:
        result = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=streamed)
        list(result)  # type: ignore[call-overload]
    check(caught.value, code, message, status=RELAY_CODES[code].http_status)
    if status == 200:
        assert caught.value.response.headers["x-baicai-original-status"] == "200"
    assert len(calls) == 1


@pytest.mark.parametrize(("code", "style"), [(c, s) for c in sorted(RELAY_CODES) for s in ENVELOPES])
@pytest.mark.parametrize("position", ["first", "after-content"])
def test_error_event_inside_an_sse_stream(code: int, style: str, position: str) -> None:
    message = f"流中错误 {code}"
    before = [chunk("你"), chunk("好")] if position == "after-content" else []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = sse(*before, envelope(style, code, message)) + b"data: [DONE]\n\n"
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = make_client(handler)
    received: list[str] = []
    with pytest.raises(BaicaiError) as caught:
        for part in client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True):
            received.append(part.choices[0].delta.content or "")
    check(caught.value, code, message, status=200)
    assert received == (["你", "好"] if before else [])


def test_error_event_split_across_chunks() -> None:
    payload = sse(chunk("a"), {"errcode": 45011, "errmsg": "太频繁"})

    def handler(request: httpx2.Request) -> httpx2.Response:
        pieces = [payload[i : i + 7] for i in range(0, len(payload), 7)]
        return httpx2.Response(200, content=iter(pieces), headers={"content-type": "text/event-stream"})

    client = make_client(handler)
    received = []
    with pytest.raises(_errors.TooFrequent):
        for part in client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True):
            received.append(part.choices[0].delta.content)
    assert received == ["a"]


def test_plain_text_body_with_error_status() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.dumps({"errcode": 40243, "errmsg": "冻结"}, ensure_ascii=False).encode()
        return httpx2.Response(403, content=body, headers={"content-type": "text/plain; charset=utf-8"})

    with pytest.raises(_errors.KeyFrozen) as caught:
        make_client(handler).models.list()
    assert caught.value.relay_message == "冻结"


def test_plain_text_json_body_with_status_200() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text='{"code": 48001, "msg": "model"}', headers={"content-type": "text/html"})

    with pytest.raises(_errors.ModelNotSupported):
        make_client(handler).chat.completions.create(model="gpt-9", messages=MESSAGES)


def test_unknown_code_is_a_generic_relay_error_with_the_raw_body() -> None:
    body = {"code": 49999, "msg": "新的错误", "trace": "abc"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    with pytest.raises(_errors.UnknownRelayError) as caught:
        make_client(handler).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    error = caught.value
    assert error.relay_code == 49999 and error.raw == body and error.body == body
    assert error.status_code == 400 and error.relay_message == "新的错误" and error.retryable is False
    assert "49999" in str(error)


def test_openai_errors_stay_openai() -> None:
    body = {"error": {"message": "maximum context length", "type": "invalid_request_error",
                      "code": "context_length_exceeded", "param": "messages"}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json=body)

    with pytest.raises(openai.BadRequestError) as caught:
        make_client(handler).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert not isinstance(caught.value, BaicaiError)
    assert caught.value.code == "context_length_exceeded"


def test_success_passes_untouched() -> None:
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "好"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        return httpx2.Response(200, json=completion)

    result = make_client(handler).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert result.choices[0].message.content == "好" and result.usage and result.usage.total_tokens == 10


# -- retries ---------------------------------------------------------------------------------------------------


def _fast(client: Baicai) -> Baicai:
    client._calculate_retry_timeout = lambda *a, **k: 0.0  # type: ignore[method-assign]
    return client


@pytest.mark.parametrize("status_choice", ["200", "http"])
@pytest.mark.parametrize("code", [-1, 45011])
def test_busy_codes_are_retried(code: int, status_choice: str) -> None:
    answers = [envelope("errcode", code, "busy")] * 2 + [{"object": "list", "data": []}]
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        body = answers[len(calls) - 1]
        status = 200 if status_choice == "200" or "data" in body else RELAY_CODES[code].http_status
        return httpx2.Response(status, json=body)

    client = _fast(make_client(handler, max_retries=3))
    assert list(client.models.list()) == []
    assert len(calls) == 3


@pytest.mark.parametrize("code", [c for c in sorted(RELAY_CODES) if c not in (-1, 45011)])
def test_other_codes_are_never_retried(code: int) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(RELAY_CODES[code].http_status, json=envelope("openai", code, "no"))

    client = _fast(make_client(handler, max_retries=3))
    with pytest.raises(BaicaiError):
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert len(calls) == 1


def test_busy_retries_give_up_after_max_retries() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(200, json={"errcode": -1, "errmsg": "busy"})

    with pytest.raises(_errors.SystemBusy):
        _fast(make_client(handler, max_retries=2)).models.list()
    assert len(calls) == 3


def test_retry_delay_follows_the_policy_and_retry_after() -> None:
    from baicai_sdk import RetryPolicy

    client = make_client(lambda r: httpx2.Response(200), retry_policy=RetryPolicy(base_delay=1.0, random=lambda: 0.0))
    options = openai._models.FinalRequestOptions(method="get", url="/models", max_retries=3)
    assert client._calculate_retry_timeout(3, options, None) == 1.0
    assert client._calculate_retry_timeout(1, options, None) == 4.0
    assert client._calculate_retry_timeout(2, options, httpx2.Headers({"retry-after-ms": "250"})) == 0.25
    assert client.max_retries == 0
    assert Baicai(api_key=KEY, base_url=BASE).max_retries == 3  # the policy's default


def test_transport_header_wins_over_our_reading() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(500, json={"errcode": -1, "errmsg": "busy"}, headers={"x-should-retry": "false"})

    with pytest.raises(_errors.SystemBusy):
        _fast(make_client(handler, max_retries=3)).models.list()
    assert len(calls) == 1


def test_local_quota_refusal_is_not_retried() -> None:
    calls: list[int] = []
    body = {"error": {"message": "本地额度 / local quota", "type": "baicai_local_quota", "code": "baicai_local_quota",
                      "retry_at": 2_000_000_000, "family": "gpt-3.5", "tier": "free"}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(429, json=body, headers={"x-baicai-local-quota": "1"})

    with pytest.raises(_errors.QuotaExceeded) as caught:
        _fast(make_client(handler, max_retries=3)).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert len(calls) == 1 and caught.value.retry_at == 2_000_000_000


# -- async -----------------------------------------------------------------------------------------------------


def make_async(handler: Callable[[httpx2.Request], httpx2.Response], **options: Any) -> AsyncBaicai:
    options.setdefault("max_retries", 0)
    return AsyncBaicai(api_key=KEY, base_url=BASE,
                       http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)), **options)


@pytest.mark.parametrize(("code", "style", "status_choice"), CASES[::3])
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream-json"])
async def test_async_json_answers(code: int, style: str, status_choice: str, streamed: bool) -> None:
    status = 200 if status_choice == "200" else RELAY_CODES[code].http_status
    client = make_async(lambda r: httpx2.Response(status, json=envelope(style, code, "异步")))
    with pytest.raises(BaicaiError) as caught:
        result = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=streamed)
        async for _ in result:  # type: ignore[union-attr]
            pass
    check(caught.value, code, "异步", status=RELAY_CODES[code].http_status)


@pytest.mark.parametrize("code", sorted(RELAY_CODES))
async def test_async_error_inside_sse(code: int) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = sse(chunk("x"), envelope("openai", code, "流")) + b"data: [DONE]\n\n"
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    received = []
    with pytest.raises(BaicaiError) as caught:
        stream = await make_async(handler).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES,
                                                                    stream=True)
        async for part in stream:
            received.append(part.choices[0].delta.content)
    check(caught.value, code, "流", status=200)
    assert received == ["x"]


async def test_async_busy_is_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx2.Response(200, json={"code": 45011, "msg": "slow down"})
        return httpx2.Response(200, json={"object": "list", "data": []})

    client = make_async(handler, max_retries=2)
    client._calculate_retry_timeout = lambda *a, **k: 0.0  # type: ignore[method-assign]
    page = await client.models.list()
    assert page.data == [] and len(calls) == 2


# -- connection failures ---------------------------------------------------------------------------------------


def test_connection_refused_is_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx2.ConnectError("refused", request=request)
        return httpx2.Response(200, json={"object": "list", "data": []})

    client = _fast(make_client(handler, max_retries=3))
    client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)  # type: ignore[call-overload]
    assert len(calls) == 3


@pytest.mark.parametrize("failure", [httpx2.ReadTimeout, httpx2.RemoteProtocolError, httpx2.ReadError])
def test_failure_after_sending_a_post_is_not_retried(failure: type[httpx2.TransportError]) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        raise failure("gone", request=request)

    client = _fast(make_client(handler, max_retries=3))
    expected = openai.APITimeoutError if issubclass(failure, httpx2.TimeoutException) else openai.APIConnectionError
    with pytest.raises(expected):
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert len(calls) == 1  # the relay may have charged it: no blind second charge


def test_failure_of_a_get_is_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        raise httpx2.ReadTimeout("slow", request=request)

    with pytest.raises(openai.APITimeoutError):
        _fast(make_client(handler, max_retries=2)).models.list()
    assert len(calls) == 3


def test_binary_answers_are_not_buffered_or_scanned() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=iter([b'{"errcode": 40001}', b"\x00" * 10]),
                               headers={"content-type": "audio/mpeg"})

    client = make_client(handler)
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="hi") as response:
        assert not response.http_response.is_stream_consumed
        assert b"".join(response.iter_bytes()).startswith(b'{"errcode"')


def test_busy_with_a_long_retry_after_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(500, json={"errcode": -1, "errmsg": "busy"}, headers={"retry-after": "3600"})

    with pytest.raises(_errors.SystemBusy) as caught:
        _fast(make_client(handler, max_retries=3)).models.list()
    assert len(calls) == 1 and caught.value.retry_at is not None


def test_busy_retry_after_is_used_as_the_delay() -> None:
    client = make_client(lambda r: httpx2.Response(200), max_retries=3)
    options = openai._models.FinalRequestOptions(method="get", url="/models", max_retries=3)
    assert client._calculate_retry_timeout(3, options, httpx2.Headers({"retry-after": "2"})) == 2.0


def test_error_status_with_an_sse_body() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, content=sse({"code": 40022, "msg": "付费限速"}),
                               headers={"content-type": "text/event-stream"})

    with pytest.raises(_errors.PaidGpt35RequestLimit) as caught:
        list(make_client(handler).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True))
    assert caught.value.tier == "paid" and caught.value.relay_message == "付费限速"


async def test_async_error_in_a_live_stream_split_across_chunks() -> None:
    payload = sse(chunk("a"), chunk("b"), {"error": {"code": "-1", "message": "忙"}}) + b"data: [DONE]\n\n"

    async def pieces():  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 5):
            yield payload[i : i + 5]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=pieces(), headers={"content-type": "text/event-stream"})

    received = []
    with pytest.raises(_errors.SystemBusy):
        stream = await make_async(handler).chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES,
                                                                    stream=True)
        async for part in stream:
            received.append(part.choices[0].delta.content)
    assert received == ["a", "b"]


def test_openai_account_environment_is_not_sent_to_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-secret")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-secret")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-openai-0000000000000000\nX-Extra: 1")
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"object": "list", "data": []})

    client = make_client(handler)
    client.models.list()
    client.with_options(timeout=5).models.list()
    for request in seen:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert "openai-organization" not in request.headers and "openai-project" not in request.headers
        assert request.headers["x-extra"] == "1"  # other custom headers still apply
    explicit = Baicai(api_key=KEY, base_url=BASE, organization="org-mine", max_retries=0,
                      http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    explicit.models.list()
    assert seen[-1].headers["openai-organization"] == "org-mine"
