"""Offline token counting against tiktoken's own encodings, with the network unreachable.

tiktoken's official loader is fed through its documented cache (``TIKTOKEN_CACHE_DIR``, file name = SHA-1 of the
URL), seeded from our bundled files; the cookbook formula is re-implemented here independently of ``_tokens``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import pickle
import socket
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from baicai_sdk import _tokens
from baicai_sdk._tokens import (
    StreamCounter,
    TokenizerUnavailable,
    count_chat,
    count_image,
    count_text,
    count_tools,
    image_size_from_data_url,
)

URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
MODELS = ["gpt-3.5-turbo", "gpt-4", "gpt-4o"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> Any:
    """tiktoken's own ``encoding_for_model``, loaded from a cache seeded with our bundled files."""
    import tiktoken
    import tiktoken.registry

    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    for name, url in URLS.items():
        blob = resources.files("baicai_sdk").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(gzip.decompress(blob))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    # Forget encodings another test may have loaded, so these really come from tiktoken's loader.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return tiktoken.encoding_for_model


def cookbook_messages(encoding: Any, messages: list[dict[str, Any]]) -> int:
    """OpenAI cookbook, num_tokens_from_messages (gpt-3.5-turbo-0613 and later, gpt-4, gpt-4o)."""
    num = 0
    for message in messages:
        num += 3
        for key, value in message.items():
            num += len(encoding.encode(value))
            if key == "name":
                num += 1
    return num + 3


def cookbook_tools(encoding: Any, model: str, tools: list[dict[str, Any]]) -> int:
    """OpenAI cookbook, num_tokens_for_tools (function definitions only)."""
    func_init = 7 if model.startswith("gpt-4o") else 10
    prop_init, prop_key, enum_init, enum_item, func_end = 3, 3, -3, 3, 12
    count = 0
    for tool in tools:
        count += func_init
        function = tool["function"]
        desc = function["description"]
        if desc.endswith("."):
            desc = desc[:-1]
        count += len(encoding.encode(function["name"] + ":" + desc))
        properties = function["parameters"]["properties"]
        if properties:
            count += prop_init
            for key, prop in properties.items():
                count += prop_key
                if "enum" in prop:
                    count += enum_init
                    for item in prop["enum"]:
                        count += enum_item + len(encoding.encode(item))
                p_desc = prop["description"]
                if p_desc.endswith("."):
                    p_desc = p_desc[:-1]
                count += len(encoding.encode(f"{key}:{prop['type']}:{p_desc}"))
    return count + func_end if tools else 0


EXAMPLE = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]

CORPUS: list[list[dict[str, Any]]] = [
    EXAMPLE,
    [{"role": "user", "content": "你好，请用一句话介绍白菜GPT。"}],
    [
        {"role": "system", "content": "你是一个乐于助人的助手，回答要简洁。Answer in both Chinese and English."},
        {"role": "user", "name": "xiao_ming", "content": "北京今天天气怎么样？What's the weather in Beijing?"},
        {"role": "assistant", "content": "今天北京晴，气温 12–20°C。 Sunny, 12–20 °C."},
        {"role": "user", "name": "xiao_ming", "content": "那上海呢？🌧️ And Shanghai?"},
    ],
    [{"role": "user", "content": "<|endoftext|> is just text here\n\n\tindented\r\n" + "长文本" * 200}],
    [{"role": "user", "content": ""}, {"role": "assistant", "content": "   "}],
    [{"role": "user", "content": "def f(x):\n    return x ** 2  # 平方\n" * 20}],
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "城市名，例如 北京 / The city, e.g. Beijing."},
                    "unit": {"type": "string", "description": "The unit", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "查询余额",
            "description": "Look up the balance",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


def test_cookbook_example_is_129_on_cl100k_and_124_on_o200k(no_network: None) -> None:
    assert count_chat(EXAMPLE, "gpt-3.5-turbo") == 129
    assert count_chat(EXAMPLE, "gpt-4") == 129
    assert count_chat(EXAMPLE, "gpt-4o") == 124
    assert count_chat(EXAMPLE, "gpt-4o-mini") == 124


@pytest.mark.parametrize("model", MODELS)
def test_corpus_matches_tiktoken_official_offline(model: str, official: Any) -> None:
    encoding = official(model)
    assert encoding.name == ("o200k_base" if model == "gpt-4o" else "cl100k_base")
    for messages in CORPUS:
        # The cookbook encodes without special-token checks only when told; our corpus has "<|endoftext|>" as text.
        expected = cookbook_messages(_AllowText(encoding), messages)
        assert count_chat(messages, model) == expected, messages
    for messages in CORPUS:
        expected = cookbook_messages(_AllowText(encoding), messages) + cookbook_tools(encoding, model, TOOLS)
        assert count_chat(messages, model, tools=TOOLS) == expected


class _AllowText:
    """tiktoken's encoder with special-token text treated as text, as the API does for user content."""

    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding

    def encode(self, text: str) -> list[int]:
        return list(self._encoding.encode(text, disallowed_special=()))


@pytest.mark.parametrize("model", MODELS)
def test_count_text_matches_official(model: str, official: Any) -> None:
    encoding = official(model)
    for text in ["", "hello world", "白菜GPT 中转 API，国内直连。", "🥬" * 50, "a\n\n\n b  c\t"]:
        assert count_text(text, model) == len(encoding.encode(text))
    # Long texts are counted in tiktoken's buffer, not listed: the same counts, special-token text as ordinary text,
    # a lone surrogate repaired as tiktoken does, at the length where the way of counting changes too.
    long_texts = ["白菜 <|endoftext|> naïve café 12345\n" * 400, "x" * (_tokens._LONG_TEXT - 1) + "\ud83d",
                  "y" * _tokens._LONG_TEXT + "\ud800 z", " " * 5000 + "end"]
    for text in long_texts:
        assert count_text(text, model) == len(encoding.encode(text, disallowed_special=())), text[-20:]


def test_legacy_functions_count_like_tools() -> None:
    functions = [t["function"] for t in TOOLS]
    assert count_tools("gpt-4", functions=functions) == count_tools("gpt-4", tools=TOOLS) > 12
    bare = [{"type": "function", "function": {"name": "ping", "description": "Ping.", "parameters": {}}}]
    assert count_tools("gpt-4o", tools=bare) == 7 + count_text("ping:Ping", "gpt-4o") + 12
    assert count_tools("gpt-4", tools=bare) == 10 + count_text("ping:Ping", "gpt-4") + 12
    assert count_tools("gpt-4", tools=[]) == 0


@pytest.mark.slow  # a fresh interpreter
def test_library_touches_no_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tokens, "_cache", {})
    before = dict(os.environ)
    count_text("x", "gpt-4o")
    count_text("x", "gpt-4")
    assert dict(os.environ) == before


def test_encoding_keeps_only_the_rust_copy_of_the_ranks(official: Any) -> None:
    """tiktoken's Encoding would keep the Python ranks dict beside its Rust core (~10 MB for cl100k in a sidecar);
    ours drops it, reads it again from the bundled file when asked, and pickles by name."""
    for model, name in (("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base")):
        ours = _tokens.get_encoding(name)
        assert "_mergeable_ranks" not in vars(ours)
        reference = official(model)
        assert ours._mergeable_ranks == reference._mergeable_ranks
        text = "Hello, 世界! <|endoftext|> naïve café 🥬" * 3
        assert ours.encode(text, disallowed_special=()) == reference.encode(text, disallowed_special=())
        assert ours.decode(reference.encode(text, disallowed_special=())) == text
        assert pickle.loads(pickle.dumps(ours)) is ours


def test_damaged_bundle_is_refused() -> None:
    with pytest.raises(TokenizerUnavailable, match="SHA-256"):
        _tokens._read_bundled("cl100k_base", "0" * 64)
    with pytest.raises(TokenizerUnavailable):
        _tokens.get_encoding("p50k_base")


def test_image_token_rules() -> None:
    assert count_image(4096, 4096, "low") == 85
    assert count_image(1024, 1024, "high") == 765  # 768×768 → 4 tiles
    assert count_image(2048, 4096, "high") == 1105  # OpenAI's worked example: 768×1536 → 6 tiles
    assert count_image(512, 512, "auto") == 255
    assert count_image(None, None) == 765  # remote URL assumption


def _png(width: int, height: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "green").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _jpeg(width: int, height: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 2000)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def test_data_url_images_are_measured() -> None:
    assert image_size_from_data_url(_png(300, 200)) == (300, 200)
    assert image_size_from_data_url(_jpeg(1500, 700)) == (1500, 700)
    assert image_size_from_data_url("https://example.com/cat.png") is None
    text = [{"role": "user", "content": [{"type": "text", "text": "这是什么？"}]}]
    base = count_chat(text, "gpt-4o")
    with_png = [{"role": "user", "content": [{"type": "text", "text": "这是什么？"},
                                               {"type": "image_url", "image_url": {"url": _png(300, 200)}}]}]
    assert count_chat(with_png, "gpt-4o") == base + 255
    with_jpeg = [{"role": "user", "content": [{"type": "text", "text": "这是什么？"},
                                                {"type": "image_url", "image_url": {"url": _jpeg(1500, 700)}}]}]
    assert count_chat(with_jpeg, "gpt-4o") == base + count_image(1500, 700)  # short side under 768: 3×2 tiles
    assert count_image(1500, 700) == 170 * 6 + 85
    low = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": _png(3000, 3000), "detail": "low"}}]}]
    remote = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    user = count_text("user", "gpt-4o")
    assert count_chat(low, "gpt-4o") == 3 + user + 85 + 3
    assert count_chat(remote, "gpt-4o") == 3 + user + 765 + 3


def test_stream_counter_counts_the_joined_text_not_the_fragments() -> None:
    reply = "白菜GPT is an OpenAI-compatible relay. 国内直连，无需代理。" * 3
    counter = StreamCounter("gpt-3.5-turbo")
    for i in range(0, len(reply), 3):
        counter.feed(reply[i : i + 3])
    assert counter.tokens == count_text(reply, "gpt-3.5-turbo")
    assert counter.tokens < sum(count_text(reply[i : i + 3]) for i in range(0, len(reply), 3))


def test_stream_counter_reads_chunks_and_prefers_reported_usage() -> None:
    counter = StreamCounter("gpt-4o")
    counter.feed_chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    counter.feed_chunk({"choices": [{"index": 0, "delta": {"content": "你好"}}]})
    counter.feed_chunk({"choices": [{"index": 1, "delta": {"content": "Hello"}}]})
    counter.feed_chunk({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"name": "get_current_weather", "arguments": '{"loc'}}]}}]})
    counter.feed_chunk({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": 'ation": "北京"}'}}]}}]})
    expected = count_text('你好get_current_weather{"location": "北京"}', "gpt-4o") + count_text("Hello", "gpt-4o")
    assert counter.tokens == expected
    counter.feed_chunk({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 99, "total_tokens": 119}})
    assert counter.tokens == 99 and counter.counted_tokens == expected and counter.prompt_tokens_reported == 20


def _event(content: str) -> bytes:
    import json

    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


@pytest.mark.parametrize("split", [1, 7, 10_000])
def test_the_transports_stream_copy_reads_events_however_the_bytes_were_cut(split: int) -> None:
    """The metered transport keeps a copy of the stream's bytes and decodes it once the stream ends: events split
    across chunks, CRLF lines, pings, a relay error inside the stream and a cut last event are all read as when
    they came one per chunk."""
    from baicai_sdk._transport._metered import _StreamTally

    stream = (b": PING\r\n\r\n" + _event("白菜是") + _event(" a cabbage.").replace(b"\n", b"\r\n")
              + b'data: {"error": {"code": 40022, "message": "limit"}}\n\n' + b'data: {"choices": [{"ind')
    tally = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
    for i in range(0, len(stream), split):
        tally.feed(stream[i:i + split])
    tally.finish()
    expected = StreamCounter("gpt-3.5-turbo")
    expected.feed("白菜是 a cabbage.")
    assert tally.counter.tokens == expected.tokens > 0
    assert tally.relay_code == 40022 and not tally.done

    ended = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
    ended.feed(_event("hi") + b"data: [DONE]\n\n")
    ended.finish()
    assert ended.done and ended.relay_code is None and ended.counter.tokens == 1


@pytest.mark.parametrize("stream", [
    _event("白菜") + _event(" is") + b"data: [DONE]\n\n",
    b"data: [DONE]\n\n",
    _event("a") + b"data: [DONE]\n\n" + _event("late"),
    _event("a") + b"data: [DONE]\n\n" + b"data: [DONE]\n\n",
    _event("a") + b'data: {"error": {"code": 40022, "message": "limit"}}\n\n' + b"data: [DONE]\n\n",
    _event("a") + b"data:[DONE]\n\n",
    _event("a") + b"data: [DONE] \n\n",
])
def test_a_read_holding_many_events_and_the_end_is_tallied_as_when_they_came_one_by_one(stream: bytes) -> None:
    """An unpaced stream's last read holds many events and ``[DONE]``: taken on the tally's fast path, it must
    leave the same events, end and relay code as the same events fed one at a time."""
    from baicai_sdk._transport._metered import _StreamTally

    whole = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
    whole.feed(stream)
    one_by_one = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
    for event in stream.split(b"\n\n")[:-1]:
        one_by_one.feed(event + b"\n\n")
    assert (whole.payloads, whole.done, whole.relay_code) == (
        one_by_one.payloads, one_by_one.done, one_by_one.relay_code)
    whole.finish()
    one_by_one.finish()
    assert whole.counter.tokens == one_by_one.counter.tokens


def test_a_conversation_resent_is_counted_once_per_new_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chat apps send the whole conversation with each request: the history's counts are remembered (by hash, never
    the text), so a request's counting costs its new message, not the conversation (3 ms at 20 turns before)."""
    import json

    from baicai_sdk import _tokens

    enc = _tokens.get_encoding("cl100k_base")
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"第 {i} 轮：" + "白菜 cabbage " * 40}
               for i in range(20)]
    expected = _tokens.count_chat(history)
    encoded: list[str] = []
    real = enc.encode_ordinary
    monkeypatch.setattr(enc, "encode_ordinary", lambda text: (encoded.append(text), real(text))[1])
    again = json.loads(json.dumps(history))  # new string objects, as a parsed request body has
    assert _tokens.count_chat(again) == expected and encoded == []
    again.append({"role": "user", "content": "新的问题 new question"})
    assert _tokens.count_chat(again) == expected + 3 + len(real("user")) + len(real("新的问题 new question"))
    assert encoded == ["新的问题 new question"]


def _stream_events(draw: Any) -> list[bytes]:
    """A stream's data payloads as relays write them: one id/model/index per stream, content events around the
    odd one out (role, refusal, tool call, usage, a second choice, a different index, invalid JSON, a text with
    quotes, backslashes, escapes and newlines), compact or spaced, ASCII-escaped or not."""
    import json

    from hypothesis import strategies as st

    compact = draw(st.booleans())
    ascii_only = draw(st.booleans())
    separators = (",", ":") if compact else (", ", ": ")
    index = draw(st.sampled_from([0, 0, 1]))
    head = {"id": "chatcmpl-" + draw(st.text("abc123", min_size=1, max_size=6)), "object": "chat.completion.chunk",
            "created": 1796188890, "model": "gpt-3.5-turbo", "system_fingerprint": None}
    texts = st.text(alphabet=st.sampled_from(list('ab 白菜"\\/\n\t{}[]:,\u00e9\U0001f600')), max_size=8)

    def dump(event: dict[str, Any]) -> bytes:
        return json.dumps(event, separators=separators, ensure_ascii=ascii_only).encode()

    usage = draw(st.sampled_from([{}, {"usage": None}, {"usage": {"prompt_tokens": 3, "completion_tokens": 5}}]))

    def content(text: str, at: int = index, **extra: Any) -> dict[str, Any]:
        return {**head, "choices": [{"index": at, "delta": {"content": text, **extra}, "logprobs": None,
                                     "finish_reason": None}], **usage}

    odd = [
        lambda: dump(content("", role="assistant")),
        lambda: dump(content(draw(texts), refusal="no")),
        lambda: dump({**head, "choices": [{"index": index, "delta": {"tool_calls": [
            {"index": 0, "function": {"name": "f", "arguments": draw(texts)}}]}}]}),
        lambda: dump({**head, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 7}}),
        lambda: dump({**head, "choices": [content(draw(texts))["choices"][0], content("x", 1)["choices"][0]]}),
        lambda: dump(content(draw(texts), at=index + 1)),
        lambda: dump(content(draw(texts), finish=True)),
        lambda: b'{"choices": [{"index": 0, "delta": {"content": "cut',
        lambda: dump(content(draw(texts))).replace(b'"content"', b'"content" ', 1),
        lambda: dump(content(draw(texts))) + b", " + dump(content("two")),
        lambda: dump({**head, "choices": [{"index": index, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}),
        lambda: dump(content("QUOTED")).replace(b"QUOTED", b'a","b'),  # not JSON: a raw quote in the text
        lambda: dump(content("two", at=index + 1)) + b", " + dump(content("three", at=index + 2)),  # two in one
    ]
    # Not JSON either, but decodable: the key twice (the last one wins), the first the same in every event.
    twice = draw(st.booleans()) and draw(st.integers(0, 4)) == 0
    payloads = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 4)) == 0:
            payloads.append(draw(st.sampled_from(odd))())
        elif twice:
            last = json.dumps(draw(st.sampled_from(["dup", "other", "x"]))).encode()
            payloads.append(dump(content("FIRST")).replace(b'"FIRST"', b'"dup", "content": ' + last))
        else:
            payloads.append(dump(content(draw(texts))))
    return payloads


def test_a_streams_text_decoded_from_its_events_template_is_what_decoding_each_event_gives() -> None:
    """The tally decodes only the texts of events that share one template (the rest whole); what it counts — each
    choice's text in order, answer events, reported usage — must be what decoding every event whole gives, for
    any mix of events a relay may send (and fall back to that whenever the template cannot be trusted)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from baicai_sdk._transport import _metered
    from baicai_sdk._transport._metered import _StreamTally

    @settings(max_examples=400, deadline=None)
    @given(st.data())
    def check(data: Any) -> None:
        payloads = data.draw(st.composite(lambda draw: _stream_events(draw))())
        results = []
        for minimum in (_metered._TEMPLATE_MIN_EVENTS, 10**9):
            tally = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
            tally.payloads = list(payloads)
            saved, _metered._TEMPLATE_MIN_EVENTS = _metered._TEMPLATE_MIN_EVENTS, minimum
            try:
                tally.finish()
            finally:
                _metered._TEMPLATE_MIN_EVENTS = saved
            counter = tally.counter
            text = {choice: "".join(pieces) for choice, pieces in counter._pieces.items()}  # what is encoded
            results.append((text, tally.answered, counter.reported_usage, counter.tokens))
        assert results[0] == results[1]

    check()


def test_a_plain_streams_events_are_counted_from_their_template() -> None:
    """The usual stream (role event, content events, finish event) takes the template path, and counts as before."""
    import json

    from baicai_sdk._transport import _metered
    from baicai_sdk._transport._metered import _StreamTally

    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-3.5-turbo"}
    texts = ["白菜", ' is "a', " cabbage\\", "\n."]
    events = ([{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
              + [{**head, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in texts]
              + [{**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
    tally = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
    tally.payloads = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    assert all(_metered._content_template(payload) is not None for payload in tally.payloads[1:5])
    tally.finish()
    expected = StreamCounter("gpt-3.5-turbo")
    expected.feed("".join(texts))
    assert "".join(tally.counter._pieces[0]) == "".join(texts) and tally.counter.tokens == expected.tokens
    assert tally.answered == 6

    # Two events in one payload (not JSON; decoded together, as before, they count as two), a second choice.
    second = {**head, "choices": [{"index": 1, "delta": {"content": "二"}}]}
    odd = json.dumps(second).encode() + b", " + json.dumps(second).encode()
    tally = _StreamTally(counter=StreamCounter("gpt-3.5-turbo"))
    tally.payloads = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    tally.payloads[2:2] = [odd]
    tally.payloads.insert(5, json.dumps(second).encode())
    tally.finish()
    assert {choice: "".join(pieces) for choice, pieces in tally.counter._pieces.items()} == {
        0: "".join(texts), 1: "二二二"} and tally.answered == 9
