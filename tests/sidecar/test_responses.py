"""The Responses API through the sidecar: the real ``openai`` client's ``responses.create`` → sidecar → emulator (chat only).

Every story checks what the relay saw (one chat request, the real key) and what the ledger booked (that chat
request, tagged with the app).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx2
import openai
import pytest

from baicai_sdk.testing import wait_until
from baicai_sidecar._responses import DROPPED_HEADER, ResponsesError, ResponseStore, StreamTranslator, to_chat
from tests import plain_http

WEATHER = {
    "type": "function", "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def client(sidecar: Any, token: str) -> openai.OpenAI:
    return plain_http.openai_client(base_url=sidecar.base_url, api_key=token, max_retries=0)


def aclient(sidecar: Any, token: str) -> openai.AsyncOpenAI:
    return plain_http.async_openai_client(base_url=sidecar.base_url, api_key=token, max_retries=0)


def settled(ledger_rows: Any, count: int) -> list[dict[str, Any]]:
    def rows() -> list[dict[str, Any]] | None:
        done = [r for r in ledger_rows() if r["status"] != "pending"]
        return done if len(done) >= count else None

    return wait_until(rows, interval=0.02, what=f"{count} settled ledger rows")


def bilingual(message: str) -> None:
    zh, _, en = message.partition(" / ")
    assert en and any("\u4e00" <= ch <= "\u9fff" for ch in zh), message


def test_plain_response_is_one_metered_chat_request(emulator: Any, sidecar: Any, app_token: str,
                                                    ledger_rows: Any) -> None:
    response = client(sidecar, app_token).responses.create(
        model="gpt-3.5-turbo", instructions="Answer briefly.", input="你好，白菜", max_output_tokens=50)
    assert response.object == "response" and response.status == "completed"
    assert response.output_text.startswith("Emulator reply to: 你好，白菜")
    assert response.id.startswith("resp_") and response.instructions == "Answer briefly."
    [seen] = emulator.state.requests
    assert (seen.path, seen.authorization, seen.stream) == ("/v1/chat/completions", f"Bearer {emulator.paid_key}", False)
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (seen.prompt_tokens, seen.completion_tokens)
    [row] = settled(ledger_rows, 1)
    assert (row["source"], row["app"], row["status"], row["endpoint"]) == ("sidecar", "testapp", "ok", "chat")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (seen.prompt_tokens, seen.completion_tokens)


def test_the_console_names_the_path_the_app_called(emulator: Any, sidecar: Any, app_token: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A Responses request is sent on as a chat request; its console line still says /v1/responses."""
    caplog.set_level(logging.INFO, logger="baicai.sidecar")
    client(sidecar, app_token).responses.create(model="gpt-3.5-turbo", input="你好", max_output_tokens=20)
    def lines() -> list[str]:  # logged once the answer is sent: the client may have it a moment before
        return [r.getMessage() for r in list(caplog.records) if " -> 200 app=testapp" in r.getMessage()]

    [line] = wait_until(lines, interval=0.02, what="the console line")
    assert line.startswith("POST /v1/responses -> 200 app=testapp"), line
    assert [r.path for r in emulator.state.requests] == ["/v1/chat/completions"]  # the relay got chat


def test_max_output_tokens_cut_is_an_incomplete_response(emulator: Any, sidecar: Any, app_token: str) -> None:
    emulator.configure(reply_tokens=40)
    response = client(sidecar, app_token).responses.create(model="gpt-3.5-turbo", input="长一点", max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 5


def test_streamed_response_sends_the_responses_event_sequence(emulator: Any, sidecar: Any, app_token: str,
                                                              ledger_rows: Any) -> None:
    emulator.configure(reply_tokens=12)
    events = list(client(sidecar, app_token).responses.create(model="gpt-3.5-turbo", input="讲个故事", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert text and text == done.output_text == events[-4].text
    [seen] = emulator.state.requests
    assert seen.stream and seen.authorization == f"Bearer {emulator.paid_key}"
    assert done.usage is not None and done.usage.output_tokens == seen.completion_tokens > 0
    [row] = settled(ledger_rows, 1)
    assert (row["app"], row["stream"], row["status"], row["completion_tokens"]) == ("testapp", 1, "ok", seen.completion_tokens)


def test_function_tool_round_trip_with_full_history(emulator: Any, sidecar: Any, app_token: str,
                                                    ledger_rows: Any) -> None:
    c = client(sidecar, app_token)
    first = c.responses.create(model="gpt-3.5-turbo", input="北京天气？", tools=[WEATHER], store=False)
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example"} and call.call_id.startswith("call_")
    history: list[Any] = [{"role": "user", "content": "北京天气？"}, call.model_dump(exclude_none=True),
                          {"type": "function_call_output", "call_id": call.call_id, "output": "晴，25°C"}]
    second = c.responses.create(model="gpt-3.5-turbo", input=history, tools=[WEATHER], store=False)
    assert second.output_text.startswith("The tool returned: 晴，25°C")
    assert len(emulator.state.requests) == 2
    assert {r.authorization for r in emulator.state.requests} == {f"Bearer {emulator.paid_key}"}
    assert [r["app"] for r in settled(ledger_rows, 2)] == ["testapp", "testapp"]


def test_previous_response_id_continues_the_conversation(emulator: Any, sidecar: Any, app_token: str) -> None:
    c = client(sidecar, app_token)
    first = c.responses.create(model="gpt-3.5-turbo", input="北京天气？", tools=[WEATHER])
    [call] = first.output
    second = c.responses.create(model="gpt-3.5-turbo", previous_response_id=first.id, tools=[WEATHER],
                                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "雨"}])
    assert second.output_text.startswith("The tool returned: 雨") and second.previous_response_id == first.id
    third = c.responses.create(model="gpt-3.5-turbo", previous_response_id=second.id, input="谢谢")
    assert third.output_text.startswith("Emulator reply to: 谢谢")

    unstored = c.responses.create(model="gpt-3.5-turbo", input="不要保存", store=False)
    with pytest.raises(openai.BadRequestError) as info:
        c.responses.create(model="gpt-3.5-turbo", previous_response_id=unstored.id, input="继续")
    assert info.value.code == "previous_response_not_found"
    bilingual(info.value.message)
    assert len(emulator.state.requests) == 4  # the refused one never reached the relay


async def test_async_streamed_tool_call_and_answer(emulator: Any, sidecar: Any, app_token: str,
                                                  ledger_rows: Any) -> None:
    c = aclient(sidecar, app_token)
    # openai's own stream helper rebuilds the response from the events and checks that they fit together
    async with c.responses.stream(model="gpt-3.5-turbo", input="上海天气？", tools=[WEATHER]) as stream:
        kinds = [event.type async for event in stream]
        first = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    [call] = first.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "example"}
    events = [e async for e in await c.responses.create(
        model="gpt-3.5-turbo", stream=True, tools=[WEATHER], previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "多云"}])]
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text.startswith("The tool returned: 多云")
    plain = await c.responses.create(model="gpt-3.5-turbo", input="异步你好")
    assert plain.output_text.startswith("Emulator reply to: 异步你好")
    await c.close()
    assert [r.stream for r in emulator.state.requests] == [True, True, False]
    assert [r["app"] for r in settled(ledger_rows, 3)] == ["testapp"] * 3


def test_parallel_calls_in_history_become_one_assistant_message() -> None:
    tr = to_chat({"model": "m", "tools": [WEATHER], "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "两个城市"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"a"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"b"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "x"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "y"}]},
    ], "parallel_tool_calls": True, "tool_choice": {"type": "function", "name": "get_weather"}})
    user, calls, out1, out2 = tr.chat["messages"]
    assert user == {"role": "user", "content": "两个城市"}
    assert [c["id"] for c in calls["tool_calls"]] == ["c1", "c2"] and calls["content"] is None
    assert (out1, out2) == ({"role": "tool", "tool_call_id": "c1", "content": "x"},
                            {"role": "tool", "tool_call_id": "c2", "content": "y"})
    assert tr.chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER["parameters"]}}]
    assert tr.chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert tr.chat["parallel_tool_calls"] is True and tr.dropped == []


def test_images_a_tool_returned_follow_the_tool_messages() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}
    tr = to_chat({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": '{"path":"a.png"}'},
        {"type": "function_call", "call_id": "c2", "name": "view_image", "arguments": '{"path":"b.png"}'},
        {"type": "function_call_output", "call_id": "c1", "output": [image]},
        {"type": "function_call_output", "call_id": "c2", "output": "missing"},
        {"role": "user", "content": "describe"},
    ]})
    roles = [m["role"] for m in tr.chat["messages"]]
    assert roles == ["assistant", "tool", "tool", "user", "user"]
    tool, _, images, _ = tr.chat["messages"][1:]
    assert tool == {"role": "tool", "tool_call_id": "c1", "content": "(image)"}
    assert images["content"][1] == {"type": "image_url", "image_url": {"url": image["image_url"], "detail": "low"}}
    assert "c1" in images["content"][0]["text"]


def test_what_cannot_be_honoured_is_named_or_refused(emulator: Any, sidecar: Any, app_token: str) -> None:
    body = {"model": "gpt-3.5-turbo", "input": "搜一下", "reasoning": {"effort": "high"},
            "tools": [{"type": "web_search"}, WEATHER], "include": ["reasoning.encrypted_content"]}
    r = plain_http.post(sidecar.base_url + "/responses", json=body, headers={"authorization": f"Bearer {app_token}"})
    assert r.status_code == 200, r.text
    assert r.headers[DROPPED_HEADER] == "tools:web_search,reasoning"
    forced = {**body, "tool_choice": {"type": "web_search"}}
    with pytest.raises(openai.BadRequestError) as info:
        client(sidecar, app_token).responses.create(**forced)
    bilingual(info.value.message)
    assert info.value.body["param"] == "tool_choice"  # type: ignore[index]
    for refused in ({"background": True}, {"conversation": "conv_1"},
                    {"input": [{"type": "item_reference", "id": "msg_1"}]},
                    {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]}):
        with pytest.raises(openai.BadRequestError):
            client(sidecar, app_token).responses.create(**{"model": "gpt-3.5-turbo", "input": "x", **refused})
    assert len(emulator.state.requests) == 1  # only the first, answerable one reached the relay


def test_relay_errors_arrive_in_openais_error_shape(emulator: Any, sidecar_factory: Any, app_token: str,
                                                    ledger_rows: Any) -> None:
    sc = sidecar_factory(api_key=emulator.free_key, tier=None)
    with pytest.raises(openai.APIStatusError) as info:
        client(sc, app_token).responses.create(model="gpt-4", input="你好")
    assert info.value.status_code == 403
    bilingual(info.value.message)
    assert info.value.body["relay_code"] == 40050  # type: ignore[index]


def test_an_error_inside_the_stream_fails_the_response(emulator: Any, sidecar: Any, app_token: str,
                                                       ledger_rows: Any) -> None:
    emulator.configure(faults="stream_error=2", reply_tokens=12)
    events = list(client(sidecar, app_token).responses.create(model="gpt-3.5-turbo", input="你好", stream=True))
    assert events[-1].type == "response.failed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    error = events[-1].response.error
    assert error is not None
    bilingual(error.message)
    assert not any(e.type == "response.completed" for e in events)


def test_codex_shaped_request(emulator: Any, sidecar: Any, app_token: str) -> None:
    """What codex 0.171 sends: developer messages, namespace tools, reasoning items, a built-in tool, store false."""
    body = {
        "model": "gpt-3.5-turbo", "stream": True, "store": False, "tool_choice": "auto", "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "s1",
        "client_metadata": {"session_id": "s1"},
        "tools": [{"type": "namespace", "name": "multi_agent_v1", "description": "agents", "tools": [
                      {"type": "function", "name": "spawn", "strict": False, "parameters": {
                          "type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]}}]},
                  {"type": "web_search", "external_web_access": False}],
        "input": [
            {"type": "message", "id": "msg_1", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "spawn one"}]},
        ],
    }
    with httpx2.stream("POST", sidecar.base_url + "/responses", json=body,
                       headers={"authorization": f"Bearer {app_token}"}) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    done = events[-1]
    assert done["type"] == "response.completed"
    [call] = done["response"]["output"]
    assert (call["type"], call["namespace"], call["name"]) == ("function_call", "multi_agent_v1", "spawn")
    assert json.loads(call["arguments"]) == {"task": "example"}
    assert "event: response.completed\n" in raw
    assert r.headers[DROPPED_HEADER] == "tools:web_search,input:reasoning,reasoning"


def test_store_is_bounded() -> None:
    store = ResponseStore(max_items=3, max_bytes=10_000)
    for i in range(5):
        store.put(f"r{i}", [{"role": "user", "content": str(i)}])
    assert len(store) == 3 and store.get("r0") is None and store.get("r4") is not None
    store.put("big", [{"role": "user", "content": "x" * 20_000}])
    assert store.get("big") is None


def test_custom_tool_round_trips_as_a_custom_call() -> None:
    tr = to_chat({"model": "m", "input": "patch it", "tools": [
        {"type": "custom", "name": "apply_patch", "description": "Apply a patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]})
    [tool] = tr.chat["tools"]
    assert tool["function"]["parameters"]["required"] == ["input"]
    assert "start: /.+/" in tool["function"]["description"]
    stream = StreamTranslator(tr, "resp_x", 0)
    stream.start()
    stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "apply_patch", "arguments": ""}}]}}]})
    stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": '{"input": "*** Begin Patch"}'}}]}, "finish_reason": "tool_calls"}]})
    done = stream.finish()[-1]["response"]["output"][0]
    assert done == {"type": "custom_tool_call", "id": done["id"], "call_id": "call_1", "name": "apply_patch",
                    "input": "*** Begin Patch", "status": "completed"}
    with pytest.raises(ResponsesError):
        to_chat({"model": "m", "input": "x", "tools": [{"type": "mystery"}]})


def test_an_app_stopping_mid_stream_cancels_the_chat_request(emulator: Any, sidecar: Any, app_token: str,
                                                            ledger_rows: Any) -> None:
    emulator.configure(chunk_delay=0.1, reply_tokens=200)
    started = time.monotonic()
    with httpx2.stream("POST", sidecar.base_url + "/responses", json={"model": "gpt-3.5-turbo", "input": "长文",
                                                                      "stream": True},
                       headers={"authorization": f"Bearer {app_token}"}) as r:
        deltas = 0
        for chunk in r.iter_raw():
            deltas += chunk.count(b"event: response.output_text.delta")
            if deltas >= 3:
                break  # the user pressed "stop"
    [row] = settled(ledger_rows, 1)
    assert row["status"] == "cancelled" and 3 <= row["completion_tokens"] < 200
    assert time.monotonic() - started < 5  # 200 chunks × 0.1 s would take 20 s: the upstream read was cancelled
