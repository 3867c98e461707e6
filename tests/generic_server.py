"""A generic OpenAI-compatible server (not the relay) on a real socket, answering chat requests with an error.

Two dialects: LiteLLM's proxy, whose error ``code`` is the HTTP status as a string (``{"error": {"code": "429"}}``),
and OpenAI's own (``code`` a word or null). Used to check that such errors keep the class plain ``openai`` gives
them, through ``Baicai`` and through the sidecar.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from baicai_sdk._serving import answer_lifespan
from baicai_sdk.integration import BackgroundServer

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "throttling_error", 500: "internal_server_error"}


class GenericServer:
    def __init__(self) -> None:
        self.status = 500
        self.style = "litellm"
        self.hits = 0
        self.server = BackgroundServer(self, name="generic-openai").start()

    @property
    def base_url(self) -> str:
        return self.server.url + "/v1"

    def body(self) -> dict[str, Any]:
        kind = ERROR_TYPES[self.status]
        if self.style == "litellm":
            return {"error": {"message": f"litellm.{kind}: upstream said no ({self.status})", "type": kind,
                              "param": None, "code": str(self.status)}}
        return {"error": {"message": f"openai-style {kind}", "type": kind, "param": None, "code": None}}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        self.hits += 1
        payload = json.dumps(self.body()).encode()
        await send({"type": "http.response.start", "status": self.status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"retry-after-ms", b"5")]})  # keeps openai's own backoff short in tests
        await send({"type": "http.response.body", "body": payload})

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def generic_server() -> Iterator[GenericServer]:
    server = GenericServer()
    yield server
    server.stop()
