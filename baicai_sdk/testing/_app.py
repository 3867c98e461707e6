"""The relay emulator as a pure ASGI app (no starlette: the SDK must not depend on it).

It answers like the BaicaiGPT relay described in ``shared/RELAY.md``: OpenAI's endpoints for ``baicai-…``
keys, the relay's own error codes from their real causes, per key *and* per IP hourly windows on a
controllable clock (see ``_state`` for the exact window rule), CNY prices from the catalogue, balances on
paid keys, the one-api/new-api billing endpoints, and injected faults. Every relay error can be sent in each
undocumented envelope, with HTTP 200 or with the code's matching status. Errors that a real relay would
pass through from OpenAI (bad JSON, context too long, bad image size…) always use OpenAI's own shape.

Order of checks (the relay's is undocumented; this one is plausible and each code stays reachable):
route (48004) → Authorization (41001, 40038, 40001, 40243) → burst (45011) → busy (-1) → body (40039) →
``model`` (48002, 48001) → tier (40050, 48005) → balance → context length → hourly requests, then tokens.

Admin routes live outside ``/v1`` and are never relay traffic: ``GET /_emulator/state``,
``POST /_emulator/clock`` (``{"advance": s}``, ``{"set": t}``, ``{"freeze": true}``), ``POST /_emulator/config``
(any :class:`EmulatorConfig` field; ``faults`` as its spec string), ``POST /_emulator/reset``. Generated images
are served at ``GET /files/<id>.png`` without a key, like OpenAI's blob URLs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .._catalog import Catalog, ChatModel, ImageModel, load_catalog
from .._codes import RELAY_CODES
from .._serving import answer_lifespan
from ._clock import Clock
from ._config import EmulatorConfig
from ._png import make_png
from ._replies import Reply, build_reply, count_completion_text, count_prompt
from ._state import EmulatorState, RequestRecord

__all__ = ["RelayEmulator", "ConnectionReset"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MODEL_CREATED = 1677610602
_RATE_CODES = {
    ("free", "gpt-3.5"): 40020,
    ("free", "gpt-4"): 40021,
    ("paid", "gpt-3.5"): 40022,
    ("paid", "gpt-4"): 40023,
    ("paid", "dall-e-2"): 40040,
    ("paid", "dall-e-3"): 40041,
}
_TOKEN_CODES = {("free", "gpt-3.5"): 40031, ("free", "gpt-4"): 40032}
_IMAGE_SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
}
_ARG_PIECE = 12  # characters of tool-call arguments per stream chunk


class ConnectionReset(Exception):
    """Raised inside a stream to make the server drop the connection mid-body (fault ``reset``)."""


class _RelayError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _OpenAIError(Exception):
    """An error the relay would pass through from OpenAI unchanged (always OpenAI's envelope and status)."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param


@dataclass
class _Request:
    scope: Scope
    receive: Receive
    send: Send
    headers: dict[str, str]
    body: bytes
    record: RequestRecord
    key: str = ""
    tier: str = ""
    wants_stream: bool = False
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    abandoned: bool = False
    """The client left before the answer began (``slow`` fault): served and billed anyway."""

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            raise _RelayError(40039)
        try:
            data = json.loads(self.body)
        except ValueError:
            raise _OpenAIError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly.)",
            ) from None
        if not isinstance(data, dict):
            raise _OpenAIError(400, "The request body must be a JSON object.")
        return data


class RelayEmulator:
    """The ASGI app. Holds config, clock and state; all three may be changed while it serves."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None,
                 catalog: Catalog | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or Clock(self.config.clock_offset)
        self._fixed_catalog = catalog
        self.catalog = catalog or load_catalog()
        self._lock = threading.RLock()
        self._serial = 0
        self.reset()

    # --- control (thread-safe: tests call these from their own thread)
    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Forget every request, window, balance and image; optionally switch to ``config``.

        The catalogue is read again (unless one was given): a test's own ``catalog.json`` override in its
        ``BAICAI_HOME`` — a relay that changed prices or added a model — applies to the shared emulator too.
        """
        with self._lock:
            self.catalog = self._fixed_catalog or load_catalog(fresh=True)
            if config is not None:
                self.config = config
                self.clock.reset(config.clock_offset)
            keys = self.config.keys or {}
            self.state = EmulatorState([k for k, t in keys.items() if t == "paid"], self.config.paid_balance)
            self._rng = random.Random(self._seed())

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change settings in place (``faults`` may be a spec string); windows and balances are kept."""
        with self._lock:
            old = self.config
            self.config = old.replace(**changes)
            if "clock_offset" in changes:
                self.clock.reset(self.config.clock_offset)
            if "faults" in changes or "seed" in changes:
                self._rng = random.Random(self._seed())
            for key, tier in (self.config.keys or {}).items():
                if tier == "paid" and key not in (old.keys or {}):
                    self.state.set_balance(key, self.config.paid_balance)
            return self.config

    def _seed(self) -> int:
        faults_seed = self.config.faults.seed
        return self.config.seed if faults_seed is None else faults_seed

    # --- ASGI entry
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_emulator/"):
            await self._admin(scope, receive, send)
            return
        if path.startswith("/files/") and scope["method"] in ("GET", "HEAD"):
            await self._file(scope, send)
            return
        await self._relay(scope, receive, send)

    # --- relay traffic
    def _client_ip(self, scope: Scope, headers: dict[str, str]) -> str:
        forwarded = headers.get("x-forwarded-for")
        if self.config.trust_forwarded_for and forwarded:
            return forwarded.split(",")[0].strip()
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def _relay(self, scope: Scope, receive: Receive, send: Send) -> None:
        send = _marked(send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = await _read_body(receive)
        with self._lock:
            self._serial += 1
        record = RequestRecord(
            time=self.clock.now(),
            method=scope["method"],
            path=scope["path"],
            authorization=headers.get("authorization"),
            client_ip=self._client_ip(scope, headers),
        )
        req = _Request(scope, receive, send, headers, body, record)
        req.wants_stream = b'"stream"' in body and _asks_stream(body)
        # Recorded now and filled in as the request goes: by the time a client has read the last byte of
        # its answer, the record (status, code, tokens, cost) is complete.
        self.state.record(record)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, req.disconnected))
        try:
            await self._dispatch(req)
            if req.abandoned and req.record.outcome == "ok":
                req.record.outcome = "abandoned"  # served (and billed) after the client had gone
        except _RelayError as exc:
            await self._send_relay_error(req, exc.code)
        except _OpenAIError as exc:
            await self._send_openai_error(req, exc)
        finally:
            watcher.cancel()
            record.finished = True

    async def _dispatch(self, req: _Request) -> None:
        faults = self.config.faults
        if faults.latency > 0:  # before every relay answer, errors included
            try:
                await asyncio.wait_for(req.disconnected.wait(), faults.latency)
            except asyncio.TimeoutError:
                pass
            else:
                # The client left while the "model" was still working: a relay stops there, and nothing was
                # produced or billed. Tests check that a proxy passes an app's disconnect on (issue 14).
                req.record.outcome = "cancelled"
                req.record.status = 499
                return
        if faults.slow > 0:
            # The upstream model is slow, and the relay does not stop when its client leaves: what it serves is
            # billed though nobody reads it (an app's read timeout is a bill, not a refund).
            await asyncio.sleep(faults.slow)
            req.abandoned = req.disconnected.is_set()
        method, path = req.scope["method"], req.scope["path"].rstrip("/") or "/"
        handler = self._route(method, path)
        if handler is None:
            raise _RelayError(48004)
        self._authenticate(req)
        now = self.clock.now()
        if faults.burst is not None and self.state.burst_count(req.key, now) > faults.burst:
            raise _RelayError(45011)
        if faults.busy > 0:
            with self._lock:
                roll = self._rng.random()
            if roll < faults.busy:
                raise _RelayError(-1)
        await handler(req)

    def _route(self, method: str, path: str) -> Callable[[_Request], Awaitable[None]] | None:
        if method == "GET" and path == "/v1/models":
            return self._models
        if method == "GET" and path.startswith("/v1/models/") and path.count("/") == 3:
            return self._model
        if method == "POST" and path == "/v1/chat/completions":
            return self._chat
        if method == "POST" and path == "/v1/images/generations":
            return self._images
        if method == "GET" and path in ("/v1/dashboard/billing/subscription", "/dashboard/billing/subscription"):
            return self._subscription
        if method == "GET" and path in ("/v1/dashboard/billing/usage", "/dashboard/billing/usage"):
            return self._usage
        return None

    def _authenticate(self, req: _Request) -> None:
        header = req.headers.get("authorization")
        if header is None:
            raise _RelayError(41001)
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
            raise _RelayError(40038)
        tier = (self.config.keys or {}).get(token)
        if tier is None:
            raise _RelayError(40001)
        req.key, req.tier = token, tier
        req.record.key_tier = tier
        if tier == "frozen":
            raise _RelayError(40243)

    # --- endpoints
    def _model_object(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": _MODEL_CREATED, "owned_by": "openai"}

    def _model_names(self) -> list[str]:
        return sorted([*self.catalog.chat_models, *self.catalog.image_models])

    async def _models(self, req: _Request) -> None:
        data = [self._model_object(n) for n in self._model_names()]
        await self._send_json(req, 200, {"object": "list", "data": data})

    async def _model(self, req: _Request) -> None:
        name = req.scope["path"].rstrip("/").rsplit("/", 1)[1]
        if name not in self._model_names():
            raise _RelayError(48001)
        await self._send_json(req, 200, self._model_object(name))

    def _require_model(self, req: _Request, body: dict[str, Any]) -> str:
        model = body.get("model")
        if not model or not isinstance(model, str):
            raise _RelayError(48002)
        req.record.model = model
        return model

    def _check_balance(self, req: _Request) -> None:
        if req.tier == "paid" and self.state.balance(req.key) <= 0:
            raise _OpenAIError(
                429,
                "余额不足，请充值后再试。 / You exceeded your current quota: the key's balance is used up; top up to continue.",
                type="insufficient_quota",
                code="insufficient_quota",
            )

    def _admit(self, req: _Request, family: str, prompt_tokens: int) -> Any:
        """Check the key's and the IP's hourly windows; on success the request is counted in both."""
        with self.state.lock:
            now = self.clock.now()
            code = self._window_code(req.tier, family, req.key, req.record.client_ip, prompt_tokens, now)
            if code is not None:
                raise _RelayError(code)
            return self.state.admit(family, req.key, req.record.client_ip, now)

    def _window_code(self, tier: str, family: str, key: str, ip: str, prompt_tokens: int, now: float) -> int | None:
        limits = self.catalog.limits_for(family, tier)  # type: ignore[arg-type]
        if limits is None:
            return 40050
        by_key, by_ip, tokens_key, tokens_ip = self.state.window_use(family, key, ip, now)
        if limits.requests_per_hour is not None and max(by_key, by_ip) >= limits.requests_per_hour:
            return _RATE_CODES[(tier, family)]
        if limits.tokens_per_hour is not None and max(tokens_key, tokens_ip) + prompt_tokens > limits.tokens_per_hour:
            return _TOKEN_CODES[(tier, family)]
        return None

    def quota_refusal(self, key: str, model: str, *, prompt_tokens: int = 0, client_ip: str = "127.0.0.1"
                      ) -> int | None:
        """The code the hourly windows would answer ``key``'s request for ``model`` now (40020…, 40050), or None
        when it would be admitted. Nothing is counted: tests use it to tell a client's local refusal that the relay
        would have made too from one it would not have."""
        tier = (self.config.keys or {}).get(key)
        chat, image = self.catalog.chat(model), self.catalog.image(model)
        family = chat.family if chat is not None else image.family if image is not None else None
        if tier not in ("free", "paid") or family is None:
            return None
        if tier == "free" and not (chat.free if chat is not None else image.free):  # type: ignore[union-attr]
            return 40050
        return self._window_code(tier, family, key, client_ip, prompt_tokens, self.clock.now())

    async def _chat(self, req: _Request) -> None:
        body = req.json()
        name = self._require_model(req, body)
        model = self.catalog.chat(name)
        if model is None or name in self.catalog.unsupported:
            raise _RelayError(48001)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _OpenAIError(400, "[] is too short - 'messages'" if messages == [] else
                               "'messages' is a required property", param="messages")
        stream = bool(body.get("stream"))
        req.record.stream = stream
        if req.tier == "free" and not model.free:
            raise _RelayError(40050)
        if stream and req.tier == "free" and not self.config.free_stream:
            raise _RelayError(48005)
        self._check_balance(req)
        prompt_tokens = count_prompt(body, name)
        req.record.prompt_tokens = prompt_tokens
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        wanted = int(limit) if isinstance(limit, (int, float)) else 0
        if model.context is not None and prompt_tokens + wanted > model.context:
            raise _OpenAIError(
                400,
                f"This model's maximum context length is {model.context} tokens. However, you requested "
                f"{prompt_tokens + wanted} tokens ({prompt_tokens} in the messages, {wanted} in the completion). "
                "Please reduce the length of the messages or completion.",
                code="context_length_exceeded",
                param="messages",
            )
        use = self._admit(req, model.family, prompt_tokens)
        reply = build_reply(body, name, self.config.reply_tokens)
        n_raw = body.get("n")
        n = n_raw if isinstance(n_raw, int) and not isinstance(n_raw, bool) and 0 < n_raw <= 128 else 1
        settled = False

        def settle(completion_tokens: int) -> None:
            nonlocal settled
            if not settled:
                settled = True
                self._settle(req, model, use, prompt_tokens, completion_tokens)

        if stream:
            await self._stream_chat(req, body, name, reply, n, prompt_tokens, settle)
        else:
            settle(reply.completion_tokens * n)
            await self._send_json(req, 200, self._completion(req, name, reply, n, prompt_tokens))

    def _settle(self, req: _Request, model: ChatModel, use: Any, prompt_tokens: int, completion_tokens: int) -> None:
        self.state.charge_tokens(use, prompt_tokens + completion_tokens)
        cost = model.cost(prompt_tokens, completion_tokens) if req.tier == "paid" else 0.0
        self.state.spend(req.key, cost)
        req.record.completion_tokens = completion_tokens
        req.record.cost = cost

    def _ids(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-emu{self._serial:06d}{secrets.token_hex(4)}"

    def _message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_call is not None:
            call = reply.tool_call
            if reply.legacy_function:
                message["function_call"] = {"name": call["name"], "arguments": call["arguments"]}
            else:
                message["tool_calls"] = [{"id": call["id"], "type": "function",
                                          "function": {"name": call["name"], "arguments": call["arguments"]}}]
        return message

    def _completion(self, req: _Request, model: str, reply: Reply, n: int, prompt_tokens: int) -> dict[str, Any]:
        completion = reply.completion_tokens * n
        return {
            "id": self._ids("chatcmpl"),
            "object": "chat.completion",
            "created": int(self.clock.now()),
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {"index": i, "message": self._message(reply), "logprobs": None, "finish_reason": reply.finish_reason}
                for i in range(n)
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion},
        }

    async def _stream_chat(self, req: _Request, body: dict[str, Any], model: str, reply: Reply, n: int,
                           prompt_tokens: int, settle: Callable[[int], None]) -> None:
        """Send the reply as SSE. ``settle`` gets the completion tokens actually sent (what the relay charges),
        before the last byte goes out, also when the stream is cut short."""
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        faults = self.config.faults
        delay = max(self.config.chunk_delay, faults.chunk_delay)
        ident, created = self._ids("chatcmpl"), int(self.clock.now())

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": None,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                payload["usage"] = None
            return _sse(payload)

        await req.send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
            (b"x-request-id", ident.encode()),
        ]})
        req.record.status = 200
        sent_text: list[str] = ["" for _ in range(n)]
        sent_tool_tokens = 0
        content_chunks = 0
        for index in range(n):
            deltas: list[dict[str, Any]] = []
            call = reply.tool_call
            if call is None:
                first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
                deltas = [{"content": piece} for piece in reply.pieces]
            elif reply.legacy_function:
                first = {"role": "assistant", "content": None, "function_call": {"name": call["name"], "arguments": ""}}
                deltas = [{"function_call": {"arguments": p}} for p in _split(call["arguments"])]
            else:
                first = {"role": "assistant", "content": None, "tool_calls": [
                    {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
                ]}
                deltas = [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in _split(call["arguments"])]
            await req.send({"type": "http.response.body", "body": chunk(index, first), "more_body": True})
            for delta in deltas:
                if delay > 0:
                    await asyncio.sleep(delay)
                if req.disconnected.is_set():
                    # Like a relay: the upstream model had generated this delta too before the disconnect was
                    # noticed, so it is billed although it never reached the client.
                    req.record.outcome = "disconnected"
                    generated = list(sent_text)
                    generated[index] += delta.get("content") or ""
                    settle(self._sent_tokens(model, generated, sent_tool_tokens))
                    return
                if faults.truncate is not None and content_chunks >= faults.truncate:
                    req.record.outcome = "truncated"
                    settle(self._sent_tokens(model, sent_text, sent_tool_tokens))
                    await req.send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                if faults.stream_error is not None and content_chunks >= faults.stream_error:
                    req.record.outcome, req.record.relay_code = "stream_error", -1
                    settle(self._sent_tokens(model, sent_text, sent_tool_tokens))
                    await req.send({"type": "http.response.body", "body": _sse(self._relay_error_payload(-1)),
                                    "more_body": False})
                    return
                if faults.reset is not None and content_chunks >= faults.reset:
                    req.record.outcome = "reset"
                    settle(self._sent_tokens(model, sent_text, sent_tool_tokens))
                    raise ConnectionReset("fault injection: connection reset mid-stream")
                await req.send({"type": "http.response.body", "body": chunk(index, delta), "more_body": True})
                content_chunks += 1
                if "content" in delta:
                    sent_text[index] += delta["content"]
            if call is not None:
                sent_tool_tokens += reply.completion_tokens
            await req.send({"type": "http.response.body", "body": chunk(index, {}, reply.finish_reason),
                            "more_body": True})
        completion = self._sent_tokens(model, sent_text, sent_tool_tokens)
        settle(completion)
        if include_usage:
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                     "total_tokens": prompt_tokens + completion}
            payload = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                       "system_fingerprint": None, "choices": [], "usage": usage}
            await req.send({"type": "http.response.body", "body": _sse(payload), "more_body": True})
        await req.send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    def _sent_tokens(self, model: str, texts: list[str], tool_tokens: int) -> int:
        """Completion tokens of what reached the client, each choice counted on its own (as n>1 is billed)."""
        return sum(count_completion_text(t, model) for t in texts if t) + tool_tokens

    async def _images(self, req: _Request) -> None:
        body = req.json()
        name = self._require_model(req, body)
        model = self.catalog.image(name)
        if model is None or name in self.catalog.unsupported:
            raise _RelayError(48001)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _OpenAIError(400, "'prompt' is a required property", param="prompt")
        if req.tier == "free" and not model.free:
            raise _RelayError(40050)
        n, size, quality, fmt = self._image_params(model, body)
        self._check_balance(req)
        self._admit(req, model.family, 0)
        price = model.price(size, quality if model.name == "dall-e-3" else "standard") or 0.0
        width, height = (int(x) for x in size.split("x"))
        data = []
        for i in range(n):
            digest = hashlib.sha256(f"{prompt}\n{i}".encode()).digest()
            colour = (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)
            image_id = secrets.token_hex(8)
            item: dict[str, Any] = {}
            if fmt == "b64_json":
                item["b64_json"] = base64.b64encode(make_png(width, height, colour)).decode("ascii")
            else:
                self.state.images[image_id] = (width, height, colour)
                item["url"] = f"{_origin(req)}/files/{image_id}.png"
            if model.name == "dall-e-3":
                item["revised_prompt"] = prompt
            data.append(item)
        cost = price * n if req.tier == "paid" else 0.0
        self.state.spend(req.key, cost)
        req.record.images, req.record.cost = n, cost
        await self._send_json(req, 200, {"created": int(self.clock.now()), "data": data})

    def _image_params(self, model: ImageModel, body: dict[str, Any]) -> tuple[int, str, str, str]:
        n = body.get("n", 1)
        if n is None:
            n = 1
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            raise _OpenAIError(400, f"{n!r} is not valid under any of the given schemas - 'n'", param="n")
        if model.name == "dall-e-3" and n != 1:
            raise _OpenAIError(400, "You must provide n=1 for this model.", param="n")
        size = body.get("size") or "1024x1024"
        allowed = _IMAGE_SIZES.get(model.name, tuple(model.prices.get("standard", {})))
        if size not in allowed:
            raise _OpenAIError(400, f"'{size}' is not one of {list(allowed)} - 'size'", param="size")
        quality = body.get("quality") or "standard"
        if quality not in ("standard", "hd"):
            raise _OpenAIError(400, f"'{quality}' is not one of ['standard', 'hd'] - 'quality'", param="quality")
        fmt = body.get("response_format") or "url"
        if fmt not in ("url", "b64_json"):
            raise _OpenAIError(400, f"'{fmt}' is not one of ['url', 'b64_json'] - 'response_format'",
                               param="response_format")
        return n, size, quality, fmt

    async def _subscription(self, req: _Request) -> None:
        granted = self.state.total_granted(req.key)
        await self._send_json(req, 200, {
            "object": "billing_subscription",
            "has_payment_method": req.tier == "paid",
            "soft_limit_usd": granted,
            "hard_limit_usd": granted,
            "system_hard_limit_usd": granted,
            "access_until": 0,
            "plan": {"title": req.tier, "id": req.tier},
        })

    async def _usage(self, req: _Request) -> None:
        spent = self.state.spent(req.key)
        await self._send_json(req, 200, {"object": "list", "daily_costs": [], "total_usage": round(spent * 100, 6)})

    # --- answers
    async def _send_json(self, req: _Request, status: int, payload: object,
                         extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        req.record.status = status
        await _send_bytes(req.send, status, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                          [(b"content-type", b"application/json"), *(extra_headers or [])])

    async def _send_relay_error(self, req: _Request, code: int) -> None:
        known = RELAY_CODES[code]
        payload = self._relay_error_payload(code)
        status = known.http_status if self.config.error_status == "http" else 200
        req.record.relay_code = code
        req.record.outcome = "error"
        if req.wants_stream and self.config.stream_errors == "sse":
            req.record.status = status
            await _send_bytes(req.send, status, _sse(payload), [(b"content-type", b"text/event-stream; charset=utf-8")])
            return
        await self._send_json(req, status, payload)

    def _relay_error_payload(self, code: int) -> dict[str, Any]:
        known = RELAY_CODES[code]
        style = self.config.error_style
        if style == "code-msg":
            return {"code": code, "msg": known.message.render("both")}
        if style == "errcode":
            return {"errcode": code, "errmsg": known.message.render("both")}
        return {"error": {"message": known.message.render("both"), "type": "baicai_error", "param": None,
                          "code": str(code) if style == "openai-str" else code}}

    async def _send_openai_error(self, req: _Request, exc: _OpenAIError) -> None:
        req.record.outcome = "error"
        await self._send_json(req, exc.status, {"error": {"message": exc.message, "type": exc.type,
                                                          "param": exc.param, "code": exc.code}})

    # --- files and admin
    async def _file(self, scope: Scope, send: Send) -> None:
        name = scope["path"][len("/files/"):]
        spec = self.state.images.get(name[:-4]) if name.endswith(".png") else None
        if spec is None:
            await _send_bytes(send, 404, b'{"error": {"message": "no such file", "type": "not_found"}}',
                              [(b"content-type", b"application/json")])
            return
        width, height, colour = spec
        await _send_bytes(send, 200, make_png(width, height, colour), [(b"content-type", b"image/png")])

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        path, method = scope["path"].rstrip("/"), scope["method"]
        refusal = _admin_refusal(scope, method, body)
        if refusal is not None:
            status, message = refusal
            await _send_bytes(send, status, json.dumps({"error": message}).encode(),
                              [(b"content-type", b"application/json")])
            return
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            if path == "/_emulator/state" and method == "GET":
                result: dict[str, Any] = self.snapshot()
            elif path == "/_emulator/clock" and method == "POST":
                if "set" in data:
                    self.clock.set(float(data["set"]))
                if data.get("freeze"):
                    self.clock.freeze()
                if "advance" in data:
                    self.clock.advance(float(data["advance"]))
                result = {"now": self.clock.now(), "offset": self.clock.offset, "frozen": self.clock.frozen}
            elif path == "/_emulator/config" and method == "POST":
                result = self.configure(**data).public()
            elif path == "/_emulator/reset" and method == "POST":
                self.reset()
                result = {"ok": True}
            else:
                await _send_bytes(send, 404, b'{"error": "unknown admin route"}', [(b"content-type", b"application/json")])
                return
        except (ValueError, TypeError) as exc:
            payload = json.dumps({"error": str(exc)}, ensure_ascii=False).encode("utf-8")
            await _send_bytes(send, 400, payload, [(b"content-type", b"application/json")])
            return
        await _send_bytes(send, 200, json.dumps(result, ensure_ascii=False).encode("utf-8"),
                          [(b"content-type", b"application/json")])

    def snapshot(self) -> dict[str, Any]:
        """The JSON form of ``GET /_emulator/state`` (keys masked)."""
        out = self.state.public()
        out["clock"] = {"now": self.clock.now(), "offset": self.clock.offset, "frozen": self.clock.frozen}
        out["config"] = self.config.public()
        return out


def _admin_refusal(scope: Scope, method: str, body: bytes) -> tuple[int, str] | None:
    """The admin routes (clock, config, reset) are for local tools and tests, like the sidecar: a browser page must
    not drive them. So no ``Origin`` (browsers send one on cross-site requests, "simple" ``text/plain`` POSTs
    included), a ``Host`` that names this machine or the address the emulator listens on (DNS rebinding), and a
    body, when there is one, sent as JSON."""
    headers: dict[str, str] = {}
    hosts = 0
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        headers[name] = value.decode("latin-1")
        hosts += name == "host"
    if "origin" in headers:
        return 403, "admin routes do not answer browser pages (an Origin header was sent)"
    host = headers.get("host", "").strip().lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    server = scope.get("server")
    bound = str(server[0]).lower() if server else ""
    if hosts != 1 or name not in ("127.0.0.1", "localhost", "::1", bound):
        return 421, "admin routes answer only to a Host naming this machine (127.0.0.1 / localhost)"
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if method == "POST" and body.strip() and ctype != "application/json":
        return 415, "admin routes take a JSON body (content-type: application/json)"
    return None


def _split(text: str) -> list[str]:
    return [text[i:i + _ARG_PIECE] for i in range(0, len(text), _ARG_PIECE)] or [""]


def _asks_stream(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("stream") is True


def _sse(payload: object) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


def _origin(req: _Request) -> str:
    host = req.headers.get("host")
    if not host:
        server = req.scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{req.scope.get('scheme', 'http')}://{host}"


_MARKER = (b"x-baicai-emulator", b"1")


def _marked(send: Send) -> Send:
    """Every relay answer carries ``x-baicai-emulator: 1``: a client then applies the relay's hourly limits to this
    address (it is the relay's stand-in), as it does for the relay's own host."""

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), _MARKER]}
        await send(message)

    return marked


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _watch_disconnect(receive: Receive, flag: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            flag.set()
            return


async def _send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
