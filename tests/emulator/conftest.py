"""Helpers for the emulator's own tests: a raw httpx2 client per key, and envelope decoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from baicai_sdk.testing import EmulatorServer
from tests import plain_http


def chat_body(text: str = "hello", model: str = "gpt-3.5-turbo", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def client_for(emu: EmulatorServer, key: str | None, **headers: str) -> httpx2.Client:
    all_headers = dict(headers)
    if key is not None:
        all_headers["authorization"] = f"Bearer {key}"
    return plain_http.client(base_url=emu.base_url, headers=all_headers, timeout=10)


def decode_error(style: str, payload: Any) -> tuple[int, str]:
    """(code, message) from an error body in the given envelope; fails if the shape is not that style's."""
    if style in ("openai", "openai-str"):
        assert set(payload) == {"error"}, payload
        code = payload["error"]["code"]
        assert isinstance(code, str if style == "openai-str" else int), payload
        return int(code), payload["error"]["message"]
    if style == "code-msg":
        assert set(payload) == {"code", "msg"}, payload
        assert isinstance(payload["code"], int)
        return payload["code"], payload["msg"]
    assert style == "errcode"
    assert set(payload) == {"errcode", "errmsg"}, payload
    assert isinstance(payload["errcode"], int)
    return payload["errcode"], payload["errmsg"]


@pytest.fixture
def paid(emulator: EmulatorServer) -> Iterator[httpx2.Client]:
    with client_for(emulator, emulator.paid_key) as c:
        yield c


@pytest.fixture
def free(emulator: EmulatorServer) -> Iterator[httpx2.Client]:
    with client_for(emulator, emulator.free_key) as c:
        yield c
