"""``POST /v1/responses`` served over the relay's Chat Completions: translated there and back, in the sidecar.

Why here: current apps (Codex ≥ 0.95, Continue's gpt-5/o-series, parts of LobeChat) speak only the Responses API,
and the relay speaks only chat. The translated request is handed to the same :class:`~baicai_sidecar._proxy.Proxy`
as every other request (a new scope for ``/v1/chat/completions``), so key injection, retries, the relay-error
rewrite, disconnect handling and — through the SDK's metered transport — the quota gate and the ledger are the
same: the ledger books the chat request that went to the relay, tagged with the app.

Written against openai-python 3.57's ``types/responses`` and checked with codex 0.171.0's requests; LiteLLM's
``responses/litellm_completion_transformation`` was read for the mapping (flattened tools, merged tool calls).

Request, Responses → chat:
* ``instructions`` → a first ``system`` message (not carried over by ``previous_response_id``, as OpenAI does);
  ``input`` as a string → one user message; as items: ``message`` (roles user/assistant/system; ``developer`` →
  ``system``, its chat equivalent), parts ``input_text``/``output_text`` → text, ``input_image`` with a URL →
  ``image_url``; consecutive ``function_call`` items → one assistant message with parallel ``tool_calls``;
  ``function_call_output`` → a ``tool`` message (images a tool returned follow the run of tool messages as a user
  message naming the call: chat's tool messages hold text only); ``custom_tool_call(_output)`` likewise.
* ``tools``: ``function`` (flat) → chat's nested ``function``; ``namespace`` tools → their functions, named
  ``<namespace>__<name>`` and mapped back (``function_call.namespace``); ``custom`` (free-form input) → a function
  taking one string ``input``, answered as a ``custom_tool_call``. ``tool_choice`` likewise (``allowed_tools``
  narrows the tool list). ``max_output_tokens`` → ``max_tokens``; ``temperature``, ``top_p``, ``user``,
  ``parallel_tool_calls`` (with tools) pass; ``text.format`` json_schema/json_object → ``response_format``.
* ``previous_response_id``: the earlier turn's messages from a bounded in-memory store (:class:`ResponseStore`:
  most recent responses only, lost on restart; ``store: false`` — what codex sends with its full history — keeps
  nothing). The store holds conversation text in memory only; nothing is written to disk.

What cannot be honoured over chat, and what happens (never a silent change of meaning):
* dropped, and named in the ``x-baicai-responses-dropped`` header and on the console: ``reasoning`` (the relay has
  no reasoning models), ``reasoning`` input items (opaque, encrypted), built-in tools (``web_search``,
  ``file_search``, ``code_interpreter``, ``image_generation``, ``computer_use_preview``, ``mcp``, ``local_shell``,
  ``shell``, ``apply_patch``, ``tool_search``) when not forced, ``text.verbosity``, ``truncation: auto``,
  ``max_tool_calls``, ``top_logprobs``;
* ignored (no effect on the answer): ``store`` (beyond our own store), ``include``, ``metadata``,
  ``prompt_cache_key``, ``prompt_cache_retention``, ``safety_identifier``, ``service_tier``, ``client_metadata``,
  ``stream_options``;
* refused with a 400 in OpenAI's error shape: ``background``, ``conversation``, ``prompt`` (templates), a
  ``tool_choice`` forcing a built-in tool, ``item_reference`` and other server-side items, files and file ids,
  an unknown ``previous_response_id``.

Answer, chat → Responses: a ``Response`` object (message item with an ``output_text`` part, ``function_call`` items,
usage as ``input_tokens``/``output_tokens``; ``finish_reason: length`` → ``incomplete``, reason
``max_output_tokens``), or for ``stream: true`` the Responses event sequence — ``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``/``.done``, ``response.content_part.done``, ``response.output_item.done``,
``response.function_call_arguments.delta``/``.done``, ``response.completed`` (or ``response.incomplete``) with
usage — each with its ``sequence_number``. An error before the stream starts is an HTTP error (OpenAI's shape,
from the proxy); a relay error or a cut inside the stream ends it with ``response.failed``.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from baicai_sdk import parse_relay_error
from baicai_sdk.integration import SSEDecoder, Text, relay_error_body

from ._asgi import Message, Receive, Scope, Send
from ._guard import BODY, PARSED_BODY, openai_error_body, refusal_line
from ._proxy import APP_PATH, read_body

__all__ = ["ResponsesEndpoint", "ResponseStore", "ResponsesError", "to_chat", "response_from_chat",
           "StreamTranslator"]

log = logging.getLogger("baicai.sidecar")


DROPPED_HEADER = "x-baicai-responses-dropped"

_BUILTIN_TOOLS = frozenset({
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11", "file_search",
    "code_interpreter", "image_generation", "computer_use_preview", "computer", "mcp", "local_shell", "shell",
    "apply_patch", "tool_search",
})
_IGNORED = ("store", "include", "metadata", "prompt_cache_key", "prompt_cache_retention", "safety_identifier",
            "service_tier", "client_metadata", "stream_options")
_REFUSED = {
    "background": ("后台运行（background）", "background mode"),
    "conversation": ("服务端会话（conversation）", "server-side conversations"),
    "prompt": ("提示模板（prompt）", "prompt templates"),
}
_KNOWN = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "temperature", "top_p", "user", "stream", "previous_response_id", "reasoning", "text", "truncation",
    "max_tool_calls", "top_logprobs", *_IGNORED, *_REFUSED,
})


class ResponsesError(Exception):
    """A request this translation cannot serve faithfully: answered 400 in OpenAI's error shape."""

    def __init__(self, zh: str, en: str, *, param: str | None = None, code: str = "unsupported_parameter",
                 status: int = 400) -> None:
        super().__init__(Text(zh, en))
        self.zh, self.en, self.param, self.code, self.status = zh, en, param, code, status

    def body(self) -> bytes:
        return openai_error_body(self.zh, self.en, type="invalid_request_error", code=self.code, param=self.param)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (clients send odd shapes; none may crash us)."""
    return value if isinstance(value, dict) else {}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


# -- the store behind previous_response_id -----------------------------------------------------------------------
class ResponseStore:
    """The chat messages of recent responses, by response id: bounded in count and size, in memory only.

    The conversation is what a later ``previous_response_id`` continues; keeping it on disk would store prompt and
    completion text, which baicai never does.
    """

    def __init__(self, max_items: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[str, tuple[list[dict[str, Any]], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, response_id: str, messages: list[dict[str, Any]]) -> None:
        size = len(json.dumps(messages, ensure_ascii=False))
        if size > self.max_bytes:
            return
        with self._lock:
            self._items[response_id] = (messages, size)
            self._bytes += size
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get(self, response_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            found = self._items.get(response_id)
            if found is None:
                return None
            self._items.move_to_end(response_id)
            return list(found[0])

    def __len__(self) -> int:
        return len(self._items)


# -- request: Responses -> chat ----------------------------------------------------------------------------------
@dataclass
class Translation:
    chat: dict[str, Any]
    """The chat completions request body sent to the relay."""
    echo: dict[str, Any]
    """The request's own fields as a Response object repeats them."""
    names: dict[str, tuple[str | None, str, str]] = field(default_factory=dict)
    """Chat function name -> (namespace, Responses name, kind "function"|"custom")."""
    dropped: list[str] = field(default_factory=list)
    conversation: list[dict[str, Any]] = field(default_factory=list)
    """The messages a later ``previous_response_id`` continues (without the instructions)."""
    store: bool = True


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    """A message's content as chat parts (text and image_url)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise ResponsesError(f"{where} 的 content 必须是字符串或内容数组", f"{where}.content must be a string or a list",
                             param=f"{where}.content", code="invalid_value")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.append({"type": "refusal", "refusal": part["refusal"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise ResponsesError(
                f"不支持的内容类型 {kind!r}（{where}.content[{i}]）：中转只支持文本和图片链接；文件与 file_id 需要 OpenAI 的文件存储",
                f"unsupported content part {kind!r} ({where}.content[{i}]): the relay takes text and image URLs; "
                "files and file ids need OpenAI's file storage", param=f"{where}.content[{i}]")
    return parts


def _message(role: str, content: Any, where: str) -> dict[str, Any]:
    parts = _text_parts(content, where)
    chat_role = "system" if role == "developer" else role
    if role == "assistant":
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        refusal = "".join(p["refusal"] for p in parts if p["type"] == "refusal")
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if refusal:
            message["refusal"] = refusal
        return message
    if any(p["type"] == "refusal" for p in parts):
        raise ResponsesError(f"{where}: 只有 assistant 消息可以含 refusal", f"{where}: only assistant messages hold refusals",
                             param=where, code="invalid_value")
    if chat_role == "user" and any(p["type"] == "image_url" for p in parts):
        return {"role": "user", "content": parts}
    if any(p["type"] == "image_url" for p in parts):
        raise ResponsesError(f"{where}: 图片只能放在 user 消息里", f"{where}: images are for user messages only",
                             param=where, code="invalid_value")
    return {"role": chat_role, "content": "\n".join(p["text"] for p in parts) if len(parts) != 1 else parts[0]["text"]}


def _tool_output(output: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A tool result (``function_call_output.output``) as (text for the ``tool`` message, image parts).

    Chat's tool messages hold text only: images a tool returned (codex's ``view_image``) follow the tool messages
    as a user message that says which call they came from.
    """
    if isinstance(output, str):
        return output, []
    if isinstance(output, list):
        parts = _text_parts(output, where)
        if any(p["type"] == "refusal" for p in parts):
            raise ResponsesError(f"{where}: 工具结果不能含 refusal", f"{where}: a tool result cannot hold a refusal",
                                 param=f"{where}.output", code="invalid_value")
        images = [p for p in parts if p["type"] == "image_url"]
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        return (text or ("(image)" if images else "")), images
    return json.dumps(output, ensure_ascii=False), []


class _Names:
    """Responses tool names ↔ chat function names (namespaces flattened, custom tools wrapped)."""

    def __init__(self) -> None:
        self.to_chat: dict[tuple[str | None, str], str] = {}
        self.back: dict[str, tuple[str | None, str, str]] = {}

    def add(self, namespace: str | None, name: str, kind: str) -> str:
        flat = f"{namespace}__{name}" if namespace else name
        if flat in self.back and self.back[flat] != (namespace, name, kind):
            raise ResponsesError(f"工具名 {flat!r} 重复", f"tool name {flat!r} appears twice", param="tools",
                                 code="invalid_value")
        self.to_chat[(namespace, name)] = flat
        self.back[flat] = (namespace, name, kind)
        return flat

    def chat_name(self, namespace: str | None, name: str) -> str:
        return self.to_chat.get((namespace, name)) or (f"{namespace}__{name}" if namespace else name)


_CUSTOM_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string", "description": "The tool's input, verbatim."}},
                      "required": ["input"], "additionalProperties": False}


def _function_tool(tool: dict[str, Any], names: _Names, namespace: str | None, where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise ResponsesError(f"{where} 缺少 name", f"{where} has no name", param=f"{where}.name",
                             code="missing_required_parameter")
    kind = tool.get("type")
    description = tool.get("description") or ""
    if kind == "custom":
        parameters: Any = _CUSTOM_PARAMETERS
        fmt = _obj(tool.get("format"))
        if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
            description = f"{description}\n\nThe input must follow this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}".strip()
    else:
        parameters = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {"type": "object", "properties": {}}
    function: dict[str, Any] = {"name": names.add(namespace, name, "custom" if kind == "custom" else "function"),
                                "parameters": parameters}
    if description:
        function["description"] = description
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tools(body: dict[str, Any], names: _Names, dropped: list[str]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ResponsesError("tools 必须是数组", "tools must be a list", param="tools", code="invalid_type")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in ("function", "custom"):
            out.append(_function_tool(tool, names, None, f"tools[{i}]"))
        elif kind == "namespace":
            namespace = tool.get("name")
            for j, inner in enumerate(tool.get("tools") or []):
                if isinstance(inner, dict) and inner.get("type") in ("function", "custom"):
                    out.append(_function_tool(inner, names, namespace, f"tools[{i}].tools[{j}]"))
                else:
                    dropped.append(f"tools[{i}].tools[{j}]:{inner.get('type') if isinstance(inner, dict) else '?'}")
        elif isinstance(kind, str) and (kind in _BUILTIN_TOOLS or kind.startswith(("web_search", "computer"))):
            dropped.append(f"tools:{kind}")
        else:
            raise ResponsesError(f"不支持的工具类型 {kind!r}", f"unsupported tool type {kind!r}", param=f"tools[{i}]")
    return out


def _tool_choice(choice: Any, names: _Names, tools: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """(chat tool_choice, the tools to offer)."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice, tools
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom") and isinstance(choice.get("name"), str):
            flat = names.chat_name(choice.get("namespace"), choice["name"])
            if flat not in names.back:
                raise ResponsesError(f"tool_choice 指定的工具 {choice['name']!r} 不在 tools 里",
                                     f"tool_choice names {choice['name']!r}, which is not in tools",
                                     param="tool_choice", code="invalid_value")
            return {"type": "function", "function": {"name": flat}}, tools
        if kind == "allowed_tools":
            allowed = set()
            for ref in choice.get("tools") or []:
                if isinstance(ref, dict) and ref.get("type") in ("function", "custom") and isinstance(ref.get("name"), str):
                    allowed.add(names.chat_name(ref.get("namespace"), ref["name"]))
                elif isinstance(ref, dict):
                    raise ResponsesError(f"allowed_tools 里的内置工具 {ref.get('type')!r} 无法经中转使用",
                                         f"built-in tool {ref.get('type')!r} in allowed_tools cannot be used through the relay",
                                         param="tool_choice")
            kept = [t for t in tools if t["function"]["name"] in allowed]
            return ("required" if choice.get("mode") == "required" else "auto"), kept
        raise ResponsesError(f"tool_choice 要求内置工具 {kind!r}：中转（Chat Completions）没有内置工具",
                             f"tool_choice forces the built-in tool {kind!r}: the relay (chat completions) has none",
                             param="tool_choice")
    raise ResponsesError("tool_choice 无效", "invalid tool_choice", param="tool_choice", code="invalid_value")


def _call_arguments(item: dict[str, Any], kind: str) -> str:
    if kind == "custom":
        return json.dumps({"input": item.get("input") if isinstance(item.get("input"), str) else ""}, ensure_ascii=False)
    arguments = item.get("arguments")
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {}, ensure_ascii=False)


def _input_messages(items: Any, names: _Names, dropped: list[str]) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise ResponsesError("input 必须是字符串或数组", "input must be a string or a list", param="input",
                             code="invalid_type")
    messages: list[dict[str, Any]] = []
    pending_images: list[tuple[str, list[dict[str, Any]]]] = []

    def flush_images() -> None:
        for call_id, images in pending_images:
            messages.append({"role": "user", "content": [
                {"type": "text", "text": f"(images returned by tool call {call_id})"}, *images]})
        pending_images.clear()

    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ResponsesError(f"{where} 不是对象", f"{where} is not an object", param=where, code="invalid_type")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind not in ("function_call_output", "custom_tool_call_output"):
            flush_images()
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise ResponsesError(f"{where} 的 role {role!r} 无效", f"{where} has an invalid role {role!r}",
                                     param=f"{where}.role", code="invalid_value")
            messages.append(_message(role, item.get("content"), where))
        elif kind in ("function_call", "custom_tool_call"):
            call_kind = "custom" if kind == "custom_tool_call" else "function"
            name = item.get("name")
            call_id = item.get("call_id")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise ResponsesError(f"{where} 缺少 name 或 call_id", f"{where} needs name and call_id", param=where,
                                     code="missing_required_parameter")
            call = {"id": call_id, "type": "function",
                    "function": {"name": names.chat_name(item.get("namespace"), name),
                                 "arguments": _call_arguments(item, call_kind)}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)  # parallel calls: one assistant message
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            if not isinstance(item.get("call_id"), str):
                raise ResponsesError(f"{where} 缺少 call_id", f"{where} needs call_id", param=f"{where}.call_id",
                                     code="missing_required_parameter")
            text, images = _tool_output(item.get("output"), where)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
            if images:  # sent once every tool message of this run is in (chat wants them right after the call)
                pending_images.append((item["call_id"], images))
        elif kind == "reasoning":
            if "input:reasoning" not in dropped:
                dropped.append("input:reasoning")
        else:
            raise ResponsesError(
                f"不支持的输入项类型 {kind!r}（{where}）：它需要 OpenAI 服务端的状态或内置工具",
                f"unsupported input item type {kind!r} ({where}): it needs OpenAI's server-side state or built-in tools",
                param=where)
    flush_images()
    return messages


def to_chat(body: Any, store: ResponseStore | None = None) -> Translation:
    """The chat request for a Responses request, or :class:`ResponsesError` for what cannot be served faithfully."""
    if not isinstance(body, dict):
        raise ResponsesError("请求体必须是 JSON 对象", "the request body must be a JSON object", code="invalid_type")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ResponsesError("缺少 model", "missing model", param="model", code="missing_required_parameter")
    for name, (zh, en) in _REFUSED.items():
        if body.get(name) not in (None, False):
            raise ResponsesError(f"本地代理经 Chat Completions 转发，不支持{zh}", f"the sidecar translates to chat completions: "
                                 f"{en} are not supported", param=name)
    dropped: list[str] = []
    names = _Names()
    tools = _tools(body, names, dropped)
    choice, tools = _tool_choice(body.get("tool_choice"), names, tools)

    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif isinstance(instructions, list):
        messages.extend(_input_messages(instructions, names, dropped))
    previous = body.get("previous_response_id")
    conversation: list[dict[str, Any]] = []
    if previous is not None:
        earlier = store.get(previous) if store is not None and isinstance(previous, str) else None
        if earlier is None:
            raise ResponsesError(
                f"找不到 previous_response_id {str(previous)[:80]!r}：本地代理只在内存里保留最近的回答（重启后清空，store: false 的不保留）；"
                "请发送完整对话",
                f"previous response {str(previous)[:80]!r} not found: the sidecar keeps recent responses in memory only "
                "(cleared on restart; none kept with store: false); send the whole conversation",
                param="previous_response_id", code="previous_response_not_found")
        conversation.extend(earlier)
    conversation.extend(_input_messages(body.get("input", []), names, dropped))
    messages.extend(conversation)
    if not messages:
        raise ResponsesError("input 为空", "input is empty", param="input", code="missing_required_parameter")

    chat: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        chat["tools"] = tools
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    elif choice == "required":
        raise ResponsesError("tool_choice 为 required，但没有可经中转使用的工具",
                             "tool_choice is required but no tool can be used through the relay", param="tool_choice")
    for src, dst in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"),
                     ("user", "user")):
        if body.get(src) is not None:
            chat[dst] = body[src]
    text = _obj(body.get("text"))
    fmt = _obj(text.get("format"))
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    if text.get("verbosity") is not None:
        dropped.append("text.verbosity")
    if body.get("reasoning") is not None:
        dropped.append("reasoning")
    if body.get("truncation") == "auto":
        dropped.append("truncation")
    for name in ("max_tool_calls", "top_logprobs"):
        if body.get(name) is not None:
            dropped.append(name)
    unknown = sorted(k for k in body if k not in _KNOWN)
    dropped.extend(f"unknown:{k}" for k in unknown)
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}

    echo = {
        "instructions": instructions if instructions is not None else None,
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": previous,
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") in ("function", "custom", "namespace")],
        "text": {"format": fmt or {"type": "text"}},
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
        "store": body.get("store", True) is not False,
    }
    return Translation(chat, echo, names.back, dropped, conversation, store=body.get("store", True) is not False)


# -- answer: chat -> Responses -----------------------------------------------------------------------------------
def _usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": int(cached)},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": int(reasoning)},
            "total_tokens": int(usage.get("total_tokens") or prompt + completion)}


def _response(response_id: str, created: int, tr: Translation, *, status: str, output: list[dict[str, Any]],
              usage: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
              incomplete: str | None = None, model: str | None = None) -> dict[str, Any]:
    return {
        "id": response_id, "object": "response", "created_at": created, "status": status,
        "background": False, "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": tr.echo["instructions"], "max_output_tokens": tr.echo["max_output_tokens"],
        "model": model or tr.echo["model"], "output": output,
        "parallel_tool_calls": tr.echo["parallel_tool_calls"],
        "previous_response_id": tr.echo["previous_response_id"],
        "reasoning": {"effort": None, "summary": None}, "store": tr.echo["store"],
        "temperature": tr.echo["temperature"], "text": tr.echo["text"], "tool_choice": tr.echo["tool_choice"],
        "tools": tr.echo["tools"], "top_p": tr.echo["top_p"], "truncation": "disabled", "usage": usage,
        "user": tr.echo["user"], "metadata": tr.echo["metadata"],
    }


def _call_item(tr: Translation, call_id: str, chat_name: str, arguments: str, status: str,
               item_id: str | None = None) -> dict[str, Any]:
    namespace, name, kind = tr.names.get(chat_name, (None, chat_name, "function"))
    item: dict[str, Any]
    if kind == "custom":
        try:
            value = json.loads(arguments).get("input", arguments)
        except (ValueError, AttributeError):
            value = arguments
        item = {"type": "custom_tool_call", "id": item_id or _new_id("ctc"), "call_id": call_id, "name": name,
                "input": value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), "status": status}
    else:
        item = {"type": "function_call", "id": item_id or _new_id("fc"), "call_id": call_id, "name": name,
                "arguments": arguments, "status": status}
    if namespace:
        item["namespace"] = namespace
    return item


def _message_item(item_id: str, text: str | None, refusal: str | None, status: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _finish(finish_reason: Any) -> tuple[str, str | None]:
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def _assistant_turn(text: str | None, refusal: str | None, calls: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if refusal:
        message["refusal"] = refusal
    if calls:
        message["tool_calls"] = calls
    return message


def response_from_chat(completion: Any, tr: Translation, response_id: str, created: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Response object, the assistant message to store) for a non-streamed chat completion."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")
    choice = choices[0]
    message = _obj(choice.get("message"))
    status, reason = _finish(choice.get("finish_reason"))
    output: list[dict[str, Any]] = []
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal:
        output.append(_message_item(_new_id("msg"), text if isinstance(text, str) else None,
                                    refusal if isinstance(refusal, str) else None, status))
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict) and isinstance(c.get("function"), dict)]
    for call in calls:
        fn = call["function"]
        output.append(_call_item(tr, str(call.get("id") or _new_id("call")), str(fn.get("name") or ""),
                                 fn.get("arguments") if isinstance(fn.get("arguments"), str) else "{}", "completed"))
    body = _response(response_id, created, tr, status=status, output=output, usage=_usage(completion.get("usage")),
                     incomplete=reason, model=completion.get("model") if isinstance(completion.get("model"), str) else None)
    return body, _assistant_turn(text if isinstance(text, str) else None, refusal if isinstance(refusal, str) else None, calls)


@dataclass
class _OpenCall:
    output_index: int
    item_id: str
    call_id: str
    name: str
    arguments: str = ""


class StreamTranslator:
    """Chat completion chunks in, Responses stream events out (each a dict with ``type`` and ``sequence_number``)."""

    def __init__(self, tr: Translation, response_id: str, created: int) -> None:
        self.tr, self.response_id, self.created = tr, response_id, created
        self.sequence = 0
        self.output: list[dict[str, Any] | None] = []
        self.message: tuple[int, str] | None = None  # (output_index, item id) of the open message item
        self.text: str | None = None
        self.refusal = ""
        self.calls: dict[int, _OpenCall] = {}
        self.finish_reason: Any = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.ended = False
        self.final_turn: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        response = _response(self.response_id, self.created, self.tr, status="in_progress", output=[])
        return [self._event("response.created", response=response),
                self._event("response.in_progress", response=response)]

    def _open_message(self) -> list[dict[str, Any]]:
        if self.message is not None:
            return []
        index, item_id = len(self.output), _new_id("msg")
        self.output.append(None)
        self.message, self.text = (index, item_id), ""
        return [self._event("response.output_item.added", output_index=index,
                            item=_message_item(item_id, None, None, "in_progress")),
                self._event("response.content_part.added", item_id=item_id, output_index=index, content_index=0,
                            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})]

    def _close_message(self, status: str) -> list[dict[str, Any]]:
        if self.message is None:
            return []
        index, item_id = self.message
        text = self.text or ""
        events = [
            self._event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                        text=text, logprobs=[]),
            self._event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                        part={"type": "output_text", "text": text, "annotations": [], "logprobs": []}),
        ]
        if self.refusal:
            events.append(self._event("response.refusal.done", item_id=item_id, output_index=index, content_index=1,
                                      refusal=self.refusal))
        item = _message_item(item_id, text, self.refusal or None, status)
        self.output[index] = item
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def feed(self, chunk: Any) -> list[dict[str, Any]]:
        """One decoded chat chunk (a dict)."""
        events: list[dict[str, Any]] = []
        if not isinstance(chunk, dict) or self.ended:
            return events
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _obj(choice.get("delta"))
            content = delta.get("content")
            if isinstance(content, str) and content:
                events += self._open_message()
                assert self.message is not None
                self.text = (self.text or "") + content
                events.append(self._event("response.output_text.delta", item_id=self.message[1],
                                          output_index=self.message[0], content_index=0, delta=content, logprobs=[]))
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                events += self._open_message()
                assert self.message is not None
                self.refusal += refusal
                events.append(self._event("response.refusal.delta", item_id=self.message[1],
                                          output_index=self.message[0], content_index=1, delta=refusal))
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    events += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = call.get("index", 0)
        fn = _obj(call.get("function"))
        open_call = self.calls.get(index)
        if open_call is None:
            status, _ = _finish(None)
            events += self._close_message(status)  # text before the calls is complete
            open_call = _OpenCall(len(self.output), "", str(call.get("id") or _new_id("call")), str(fn.get("name") or ""))
            item = _call_item(self.tr, open_call.call_id, open_call.name, "", "in_progress")
            open_call.item_id = item["id"]
            self.output.append(None)
            self.calls[index] = open_call
            events.append(self._event("response.output_item.added", output_index=open_call.output_index, item=item))
        elif fn.get("name") and not open_call.name:
            open_call.name = str(fn["name"])
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            open_call.arguments += piece
            kind = self.tr.names.get(open_call.name, (None, open_call.name, "function"))[2]
            if kind == "function":  # a custom tool's input is only known whole (it is unwrapped from JSON)
                events.append(self._event("response.function_call_arguments.delta", item_id=open_call.item_id,
                                          output_index=open_call.output_index, delta=piece))
        return events

    def _close_calls(self, status: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for call in sorted(self.calls.values(), key=lambda c: c.output_index):
            item = _call_item(self.tr, call.call_id, call.name, call.arguments, status, call.item_id)
            if item["type"] == "function_call":
                events.append(self._event("response.function_call_arguments.done", item_id=call.item_id,
                                          output_index=call.output_index, name=item["name"], arguments=call.arguments))
            else:
                events.append(self._event("response.custom_tool_call_input.done", item_id=call.item_id,
                                          output_index=call.output_index, input=item["input"]))
            self.output[call.output_index] = item
            events.append(self._event("response.output_item.done", output_index=call.output_index, item=item))
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The stream's ``[DONE]``: close what is open and complete the response."""
        if self.ended:
            return []
        self.ended = True
        status, reason = _finish(self.finish_reason)
        item_status = "completed" if status == "completed" else "incomplete"
        events = self._close_message(item_status) + self._close_calls(item_status)
        output = [item for item in self.output if item is not None]
        response = _response(self.response_id, self.created, self.tr, status=status, output=output,
                             usage=self.usage, incomplete=reason, model=self.model)
        calls = [{"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                 for c in sorted(self.calls.values(), key=lambda c: c.output_index)]
        self.final_turn = _assistant_turn(self.text, self.refusal or None, calls)
        events.append(self._event("response.completed" if status == "completed" else "response.incomplete",
                                  response=response))
        return events

    def fail(self, code: str, message: str) -> list[dict[str, Any]]:
        """A relay error or a cut inside the stream: the response failed (clients raise or retry on it)."""
        if self.ended:
            return []
        self.ended = True
        output = [item for item in self.output if item is not None]
        response = _response(self.response_id, self.created, self.tr, status="failed", output=output,
                             usage=self.usage, error={"code": code, "message": message}, model=self.model)
        return [self._event("response.failed", response=response)]


def _sse(event: dict[str, Any]) -> bytes:
    return (f"event: {event['type']}\ndata: ".encode() + json.dumps(event, ensure_ascii=False).encode("utf-8")
            + b"\n\n")


class _ChunkDecoder:
    """Chat completion SSE bytes → JSON payloads (``[DONE]`` as the string ``"[DONE]"``), by the SDK's one SSE
    decoder."""

    def __init__(self) -> None:
        self.events = SSEDecoder()

    def feed(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        for event in self.events.feed(data):
            if event.is_done:
                out.append("[DONE]")
            elif event.data.strip():
                payload = event.json()
                if payload is None:
                    log.debug("undecodable chat chunk skipped")
                else:
                    out.append(payload)
        return out


# -- the endpoint --------------------------------------------------------------------------------------------------
def _stream_error(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) when a decoded chunk is an error (a relay envelope, or the proxy's own error event)."""
    if "choices" in payload:
        return None
    answer = parse_relay_error(payload)
    if answer is not None:
        payload = relay_error_body(answer)
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or "upstream_error"), str(error.get("message") or "")
    return None


class ResponsesEndpoint:
    """``POST /v1/responses``: translate, hand the chat request to the proxy, translate its answer as it arrives."""

    def __init__(self, proxy: Any, store: ResponseStore | None = None) -> None:
        self.proxy = proxy
        self.store = store if store is not None else ResponseStore()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope[BODY] if BODY in scope else await read_body(receive)  # the guard read (and parsed) it already
        if raw is None:
            return
        try:
            try:
                body = scope[PARSED_BODY] if PARSED_BODY in scope else json.loads(raw or b"null")
            except ValueError:
                raise ResponsesError("请求体不是合法的 JSON", "the request body is not valid JSON",
                                     code="invalid_json") from None
            tr = to_chat(body, self.store)
        except ResponsesError as error:
            log.warning("%s", refusal_line(scope["method"], scope["path"], error.status, error.code,
                                           Text(error.zh, error.en)))
            await _answer(send, error.status, error.body(), [(b"x-should-retry", b"false")])
            return
        if tr.dropped:
            dropped, app = ", ".join(tr.dropped), scope.get("baicai.app")
            log.info("%s", Text(f"responses -> chat（app={app}）：已略去 {dropped}",
                                f"responses -> chat (app={app}): dropped {dropped}"))
        response_id, created = _new_id("resp"), int(time.time())
        chat_body = json.dumps(tr.chat, ensure_ascii=False).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(chat_body)).encode()),
                   (b"accept", b"text/event-stream" if tr.chat.get("stream") else b"application/json")]
        inner = dict(scope)
        inner.update(path="/v1/chat/completions", raw_path=b"/v1/chat/completions", query_string=b"",
                     headers=headers)
        inner[BODY], inner[PARSED_BODY] = chat_body, tr.chat  # the chat request, not the Responses one
        inner[APP_PATH] = scope["path"]  # the console says what the app called
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": chat_body, "more_body": False}
            return await receive()

        relay = _Relay(self, tr, send, response_id, created)
        await self.proxy(inner, replay, relay.send)


class _Relay:
    """The proxy's ``send``, turned into the Responses answer."""

    def __init__(self, endpoint: ResponsesEndpoint, tr: Translation, send: Send, response_id: str, created: int) -> None:
        self.endpoint, self.tr, self.downstream = endpoint, tr, send
        self.response_id, self.created = response_id, created
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.mode = ""  # "stream" | "body" | "error"
        self.buffer: list[bytes] = []
        self.decoder = _ChunkDecoder()
        self.stream: StreamTranslator | None = None
        self.closed = False

    def _extra_headers(self) -> list[tuple[bytes, bytes]]:
        keep = {b"x-request-id", b"retry-after", b"retry-after-ms", b"x-should-retry", b"x-baicai-local-quota"}
        extra = [(k, v) for k, v in self.headers if k.lower() in keep]
        if self.tr.dropped:
            extra.append((DROPPED_HEADER.encode(), ",".join(self.tr.dropped)[:1000].encode("latin-1", "replace")))
        return extra

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
            ctype = dict((k.lower(), v) for k, v in self.headers).get(b"content-type", b"")
            if self.status < 400 and ctype.split(b";")[0].strip() == b"text/event-stream":
                self.mode = "stream"
                self.stream = StreamTranslator(self.tr, self.response_id, self.created)
                await self.downstream({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"), *self._extra_headers()]})
                await self._emit(self.stream.start())
            else:
                self.mode = "error" if self.status >= 400 else "body"
            return
        if message["type"] != "http.response.body":
            return
        data = message.get("body", b"")
        if self.mode == "stream":
            assert self.stream is not None
            events: list[dict[str, Any]] = []
            for payload in self.decoder.feed(data):
                if payload == "[DONE]":
                    events += self.stream.finish()
                elif isinstance(payload, dict):
                    failed = _stream_error(payload)
                    events += self.stream.fail(*failed) if failed else self.stream.feed(payload)
            await self._emit(events)
            if not message.get("more_body", False):
                await self._end_stream()
        else:
            self.buffer.append(data)
            if not message.get("more_body", False):
                await self._end_body()

    async def _emit(self, events: list[dict[str, Any]]) -> None:
        if events:
            await self.downstream({"type": "http.response.body", "body": b"".join(_sse(e) for e in events),
                                   "more_body": True})

    async def _end_stream(self) -> None:
        if self.closed:
            return
        self.closed = True
        assert self.stream is not None
        if not self.stream.ended:  # the proxy ends cut streams with an error event; this is a last guard
            await self._emit(self.stream.fail("upstream_incomplete", str(Text("白菜GPT中转的流式回答未正常结束", "the relay's stream ended early"))))
        elif self.stream.final_turn is not None and self.tr.store:
            self.endpoint.store.put(self.response_id, [*self.tr.conversation, self.stream.final_turn])
        await self.downstream({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_body(self) -> None:
        if self.closed:
            return
        self.closed = True
        body = b"".join(self.buffer)
        if self.mode == "error":
            # Already OpenAI's error shape (the proxy rewrote relay envelopes): the Responses API uses the same.
            await _answer(self.downstream, self.status, body, self._extra_headers())
            return
        try:
            completion = json.loads(body)
            response, turn = response_from_chat(completion, self.tr, self.response_id, self.created)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            # the proxy's own line said 200 (the relay's status): this says what the app got instead
            log.warning("%s", Text("Responses：中转的回答不是 Chat Completions 格式，应用收到 502 upstream_invalid_answer",
                                   "Responses: the relay's answer is not a chat completion; the app got "
                                   "502 upstream_invalid_answer"))
            await _answer(self.downstream, 502, openai_error_body(
                "白菜GPT中转的回答不是 Chat Completions 格式，无法转换为 Responses",
                "the relay's answer is not a chat completion; it cannot be turned into a Response",
                type="baicai_sidecar_upstream", code="upstream_invalid_answer"), self._extra_headers())
            return
        if self.tr.store:
            self.endpoint.store.put(self.response_id, [*self.tr.conversation, turn])
        await _answer(self.downstream, 200, json.dumps(response, ensure_ascii=False).encode("utf-8"),
                      self._extra_headers())


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
