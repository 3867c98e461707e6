"""Deterministic answers, generated as tokens so that their counts are exact.

A reply is a list of token ids in the model's encoding: the echo of the last user message, padded with
" ok" (one token in cl100k and o200k) or cut to ``reply_tokens``, then cut again by ``max_tokens`` (finish
reason ``length``). Stream chunks are groups of those tokens that decode to whole UTF-8 characters, so the
chunks join to exactly the ``content`` of the non-streamed answer and ``usage.completion_tokens`` equals
tiktoken's count of that text.

Tool calls: with ``tools`` (or legacy ``functions``) and a user message last, the reply calls the first tool
with arguments that fill its schema's required properties with simple values; after a ``tool``/``function``
result, the reply quotes that result (agents such as AutoGen then finish their turn).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Reply", "build_reply", "count_prompt", "count_completion_text"]

# Filler that reads like an answer (and mixes scripts, so counts exercise the tokenizer): repeated to length.
_PAD = (" This is a deterministic answer from the baicai relay emulator, for offline development and tests."
        " 这是白菜GPT模拟器的确定性回答，用于离线开发与测试。")


@dataclass
class Reply:
    content: str | None
    pieces: list[str]
    """Stream deltas for ``content``; ``"".join(pieces) == content``."""
    finish_reason: str
    completion_tokens: int
    tool_call: dict[str, Any] | None = None
    """``{"id", "name", "arguments"}`` when the reply is a tool call."""
    legacy_function: bool = False


def count_prompt(body: dict[str, Any], model: str) -> int:
    """Prompt tokens of a chat request, by the SDK's shared counter (the one the client predicts with)."""
    from .._tokens import count_chat

    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = body.get("tools") if isinstance(body.get("tools"), list) else None
    functions = body.get("functions") if isinstance(body.get("functions"), list) else None
    return count_chat(messages, model, tools=tools, functions=functions)


def count_completion_text(text: str, model: str) -> int:
    from .._tokens import count_text

    return count_text(text, model)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _value_for(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "example"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return _fill_required(schema)
    if "anyOf" in schema and schema["anyOf"]:
        return _value_for(schema["anyOf"][0])
    return "example"


def _fill_required(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties") or {}
    return {name: _value_for(props.get(name)) for name in schema.get("required") or []}


def _tool_spec(body: dict[str, Any]) -> tuple[str, dict[str, Any], bool] | None:
    """(name, parameters, legacy) of the first callable tool, if any."""
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name"):
            return tool["function"]["name"], tool["function"].get("parameters") or {}, False
    for fn in body.get("functions") or []:
        if isinstance(fn, dict) and fn.get("name"):
            return fn["name"], fn.get("parameters") or {}, True
    return None


def _pieces(tokens: list[int], enc: Any) -> list[str]:
    pieces: list[str] = []
    pending = b""
    for token in tokens:
        pending += enc.decode_single_token_bytes(token)
        try:
            pieces.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            continue  # part of a multi-byte character: send it with the next token
    return pieces


def build_reply(body: dict[str, Any], model: str, reply_tokens: int) -> Reply:
    from .._tokens import encoding_for_model

    enc = encoding_for_model(model)
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    tool = _tool_spec(body)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = int(limit) if isinstance(limit, (int, float)) and limit > 0 else None

    if tool is not None and last.get("role") == "user" and body.get("tool_choice") != "none":
        name, params, legacy = tool
        arguments = json.dumps(_fill_required(params), ensure_ascii=False)
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()[:24]
        return Reply(
            content=None,
            pieces=[],
            finish_reason="function_call" if legacy else "tool_calls",
            # counted joined, as the shared StreamCounter counts a streamed call
            completion_tokens=count_completion_text(name + arguments, model),
            tool_call={"id": f"call_{digest}", "name": name, "arguments": arguments},
            legacy_function=legacy,
        )

    tokens: list[int]
    if last.get("role") in ("tool", "function"):
        quoted = _text_of(last.get("content"))
        tokens = enc.encode(f"The tool returned: {quoted}", disallowed_special=())
        target = max(reply_tokens, len(tokens))
    else:
        user_text = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        tokens = enc.encode(f"Emulator reply to: {user_text}" if user_text else "Emulator reply.", disallowed_special=())
        target = reply_tokens
    pad = enc.encode(_PAD)
    while len(tokens) < target:
        tokens += pad
    tokens = tokens[:target]  # may cut a character in two: _pieces() drops the incomplete tail
    finish = "stop"
    if limit is not None and len(tokens) > limit:
        tokens = tokens[:limit]
        finish = "length"
    pieces = _pieces(tokens, enc)
    content = "".join(pieces)
    return Reply(
        content=content,
        pieces=pieces,
        finish_reason=finish,
        completion_tokens=count_completion_text(content, model) if content else 0,
    )
