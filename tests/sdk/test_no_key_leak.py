"""No key ever appears in full: not in an exception, a repr, a log line or a warning (issue 3)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import httpx2
import openai
import pytest

from baicai_sdk import AsyncBaicai, Baicai, BaicaiError

SECRET = "baicai-leak-check-0123456789ABCDEFghij"
TAIL = SECRET[len("baicai-"):]  # also catch the key printed without its prefix


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and TAIL not in text, text


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx2", "httpcore", "baicai_sdk", "baicai_sdk.testing"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def test_against_the_emulator(emulator: Any, everything_logged: pytest.LogCaptureFixture,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.configure(error_style="openai", error_status="200")
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Baicai(api_key=SECRET, base_url=emulator.base_url + "/v1/v1/", max_retries=1)
        seen += [repr(client), str(client.credentials), repr(client.credentials),
                 repr(client.with_options(timeout=1)), repr(client.with_options(quota="raise"))]
        for call in (
            lambda: client.models.list(),
            lambda: client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x"}]),
            lambda: list(client.chat.completions.create(model="gpt-3.5-turbo",
                                                        messages=[{"role": "user", "content": "x"}], stream=True)),
        ):
            with pytest.raises(BaicaiError) as error:
                call()
            exc = error.value
            seen += [str(exc), repr(exc), exc.message, exc.relay_message, str(exc.body), str(exc.raw), str(exc.args)]
        monkeypatch.setenv("BAICAI_API_KEY", SECRET)
        monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
        Baicai(base_url="api.openai.com/v1/")  # several warnings at once
    seen += [str(w.message) for w in caught]
    assert caught  # warnings were raised, and none quotes the key
    assert len(everything_logged.records) > 10  # openai's and httpx2's debug logs were captured
    seen += [record.getMessage() for record in everything_logged.records]
    seen += [str(record.args) for record in everything_logged.records]
    assert_clean(*seen)


def test_relay_quoting_the_key_is_redacted(everything_logged: pytest.LogCaptureFixture) -> None:
    quoted = {"error": {"message": f"Incorrect API key provided: {SECRET}.", "type": "invalid_request_error",
                        "code": "invalid_api_key"}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/models"):
            return httpx2.Response(401, json=quoted)  # OpenAI's own wording, passed through
        # Quoted right after Chinese text (no space): CJK characters are "word" characters to a regex \b.
        return httpx2.Response(200, json={"errcode": 40001, "errmsg": f"无效的令牌{SECRET}，请检查"})

    client = Baicai(api_key=SECRET, base_url="http://relay.test/v1", max_retries=0,
                    http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with pytest.raises(openai.AuthenticationError) as passed_through:
        client.models.list()
    assert not isinstance(passed_through.value, BaicaiError)
    with pytest.raises(BaicaiError) as relay:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x"}])
    texts = []
    for exc in (passed_through.value, relay.value):
        texts += [str(exc), repr(exc), str(exc.body), str(exc.args)]
    assert "baicai-…ghij" in str(relay.value)
    assert_clean(*texts, *(r.getMessage() for r in everything_logged.records))


def test_redact_leaves_ordinary_words_alone() -> None:
    from baicai_sdk._errors import redact

    assert redact("disk-space and task-abcdef stay") == "disk-space and task-abcdef stay"
    assert redact("example: baicai-xxxxxxxx") == "example: baicai-xxxxxxxx"


async def test_async_errors_are_clean(emulator: Any) -> None:
    client = AsyncBaicai(api_key=SECRET, base_url=emulator.base_url, max_retries=0)
    with pytest.raises(BaicaiError) as error:
        await client.models.list()
    assert_clean(str(error.value), repr(error.value), repr(client), str(error.value.body))
