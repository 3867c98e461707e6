"""The official ``openai`` package against the emulator, as against a real OpenAI-compatible server."""

from __future__ import annotations

import base64

import openai
import pytest

from baicai_sdk._tokens import count_chat
from baicai_sdk.testing import EmulatorServer
from tests import plain_http

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "你好"}]


def _client(emu: EmulatorServer, key: str | None = None) -> openai.OpenAI:
    return plain_http.openai_client(api_key=key or emu.paid_key, base_url=emu.base_url, max_retries=0)


def test_sync_chat_models_and_retrieve(emulator: EmulatorServer) -> None:
    client = _client(emulator)
    ids = {m.id for m in client.models.list()}
    assert {"gpt-3.5-turbo", "gpt-4", "dall-e-3"} <= ids and "gpt-4-32k" not in ids
    assert client.models.retrieve("gpt-4").id == "gpt-4"
    answer = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content and answer.usage is not None
    assert answer.usage.prompt_tokens == count_chat(MESSAGES, "gpt-3.5-turbo")


def test_sync_stream_with_usage(emulator: EmulatorServer) -> None:
    client = _client(emulator)
    text, usage = "", None
    stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert "你好" in text and usage is not None and usage.completion_tokens > 0
    assert emulator.state.requests[-1].stream is True


async def test_async_chat_stream_and_images(emulator: EmulatorServer) -> None:
    client = plain_http.async_openai_client(api_key=emulator.paid_key, base_url=emulator.base_url, max_retries=0)
    answer = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)  # type: ignore[arg-type]
    stream = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES,  # type: ignore[arg-type]
                                                  stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == answer.choices[0].message.content
    image = await client.images.generate(model="dall-e-3", prompt="白菜", size="1792x1024", quality="hd",
                                         response_format="b64_json")
    assert base64.b64decode(image.data[0].b64_json or "")[:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[index]
    await client.close()


def test_images_by_url(emulator: EmulatorServer) -> None:
    client = _client(emulator)
    result = client.images.generate(model="dall-e-2", prompt="cabbage", n=2, size="256x256")
    assert len(result.data) == 2 and all((d.url or "").startswith(emulator.url) for d in result.data)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "model", "exception", "code"),
    [("wrong", "gpt-3.5-turbo", openai.AuthenticationError, 40001),
     ("frozen", "gpt-3.5-turbo", openai.PermissionDeniedError, 40243),
     ("free", "gpt-4", openai.PermissionDeniedError, 40050),
     ("paid", "gpt-4-32k", openai.NotFoundError, 48001)],
)
def test_relay_errors_raise_openai_exceptions(emulator: EmulatorServer, key: str, model: str,
                                              exception: type[Exception], code: int) -> None:
    api_key = {"wrong": "baicai-" + "z" * 40, "frozen": emulator.frozen_key, "free": emulator.free_key,
               "paid": emulator.paid_key}[key]
    with pytest.raises(exception) as info:
        _client(emulator, api_key).chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.code == str(code)  # type: ignore[attr-defined]  # openai 3.x exposes the code as a string


def test_tool_calls_through_openai(emulator: EmulatorServer) -> None:
    client = _client(emulator)
    tools = [{"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}]
    answer = client.chat.completions.create(model="gpt-3.5-turbo", tools=tools,  # type: ignore[arg-type]
                                            messages=[{"role": "user", "content": "1+1?"}])
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "add" and call.function.arguments == '{"a": 1.0, "b": 1.0}'  # type: ignore[union-attr]
