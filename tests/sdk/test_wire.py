"""The wire module: the one SSE decoder, relay-error recognition, the status rewrite and Retry-After."""

from __future__ import annotations

import json
from email.utils import formatdate

import httpx2
import pytest

from baicai_sdk._transport._wire import (
    SSEDecoder,
    classify,
    error_body,
    iter_sse,
    parse_relay_error,
    parse_retry_after,
    relay_error_body,
    relay_error_message,
)

STREAM = (b": PING\r\n\r\n"
          b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
          b"event: message\r\ndata: line one\r\ndata: line two\r\n\r\n"
          b'data: {"error": {"code": 40022, "message": "limit"}}\n\n'
          b"data: [DONE]\n")  # no closing blank line: flush() hands the last event over


@pytest.mark.parametrize("split", [1, 2, 5, 13, 10_000])
def test_decoder_reads_the_same_events_however_the_bytes_are_cut(split: int) -> None:
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(STREAM), split):
        events += decoder.feed(STREAM[i:i + split])
    events += decoder.flush()
    assert [e.data for e in events] == [
        b'{"choices": [{"delta": {"content": "a"}}]}', b"line one\nline two",
        b'{"error": {"code": 40022, "message": "limit"}}', b"[DONE]"]
    assert events[1].event == "message" and events[-1].is_done and not events[0].is_done
    assert [e.data for e in iter_sse(STREAM)] == [e.data for e in events]


def test_an_event_knows_where_it_starts_in_the_chunk_that_completed_it() -> None:
    first = b'data: {"a": 1}\n\n'
    decoder = SSEDecoder()
    events = decoder.feed(first + b'data: {"b": 2}\n\n')
    assert [e.start for e in events] == [0, len(first)]
    # an event begun in an earlier chunk starts at 0 of the chunk that completes it
    assert decoder.feed(b"data: x") == [] and decoder.feed(b"\n\n")[0].start == 0
    # also when its first complete line came after other events in that earlier chunk (a reader passes on
    # chunk[:start] before raising: a stale offset would hand the error event itself to openai's decoder)
    assert [e.data for e in decoder.feed(b"data: a\n\ndata: {\"error\": 1}\n")] == [b"a"]
    assert decoder.feed(b"\ndata: b\n\n")[0].start == 0


@pytest.mark.parametrize("body, code", [
    ({"error": {"code": "40001", "message": "bad key"}}, 40001),
    ({"errcode": 40020, "errmsg": "limit"}, 40020),
    ({"code": -1, "msg": "busy"}, -1),
    ({"code": 49999, "msg": "new"}, 49999),  # an undocumented code no HTTP status could be: still the relay's
])
def test_relay_codes_are_recognised(body: object, code: int) -> None:
    answer = parse_relay_error(body)
    assert answer is not None and answer.code == code


@pytest.mark.parametrize("body", [
    {"error": {"code": "429", "message": "litellm.RateLimitError", "type": "throttling_error"}},  # LiteLLM
    {"error": {"code": 500, "message": "boom", "type": "server_error"}},
    {"error": {"code": "404", "message": "no such model"}},
    {"error": {"code": "invalid_api_key", "message": "Incorrect API key"}},  # OpenAI's own
    {"code": 0, "msg": "ok"},
    {"choices": []},
])
def test_generic_servers_errors_are_not_the_relays(body: object) -> None:
    assert parse_relay_error(body) is None
    assert classify(429, body).status == 429 and not classify(200, body).rewritten


def test_classify_gives_a_relay_error_sent_with_200_its_documented_status() -> None:
    verdict = classify(200, json.dumps({"code": 40020, "msg": "limit"}).encode())
    assert verdict.answer is not None and verdict.status == 429 and verdict.original_status == 200
    assert classify(200, {"code": 49999, "msg": "?"}).status == 400  # undocumented: a client error
    assert classify(503, {"code": 40020}).status == 503  # an error status is kept as sent
    sse = b'data: {"choices": []}\n\ndata: {"error": {"code": "40050", "message": "free"}}\n\n'
    assert parse_relay_error(sse).code == 40050  # type: ignore[union-attr]


def test_retry_after_reads_seconds_milliseconds_and_http_dates() -> None:
    assert parse_retry_after(httpx2.Headers({"retry-after": "7"})) == 7.0
    assert parse_retry_after(httpx2.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    now = 1_800_000_000.0
    date = formatdate(now + 30, usegmt=True)
    assert parse_retry_after(httpx2.Headers({"Retry-After": date}), now=now) == pytest.approx(30.0)
    assert parse_retry_after(httpx2.Headers({"retry-after": formatdate(now - 30, usegmt=True)}), now=now) == 0.0
    assert parse_retry_after(httpx2.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx2.Headers({"retry-after": "nan"})) is None
    assert parse_retry_after(httpx2.Headers({})) is None and parse_retry_after(None) is None


def test_the_error_body_is_openai_shaped_and_bilingual() -> None:
    body = error_body("中文", "English", type="t", code="c", extra=1)
    assert body == {"error": {"message": "中文 / English", "type": "t", "param": None, "code": "c", "extra": 1}}
    answer = parse_relay_error({"code": 40001, "msg": "key baicai-abcdefghijklmnop1234 is wrong"})
    assert answer is not None
    relay = relay_error_body(answer)["error"]
    assert relay["message"] == relay_error_message(answer) and relay["code"] == "40001"
    assert relay["type"] == "baicai_authentication" and relay["relay_code"] == 40001
    assert "abcdefghijklmnop1234" not in relay["message"] and "baicai-…1234" in relay["message"]
    assert relay["message"].index("API_KEY") < relay["message"].index("the API key is wrong")  # Chinese first


def _count_decoders(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The ids of the SSEDecoder instances that read bytes from now on."""
    from baicai_sdk._transport import _wire

    fed: set[int] = set()
    feed = _wire.SSEDecoder.feed

    def counting(self: SSEDecoder, chunk: bytes) -> list:  # type: ignore[type-arg]
        fed.add(id(self))
        return feed(self, chunk)

    monkeypatch.setattr(_wire.SSEDecoder, "feed", counting)
    return fed


def test_a_default_client_reads_a_streamed_reply_once(emulator: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metered transport's tally and Baicai's error check share one pass: one decoder per stream, and a relay
    error event still raises the typed exception after the text before it."""
    from baicai_sdk import Baicai, SystemBusy

    fed = _count_decoders(monkeypatch)
    client = Baicai(base_url=emulator.base_url, api_key=emulator.paid_key)  # type: ignore[attr-defined]
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}],
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert len(fed) == 1

    fed.clear()
    emulator.configure(faults="stream_error=2")  # type: ignore[attr-defined]
    text = ""
    with pytest.raises(SystemBusy):
        for chunk in client.chat.completions.create(model="gpt-3.5-turbo", stream=True,
                                                    messages=[{"role": "user", "content": "hi"}]):
            text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert text and len(fed) == 1


def test_chunks_of_one_event_each_read_as_the_whole_body() -> None:
    """The decoder's shortcut for the common chunk (one one-line event) agrees with the general path."""
    body = [b'data: {"a": 1}\n\n', b"data:no-space\n\n", b"data: two\n", b"data: lines\n\n", b": ping\n\n",
            b"data: [DONE]\n\n"]
    decoder = SSEDecoder()
    one_by_one = [e for chunk in body for e in decoder.feed(chunk)] + decoder.flush()
    assert [(e.data, e.event) for e in one_by_one] == [(e.data, e.event) for e in iter_sse(b"".join(body))]
    assert [e.data for e in one_by_one] == [b'{"a": 1}', b"no-space", b"two\nlines", b"[DONE]"]
