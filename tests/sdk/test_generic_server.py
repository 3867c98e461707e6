"""Errors from any OpenAI-compatible server (LiteLLM's proxy, OpenAI itself) keep the class plain ``openai`` gives
them through ``Baicai``, and are retried as plain ``openai`` retries them (issue 16, item 4)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from baicai_sdk import AsyncBaicai, Baicai, BaicaiError, RetryPolicy
from tests import plain_http
from tests.generic_server import GenericServer, generic_server  # noqa: F401  (fixture)

CHAT: dict[str, Any] = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}
KEY = "baicai-generic0123456789abcdef"
CLASSES = {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError,
           429: openai.RateLimitError, 500: openai.InternalServerError}
RETRIED = {429, 500}  # what openai retries among these (408/409 too)
POLICY = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002, jitter=0.0)  # openai's default count


def _raised(call: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("style", ["litellm", "openai"])
@pytest.mark.parametrize("status", sorted(CLASSES))
def test_baicai_raises_what_plain_openai_raises(generic_server: GenericServer, status: int, style: str) -> None:
    generic_server.status, generic_server.style = status, style
    plain = plain_http.openai_client(base_url=generic_server.base_url, api_key="sk-generic", max_retries=2)
    expected = _raised(lambda: plain.chat.completions.create(**CHAT))
    plain_hits, generic_server.hits = generic_server.hits, 0

    ours = Baicai(base_url=generic_server.base_url, api_key=KEY, retry_policy=POLICY, quota="off")
    error = _raised(lambda: ours.chat.completions.create(**CHAT))

    assert type(expected) is CLASSES[status] and type(error) is CLASSES[status]  # exactly, not a relay subclass
    assert not isinstance(error, BaicaiError)
    assert error.status_code == expected.status_code == status
    assert error.body == expected.body and error.code == expected.code and str(error) == str(expected)
    assert generic_server.hits == plain_hits == (3 if status in RETRIED else 1)


async def test_async_baicai_too(generic_server: GenericServer) -> None:
    generic_server.status = 429
    ours = AsyncBaicai(base_url=generic_server.base_url, api_key=KEY, retry_policy=POLICY, quota="off")
    with pytest.raises(openai.RateLimitError) as caught:
        await ours.chat.completions.create(**CHAT)
    assert type(caught.value) is openai.RateLimitError and generic_server.hits == 3


def test_an_undocumented_relay_code_says_whether_it_was_retried(generic_server: GenericServer) -> None:
    """A five-digit code no HTTP status could be is the relay's (UnknownRelayError); ``retryable`` matches what
    the client did with it: a 5xx is retried, so it says True."""
    from baicai_sdk import UnknownRelayError

    generic_server.status = 500
    generic_server.body = lambda: {"code": 49999, "msg": "新的错误"}  # type: ignore[method-assign]
    ours = Baicai(base_url=generic_server.base_url, api_key=KEY, retry_policy=POLICY, quota="off")
    error = _raised(lambda: ours.chat.completions.create(**CHAT))
    assert isinstance(error, UnknownRelayError) and error.retryable is True and generic_server.hits == 3
