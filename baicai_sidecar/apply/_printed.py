"""Helpers for the adapters that write no file: deep links the app imports, or lines/steps the user copies."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from baicai_sdk.integration import Text

from ._model import Message, Target

__all__ = ["b64_json", "docker_sidecar_note"]


def b64_json(payload: dict[str, Any]) -> str:
    """Standard base64 of compact JSON, percent-encoded for a query string.

    Percent-encoding matters: a raw ``+`` in a query turns into a space in ``URLSearchParams``. Both Chatbox
    (js-base64) and Cherry Studio (Buffer) decode the standard alphabet.
    """
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return quote(base64.b64encode(raw).decode("ascii"), safe="")


def docker_sidecar_note(target: Target) -> list[Message]:
    if target.kind != "sidecar":
        return []
    return [
        Text("sidecar 只监听 127.0.0.1：在 Docker 或另一台机器上运行的服务端连不到它，请改用 --target relay。",
             "the sidecar listens on 127.0.0.1 only: a server in Docker or on another machine cannot reach it — use --target relay there.")
    ]
