"""``read_response``: an answer read with its head becomes the same response ``httpx2.Response(content=...)`` makes
(the sidecar's ``DirectTransport`` hands complete answers over this way), without reading the body twice."""

from __future__ import annotations

import gzip
import json

import httpx2
import pytest

from baicai_sdk.integration import read_response

REQUEST = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions", content=b"{}")
BODY = json.dumps({"id": "x", "choices": [{"message": {"content": "你好"}}]}, ensure_ascii=False).encode()


@pytest.mark.parametrize("headers", [
    [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
    [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],  # no length: one is added
    [(b"content-type", b"application/json"), (b"content-encoding", b"identity")],
])
@pytest.mark.parametrize("body", [BODY, b""])
def test_same_as_the_constructor(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    extensions = {"reason_phrase": b"OK"}
    made = read_response(200, headers, body, request=REQUEST, extensions=extensions)
    expected = httpx2.Response(200, headers=headers, content=body, request=REQUEST, extensions=extensions)
    assert made.content == expected.content == body
    assert sorted(made.headers.multi_items()) == sorted(expected.headers.multi_items())
    assert (made.is_closed, made.is_stream_consumed) == (expected.is_closed, expected.is_stream_consumed) == (True, True)
    assert made.request is REQUEST and made.extensions == expected.extensions
    assert made.read() == body and list(made.iter_bytes()) == list(expected.iter_bytes())
    if body:
        assert made.json() == expected.json() and made.text == expected.text


async def test_async_reads_and_closes_like_the_constructor() -> None:
    made = read_response(200, [(b"content-type", b"application/json")], BODY, request=REQUEST)
    assert await made.aread() == BODY
    assert [chunk async for chunk in made.aiter_bytes()] == [BODY]
    await made.aclose()
    made.raise_for_status()


def test_an_encoded_body_is_decoded_as_the_constructor_does() -> None:
    packed = gzip.compress(BODY)
    made = read_response(200, [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())], packed,
                         request=REQUEST)
    assert made.content == BODY
