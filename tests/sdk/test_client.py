"""``Baicai`` / ``AsyncBaicai`` against the relay emulator over a real socket: the openai documentation's own
usage patterns, relay errors from their real causes, configuration precedence, copy/with_options (issue 3)."""

from __future__ import annotations

import base64
import time
import warnings
from typing import Any

import httpx2
import openai
import pytest

from baicai_sdk import (
    AsyncBaicai,
    Baicai,
    BaicaiError,
    EndpointNotSupported,
    FreeTierStreamNotAllowed,
    InvalidKey,
    MissingCredentials,
    ModelNotOnFreeTier,
    ModelNotSupported,
    RetryPolicy,
)
from baicai_sdk._codes import RELAY_CODES

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say this is a test"},
]


def count_records(emulator: Any, predicate: Any) -> int:
    """How many emulator records match. Exact at once, no waiting: the emulator records a request when it arrives
    and fills in its status and code before the last byte of its answer, which the client has read by the time it
    returns or raises (so a retry that should not have happened is already counted)."""
    return sum(1 for r in emulator.state.relay_requests() if predicate(r))


@pytest.fixture
def client(emulator: Any) -> Baicai:
    return Baicai(api_key=emulator.paid_key, base_url=emulator.base_url)


# -- the openai README's patterns ---------------------------------------------------------------------------------


def test_chat_completion(client: Baicai, emulator: Any) -> None:
    completion = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    record = emulator.state.requests[-1]
    assert record.path == "/v1/chat/completions" and record.status == 200 and record.key_tier == "paid"


def test_streaming(client: Baicai) -> None:
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    text = ""
    usage = None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text and usage is not None and usage.completion_tokens > 0


def test_streaming_context_manager_closes(client: Baicai) -> None:
    with client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True) as stream:
        first = next(iter(stream))
        assert first.object == "chat.completion.chunk"
    assert stream.response.is_closed


async def test_async_chat_and_stream(emulator: Any) -> None:
    client = AsyncBaicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    completion = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert completion.choices[0].message.content
    stream = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
    parts = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
    assert "".join(p or "" for p in parts)
    models = [m.id async for m in client.models.list()]
    assert "gpt-3.5-turbo" in models
    await client.close()


def test_models(client: Baicai) -> None:
    ids = [model.id for model in client.models.list()]
    assert "gpt-3.5-turbo" in ids and "dall-e-3" in ids


def test_images_url_and_b64(client: Baicai) -> None:
    result = client.images.generate(model="dall-e-3", prompt="a cabbage", size="1024x1024", quality="standard", n=1)
    assert result.data and result.data[0].url and result.data[0].url.startswith("http")
    small = client.images.generate(model="dall-e-2", prompt="a cabbage", size="256x256", response_format="b64_json")
    assert small.data and small.data[0].b64_json
    assert base64.b64decode(small.data[0].b64_json).startswith(b"\x89PNG")


def test_with_raw_response(client: Baicai) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert raw.http_request.url.path == "/v1/chat/completions"
    assert raw.status_code == 200 and raw.headers.get("content-type", "").startswith("application/json")
    completion = raw.parse()
    assert completion.choices[0].message.content


def test_with_streaming_response(client: Baicai) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-3.5-turbo", messages=MESSAGES, stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"


def test_keyword_only_configuration_from_environment(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.free_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    client = Baicai()
    assert client.credentials.key_source == "BAICAI_API_KEY" and client.credentials.base_url_source == "BAICAI_BASE_URL"
    assert client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES).choices


# -- relay errors from their real causes, in every envelope and status choice ---------------------------------------

STYLES = [(style, status) for style in ("openai", "openai-str", "code-msg", "errcode") for status in ("http", "200")]


@pytest.mark.parametrize(("style", "status"), STYLES)
def test_real_causes(emulator: Any, style: str, status: str) -> None:
    emulator.configure(error_style=style, error_status=status, free_stream=False)
    base = emulator.base_url
    with pytest.raises(InvalidKey) as bad_key:
        Baicai(api_key="baicai-unknown-key-0000000000000000", base_url=base).models.list()
    assert isinstance(bad_key.value, openai.AuthenticationError) and bad_key.value.status_code == 401
    free = Baicai(api_key=emulator.free_key, base_url=base, quota="off")
    with pytest.raises(ModelNotSupported):
        free.chat.completions.create(model="gpt-9-ultra", messages=MESSAGES)
    with pytest.raises(ModelNotOnFreeTier) as tier:
        free.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert tier.value.tier == "free" and isinstance(tier.value, openai.PermissionDeniedError)
    with pytest.raises(FreeTierStreamNotAllowed):
        list(free.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True))
    with pytest.raises(EndpointNotSupported) as twice:
        free.get("v1/models", cast_to=object)  # the documented mistake: /v1 twice
    assert twice.value.relay_code == 48004 and "/v1" in str(twice.value)
    assert {r.relay_code for r in emulator.state.requests} >= {40001, 48001, 40050, 48005, 48004}


def test_busy_fault_is_retried_until_success(emulator: Any) -> None:
    emulator.configure(faults="busy=1")
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, max_retries=2,
                    retry_policy=RetryPolicy(base_delay=0.01, max_delay=0.02))
    with pytest.raises(BaicaiError) as caught:
        client.models.list()
    assert caught.value.relay_code == -1 and caught.value.retryable
    assert count_records(emulator, lambda r: r.relay_code == -1) == 3


def test_hourly_limit_is_not_retried(emulator: Any) -> None:
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="off", max_retries=3)
    client.chat.completions.create(model="gpt-4-0125-preview", messages=MESSAGES, max_tokens=1)  # 1 per hour
    with pytest.raises(BaicaiError) as caught:
        client.chat.completions.create(model="gpt-4-0125-preview", messages=MESSAGES, max_tokens=1)
    limit = caught.value
    assert limit.relay_code == 40021 and isinstance(limit, openai.RateLimitError)
    assert limit.retryable is False and limit.tier == "free" and limit.family == "gpt-4"
    assert count_records(emulator, lambda r: r.relay_code == 40021) == 1  # not retried
    assert len(emulator.state.requests) == 2


# -- configuration ------------------------------------------------------------------------------------------------


def test_missing_key_is_a_clear_bilingual_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-should-never-be-used-000000")
    with pytest.raises(MissingCredentials) as caught:
        Baicai()
    text = str(caught.value)
    assert isinstance(caught.value, openai.OpenAIError)
    for place in ("api_key", "BAICAI_API_KEY", "baicai key"):
        assert place in text
    assert text.index("找不到") < text.index("No BaicaiGPT")
    assert "sk-openai-should-never-be-used-000000" not in text


def test_openai_environment_never_wins(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-000000000000000000000000")
    with pytest.warns(UserWarning, match="OPENAI_BASE_URL"):
        client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    assert str(client.base_url).rstrip("/") == emulator.base_url and client.api_key == emulator.paid_key
    assert client.models.list().data


def test_default_base_url_is_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Baicai(api_key="baicai-offline-00000000000000000000")
    assert str(client.base_url) == "https://api.baicaigpt.com/v1/"


def test_base_url_is_normalised_with_one_warning(emulator: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url + "/v1/")
    assert str(client.base_url) == emulator.base_url + "/"
    assert len([w for w in caught if "/v1" in str(w.message)]) == 1
    assert client.models.list().data


def test_odd_key_warns_but_works(emulator: Any) -> None:
    with pytest.warns(UserWarning):
        client = Baicai(api_key="sk-proj-0000000000000000000000000", base_url=emulator.base_url)
    with pytest.raises(InvalidKey):
        client.models.list()


def test_profile_supplies_key_url_and_tier(emulator: Any) -> None:
    from baicai_sdk._keys import KeyStore

    store = KeyStore()
    store.add("work", emulator.free_key, tier="free", base_url=emulator.base_url)
    store.use("work")
    client = Baicai()
    assert client.credentials.key_source == "profile:work" and client.tier == "free" and client.profile == "work"
    assert client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES).choices
    assert Baicai(tier="paid").tier == "paid"  # the argument wins
    assert Baicai(tier="paid").with_options(timeout=1).tier == "paid"


def test_copy_and_with_options_keep_every_setting(emulator: Any) -> None:
    policy = RetryPolicy(max_retries=1, base_delay=0.01)
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", quota="raise",
                    max_wait=5.0, retry_policy=policy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # copying must not repeat configuration warnings
        copied = client.with_options(timeout=3.0)
        again = client.copy(max_retries=0)
    for other in (copied, again):
        assert type(other) is Baicai
        assert (other.tier, other.quota, other.max_wait, other.retry_policy) == ("paid", "raise", 5.0, policy)
        assert other.credentials is client.credentials and other.api_key == client.api_key
        assert other.base_url == client.base_url and other._client is client._client
    assert copied.timeout == 3.0 and again.max_retries == 0
    assert copied.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES).choices

    waiting = client.with_options(quota="wait")
    assert waiting.quota == "wait" and waiting.tier == "paid" and waiting._client is not client._client
    rekeyed = client.with_options(api_key=emulator.free_key)
    assert rekeyed.api_key == emulator.free_key and rekeyed.credentials.key == emulator.free_key
    assert rekeyed.base_url == client.base_url and rekeyed.quota == "raise"


async def test_async_copy_keeps_settings(emulator: Any) -> None:
    client = AsyncBaicai(api_key=emulator.paid_key, base_url=emulator.base_url, tier="paid", quota="off")
    copied = client.with_options(timeout=2.0)
    assert type(copied) is AsyncBaicai and (copied.tier, copied.quota) == ("paid", "off")
    assert (await copied.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)).choices


def test_default_http_client_is_metered_and_a_given_one_is_respected(emulator: Any) -> None:
    from baicai_sdk._transport import MeteredTransport

    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    assert isinstance(client._client._transport, MeteredTransport)
    mine = httpx2.Client()
    assert Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, http_client=mine)._client is mine


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        Baicai(api_key="baicai-x-000000000000000000", quota="never")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Baicai(api_key="baicai-x-000000000000000000", tier="gold")  # type: ignore[arg-type]


def test_every_documented_status_maps_to_an_openai_class() -> None:
    assert {c.http_status for c in RELAY_CODES.values()} <= {400, 401, 403, 404, 429, 500}


# -- quota: the local refusal and the relay's hourly limits -----------------------------------------------------------


def test_local_refusal_raises_quota_exceeded_without_sending(emulator: Any) -> None:
    from baicai_sdk import QuotaExceeded

    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="raise", tier="free")
    client.chat.completions.create(model="gpt-4-0125-preview", messages=MESSAGES, max_tokens=5)
    sent = count_records(emulator, lambda r: True)
    assert sent == 1
    with pytest.raises(QuotaExceeded) as caught:
        client.chat.completions.create(model="gpt-4-0125-preview", messages=MESSAGES, max_tokens=5)
    error = caught.value
    assert isinstance(error, openai.RateLimitError) and error.retryable is False
    assert error.family == "gpt-4" and error.tier == "free"
    # the answer's arrival + a floor: the local window never frees before the relay's
    assert error.retry_at is not None and 3000 < error.retry_at - time.time() <= 3602
    assert "gpt-4" in str(error) and emulator.free_key not in str(error)
    assert len(emulator.state.requests) == sent  # refused locally: the relay never saw it


def test_relay_hourly_limit_gets_retry_at_from_the_ledger(emulator: Any) -> None:
    from baicai_sdk import FreeGpt4RequestLimit

    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, quota="off")
    started = time.time()
    client.chat.completions.create(model="gpt-4-0125-preview", messages=MESSAGES, max_tokens=5)
    with pytest.raises(FreeGpt4RequestLimit) as caught:
        client.chat.completions.create(model="gpt-4-0125-preview", messages=MESSAGES, max_tokens=5)
    error = caught.value
    assert error.relay_code == 40021 and error.tier == "free" and error.family == "gpt-4"
    assert error.retry_at is not None and started + 3500 <= error.retry_at <= time.time() + 3602


def test_missing_credentials_is_also_the_key_store_error() -> None:
    from baicai_sdk._keys import MissingKeyError

    with pytest.raises(MissingKeyError):
        Baicai()


def test_with_options_profile_switches_key_and_url(emulator: Any, emulator_factory: Any) -> None:
    from baicai_sdk._keys import KeyStore

    other = emulator_factory()
    store = KeyStore()
    store.add("home", emulator.free_key, tier="free", base_url=emulator.base_url)
    store.add("work", other.paid_key, tier="paid", base_url=other.base_url)
    store.use("home")
    client = Baicai(quota="off")
    assert client.profile == "home" and client.tier == "free"
    work = client.with_options(profile="work")
    assert work.profile == "work" and work.api_key == other.paid_key and work.tier == "paid"  # the profile's tier
    assert work._client is not client._client  # its metering transport knows the new tier
    assert str(work.base_url).rstrip("/") == other.base_url
    assert work.chat.completions.create(model="gpt-4", messages=MESSAGES).choices  # paid-only model on "work"
    assert work.quota == "off"


def test_config_warnings_point_at_the_users_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Baicai(api_key="baicai-offline-00000000000000000000", base_url="http://127.0.0.1:9/v1/v1")
        client.with_options(timeout=1).copy(base_url="http://127.0.0.1:9")
    assert [w.filename for w in caught] == [__file__, __file__]
    assert all("\n" not in str(w.message) for w in caught)


@pytest.mark.slow  # fresh interpreters
def test_each_config_warning_is_said_once_per_process(tmp_path: Any) -> None:
    """Three clients with the same odd key and URL: one line each, pointing at the script, not at baicai."""
    import subprocess
    import sys

    script = tmp_path / "user_script.py"
    script.write_text(
        "from baicai_sdk import Baicai\n"
        "for _ in range(3):\n"
        "    Baicai(api_key='sk-proj-0000000000000000000000000', base_url='http://127.0.0.1:9/v1/v1')\n"
        "Baicai(api_key='sk-proj-0000000000000000000000000', base_url='http://127.0.0.1:9/v1/v1')\n",
        "utf-8",
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("BAICAI_", "OPENAI_"))}
    env["BAICAI_HOME"] = str(tmp_path / "home")
    err = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True,
                         cwd=tmp_path).stderr
    headers = [line for line in err.splitlines() if "BaicaiConfigWarning" in line]
    assert len(headers) == 2, err  # the URL repair and the sk- key, once each
    assert all(line.startswith(f"{script}:3: ") for line in headers), err
    assert "baicai_sdk" not in err
