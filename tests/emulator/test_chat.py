"""Chat completions over a real socket: replies, usage, accounting, streaming and its faults, tool calls."""

from __future__ import annotations

import json
import time

import httpx2
import pytest

from baicai_sdk._catalog import load_catalog
from baicai_sdk._tokens import count_chat, count_text
from baicai_sdk.testing import EmulatorServer, wait_until
from tests import plain_http

from .conftest import chat_body


def _sse_events(response: httpx2.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


def test_reply_and_usage_are_exact(emulator: EmulatorServer, paid: httpx2.Client) -> None:
    body = chat_body("今天北京天气怎么样？", model="gpt-4")
    answer = paid.post("/chat/completions", json=body).json()
    content = answer["choices"][0]["message"]["content"]
    assert "今天北京天气怎么样" in content
    assert answer["choices"][0]["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["prompt_tokens"] == count_chat(body["messages"], "gpt-4")
    assert usage["completion_tokens"] == count_text(content, "gpt-4")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # Billed at the catalogue's price, from the balance.
    cost = load_catalog().chat("gpt-4").cost(usage["prompt_tokens"], usage["completion_tokens"])  # type: ignore[union-attr]
    assert emulator.state.spent(emulator.paid_key) == pytest.approx(cost)
    assert emulator.state.balance(emulator.paid_key) == pytest.approx(10.0 - cost)
    record = emulator.state.requests[-1]
    assert (record.model, record.prompt_tokens, record.completion_tokens, record.cost) == (
        "gpt-4", usage["prompt_tokens"], usage["completion_tokens"], pytest.approx(cost))


def test_replies_are_deterministic_and_reply_length_is_configurable(emulator: EmulatorServer,
                                                                     paid: httpx2.Client) -> None:
    body = chat_body("repeat after me")
    first = paid.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    assert paid.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"] == first
    emulator.configure(reply_tokens=40)
    longer = paid.post("/chat/completions", json=body).json()
    assert longer["usage"]["completion_tokens"] == 40


def test_free_keys_cost_nothing(emulator: EmulatorServer, free: httpx2.Client) -> None:
    assert free.post("/chat/completions", json=chat_body()).status_code == 200
    assert free.post("/chat/completions", json=chat_body(model="gpt-4-0125-preview")).status_code == 200
    assert emulator.state.spent(emulator.free_key) == 0.0


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_the_reply(paid: httpx2.Client, field: str) -> None:
    answer = paid.post("/chat/completions", json=chat_body("tell me a long story please", **{field: 3})).json()
    assert answer["choices"][0]["finish_reason"] == "length"
    content = answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] == count_text(content) <= 3


def test_n_choices_are_billed_each(paid: httpx2.Client) -> None:
    answer = paid.post("/chat/completions", json=chat_body("two please", n=2)).json()
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    one = count_text(answer["choices"][0]["message"]["content"])
    assert answer["usage"]["completion_tokens"] == 2 * one


def test_stream_joins_to_the_same_reply_with_usage_and_done(paid: httpx2.Client) -> None:
    body = chat_body("流式输出：白菜")
    plain = paid.post("/chat/completions", json=body).json()
    with paid.stream("POST", "/chat/completions",
                     json={**body, "stream": True, "stream_options": {"include_usage": True}}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage(paid: httpx2.Client) -> None:
    with paid.stream("POST", "/chat/completions", json=chat_body(stream=True)) as response:
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) and json.loads(e)["choices"] for e in events[:-1])


def test_chunk_delay_spaces_the_chunks(emulator: EmulatorServer, paid: httpx2.Client) -> None:
    emulator.configure(chunk_delay=0.03, reply_tokens=8)
    arrivals = []
    with paid.stream("POST", "/chat/completions", json=chat_body("hi", stream=True)) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and "content" in line:
                arrivals.append(time.monotonic())
    # The span, not each gap: a busy client may read two chunks in one go, but cannot make the server faster.
    assert len(arrivals) == 9  # the role chunk (content "") at once, then 8 tokens each after a delay
    assert arrivals[-1] - arrivals[0] >= 8 * 0.03 * 0.95


def test_truncated_stream_stops_without_done_and_is_billed_for_what_was_sent(emulator: EmulatorServer,
                                                                             paid: httpx2.Client) -> None:
    emulator.configure(faults="truncate=3")
    with paid.stream("POST", "/chat/completions",
                     json=chat_body("hi", stream=True, stream_options={"include_usage": True})) as response:
        events = _sse_events(response)
    assert "[DONE]" not in events
    chunks = [json.loads(e) for e in events]
    assert len(chunks) == 4  # role chunk + 3 content chunks, no finish chunk, no usage chunk
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    record = emulator.state.requests[-1]
    assert (record.outcome, record.completion_tokens) == ("truncated", count_text(text))


def test_reset_breaks_the_connection_mid_stream(emulator: EmulatorServer, paid: httpx2.Client,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    uvicorn_log = logging.getLogger("uvicorn.error")
    monkeypatch.setattr(uvicorn_log, "handlers", [*uvicorn_log.handlers, handler])  # restored after the test
    emulator.configure(faults="reset=2")
    received = []
    with pytest.raises(httpx2.RemoteProtocolError):
        with paid.stream("POST", "/chat/completions", json=chat_body("hi", stream=True)) as response:
            for line in response.iter_lines():
                received.append(line)
    assert any("content" in line for line in received)
    assert emulator.state.requests[-1].outcome == "reset"
    assert emulator.state.spent(emulator.paid_key) > 0
    assert not [r for r in logged if r.exc_info], "an injected reset is not a server crash: keep it out of the log"
    # The server is fine afterwards.
    emulator.configure(faults="")
    assert paid.post("/chat/completions", json=chat_body()).status_code == 200


def test_client_disconnect_stops_the_stream(emulator: EmulatorServer, paid: httpx2.Client) -> None:
    emulator.configure(chunk_delay=0.02, reply_tokens=200)
    with paid.stream("POST", "/chat/completions", json=chat_body("hi", stream=True)) as response:
        for _ in zip(range(3), response.iter_lines()):
            pass
    wait_until(lambda: emulator.state.requests[-1].outcome == "disconnected", what="the cut stream to be recorded")
    assert emulator.state.requests[-1].completion_tokens < 200


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                           "unit": {"type": "string", "enum": ["c", "f"]}, "verbose": {"type": "boolean"}},
            "required": ["city", "days", "unit"],
        },
    },
}


def test_tool_call_then_quote_of_the_result(paid: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "weather in Beijing?"}]
    first = paid.post("/chat/completions", json={"model": "gpt-3.5-turbo", "messages": messages,
                                                 "tools": [WEATHER_TOOL]}).json()
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "example", "days": 1, "unit": "c"}
    assert first["usage"]["completion_tokens"] == count_text(call["function"]["name"] + call["function"]["arguments"])
    messages += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "晴，25°C"}]
    second = paid.post("/chat/completions", json={"model": "gpt-3.5-turbo", "messages": messages,
                                                  "tools": [WEATHER_TOOL]}).json()
    assert "晴，25°C" in second["choices"][0]["message"]["content"]
    assert second["choices"][0]["finish_reason"] == "stop"


def test_streamed_tool_call_reassembles(paid: httpx2.Client) -> None:
    body = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "weather?"}],
            "tools": [WEATHER_TOOL], "stream": True}
    with paid.stream("POST", "/chat/completions", json=body) as response:
        chunks = [json.loads(e) for e in _sse_events(response)[:-1]]
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks]
    arguments = "".join(tc[0]["function"].get("arguments", "") for tc in calls if tc)
    assert json.loads(arguments)["city"] == "example"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_legacy_functions(paid: httpx2.Client) -> None:
    body = {"model": "gpt-3.5-turbo-0613", "messages": [{"role": "user", "content": "weather?"}],
            "functions": [WEATHER_TOOL["function"]]}
    answer = paid.post("/chat/completions", json=body).json()
    assert answer["choices"][0]["finish_reason"] == "function_call"
    assert answer["choices"][0]["message"]["function_call"]["name"] == "get_weather"


@pytest.mark.parametrize("style", ["openai", "errcode"])
def test_stream_error_fault_sends_an_error_event_mid_stream(emulator: EmulatorServer, paid: httpx2.Client,
                                                            style: str) -> None:
    emulator.configure(faults="stream_error=2", error_style=style)
    with paid.stream("POST", "/chat/completions", json=chat_body("hi", stream=True)) as response:
        assert response.status_code == 200
        events = [json.loads(e) for e in _sse_events(response)]
    assert len(events) == 4  # role chunk, 2 content chunks, the error event; no [DONE]
    error = events[-1]
    assert (error["error"]["code"] if style == "openai" else error["errcode"]) == -1
    record = emulator.state.requests[-1]
    assert (record.outcome, record.relay_code) == ("stream_error", -1)


@pytest.mark.parametrize("status", ["http", "200"])
def test_errors_to_stream_requests_as_sse(emulator: EmulatorServer, status: str) -> None:
    emulator.configure(stream_errors="sse", free_stream=False, error_style="code-msg", error_status=status)
    free = plain_http.client(base_url=emulator.base_url, headers={"authorization": f"Bearer {emulator.free_key}"})
    with free.stream("POST", "/chat/completions", json=chat_body(stream=True)) as response:
        assert response.status_code == (403 if status == "http" else 200)
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response)
    assert [json.loads(e)["code"] for e in events] == [48005]
    # Non-stream requests still get JSON.
    emulator.configure(stream_errors="sse")
    frozen = plain_http.post(emulator.base_url + "/chat/completions", json=chat_body(),
                             headers={"authorization": f"Bearer {emulator.frozen_key}"})
    assert frozen.headers["content-type"] == "application/json" and frozen.json()["code"] == 40243
