"""A stream that ends without ``[DONE]`` raises ``IncompleteStream`` after yielding what arrived (issue 14, item 2).

Against the emulator over a real socket: ``truncate=3`` ends the stream cleanly after three content chunks (no
finish chunk, no usage, no ``[DONE]``); ``reset=3`` breaks the connection there.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from baicai_sdk import AsyncBaicai, Baicai, IncompleteStream

MESSAGES: list[Any] = [{"role": "user", "content": "Tell me a long story"}]


@pytest.mark.parametrize("fault", ["truncate=3", "reset=3"])
def test_cut_stream_raises_after_the_chunks_that_arrived(emulator: Any, fault: str) -> None:
    emulator.configure(faults=fault, reply_tokens=40)
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url, max_retries=0)
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
    received: list[str] = []
    with pytest.raises(IncompleteStream) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 3  # every chunk that arrived was handed over first
    error = caught.value
    assert isinstance(error, openai.APIConnectionError)  # openai code that handles dropped connections handles it
    message = str(error)
    assert message.index("没有正常结束") < message.index("without [DONE]") and "retry" in message


@pytest.mark.parametrize("fault", ["truncate=3", "reset=3"])
async def test_async_cut_stream_raises(emulator: Any, fault: str) -> None:
    emulator.configure(faults=fault, reply_tokens=40)
    client = AsyncBaicai(api_key=emulator.paid_key, base_url=emulator.base_url, max_retries=0)
    stream = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
    received = 0
    with pytest.raises(IncompleteStream):
        async for chunk in stream:
            received += bool(chunk.choices and chunk.choices[0].delta.content)
    assert received == 3
    await client.close()


def test_complete_and_early_closed_streams_do_not_raise(emulator: Any) -> None:
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    emulator.configure(reply_tokens=40)
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()  # the caller's choice: nothing to raise


def test_cut_stream_through_the_sidecar_raises_too(emulator: Any, sidecar_through: Any) -> None:
    emulator.configure(faults="truncate=3", reply_tokens=40)
    client = Baicai(api_key="sk-baicai-unused", base_url=sidecar_through.base_url, max_retries=0)
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
    received = 0
    with pytest.raises((IncompleteStream, openai.APIError)) as caught:
        for chunk in stream:
            received += bool(chunk.choices and chunk.choices[0].delta.content)
    assert received == 3
    assert "[DONE]" in str(caught.value)


@pytest.fixture
def sidecar_through(emulator: Any) -> Any:
    from baicai_sidecar._server import SidecarServer
    from baicai_sidecar.app import SidecarConfig

    with SidecarServer(SidecarConfig(upstream=emulator.base_url, api_key=emulator.paid_key, tier="paid",
                                     open_access=True)) as server:
        yield server
