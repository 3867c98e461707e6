"""Token counting that works with no network.

tiktoken downloads its BPE files from a host that is unreachable from many networks in China (and from CI).
The two encodings the relay's models use ship inside this package (``data/*.tiktoken.gz``) and are checked
against the SHA-256 that tiktoken itself pins for them before use. Nothing touches ``TIKTOKEN_CACHE_DIR`` or any
other global: the files are handed to tiktoken's own encoding constructors, so pattern and special tokens stay
tiktoken's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import struct
import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from ._catalog import encoding_name_for
from ._text import Text

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "get_encoding",
    "encoding_for_model",
    "count_text",
    "count_chat",
    "count_tools",
    "count_image",
    "remote_image_spread",
    "image_size_from_data_url",
    "StreamCounter",
    "BUNDLED_ENCODINGS",
    "TokenizerUnavailable",
    "REMOTE_IMAGE_ASSUMED_SIZE",
    "verify_bundled",
]

BUNDLED_ENCODINGS = ("cl100k_base", "o200k_base")
# tiktoken's pinned hashes (tiktoken_ext/openai_public.py); used when tiktoken does not pass its own.
_KNOWN_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

_lock = threading.Lock()
_cache: dict[str, "tiktoken.Encoding"] = {}


class TokenizerUnavailable(RuntimeError):
    """A bundled encoding file is missing or fails its checksum (a damaged install)."""


def _bundled_bytes(name: str, expected_sha256: str | None) -> bytes:
    """The bundled file's text, after its checksum."""
    blob = resources.files("baicai_sdk").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(blob)
    digest = hashlib.sha256(data).hexdigest()
    want = expected_sha256 or _KNOWN_SHA256[name]
    if digest != want:
        raise TokenizerUnavailable(
            Text(f"内置分词文件 {name} 校验失败，请重新安装 baicai。",
                 f"The bundled tokenizer file {name} fails its SHA-256 check ({digest[:12]}… != {want[:12]}…); "
                 "reinstall baicai.")
        )
    return data


def _read_bundled(name: str, expected_sha256: str | None) -> dict[bytes, int]:
    """The ranks, read line by line from the checked text: no list of every line beside the dict being built
    (2.3 MB less at the load's peak for cl100k, bench/bench_memory.py)."""
    data = _bundled_bytes(name, expected_sha256)  # checked: "token rank" on every line, no blank one
    b64decode = base64.b64decode
    return {b64decode(token): int(rank) for token, rank in map(bytes.split, io.BytesIO(data))}


def verify_bundled(name: str) -> None:
    """Raise when ``name`` could not be loaded offline: tiktoken missing, or its bundled file missing or damaged.

    What ``baicai doctor`` checks: the checksum proves the file is the known-good one, without building the BPE
    table (building both encodings took most of doctor's time: bench/bench_cli.py).
    """
    if name not in BUNDLED_ENCODINGS:
        raise TokenizerUnavailable(f"encoding {name!r} is not bundled; bundled: {', '.join(BUNDLED_ENCODINGS)}")
    import tiktoken  # noqa: F401  - the extension module must load

    try:
        _bundled_bytes(name, None)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TokenizerUnavailable(
            Text(f"内置分词文件 {name} 无法读取（{type(exc).__name__}），请重新安装 baicai。",
                 f"The bundled tokenizer file {name} cannot be read ({type(exc).__name__}); reinstall baicai.")
        ) from exc


def _constructor_args(name: str) -> dict[str, Any]:
    """tiktoken's own constructor for ``name``, run with our file reader in place of its downloader."""
    from tiktoken_ext import openai_public  # type: ignore[import-untyped]

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]

    def load_bundled(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        if not url.rstrip("/").endswith(f"{name}.tiktoken"):
            raise TokenizerUnavailable(f"unexpected tokenizer file {url!r} for {name}")
        if expected_hash is not None and expected_hash != _KNOWN_SHA256[name]:
            # tiktoken moved to a new file; ours is stale but still checked against the hash we shipped with.
            expected_hash = _KNOWN_SHA256[name]
        return _read_bundled(name, expected_hash)

    # A copy of the function with its own globals: no module attribute is patched, so other threads and
    # other users of tiktoken are unaffected.
    isolated = types.FunctionType(
        constructor.__code__,
        {**constructor.__globals__, "load_tiktoken_bpe": load_bundled},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    args: dict[str, Any] = isolated()
    return args


def get_encoding(name: str) -> "tiktoken.Encoding":
    """A tiktoken ``Encoding`` for ``cl100k_base`` or ``o200k_base``, built from the bundled files (no network)."""
    if name not in BUNDLED_ENCODINGS:
        raise TokenizerUnavailable(f"encoding {name!r} is not bundled; bundled: {', '.join(BUNDLED_ENCODINGS)}")
    enc = _cache.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _cache.get(name)
        if enc is None:
            from ._bpe import BundledEncoding

            enc = BundledEncoding(**_constructor_args(name))
            _cache[name] = enc
    return enc


def is_loaded(name: str) -> bool:
    """Whether ``get_encoding(name)`` would return at once (building o200k takes ~1 s, cl100k ~0.35 s)."""
    return name in _cache


def encoding_for_model(model: str) -> "tiktoken.Encoding":
    """The encoding OpenAI uses for ``model``; unknown names get cl100k (every model the relay lists uses it)."""
    return get_encoding(encoding_name_for(model))


def count_text(text: str, model: str = "gpt-3.5-turbo") -> int:
    """Tokens in plain text, as OpenAI counts them (special-token text counted as ordinary text)."""
    return _encode_len(encoding_for_model(model), text)


# ---------------------------------------------------------------------------------------------------------------
# Chat requests. The formula is OpenAI's cookbook ("How to count tokens with tiktoken"): every message costs 3
# tokens of framing, a ``name`` one more, and the reply is primed with 3. It matches the ``prompt_tokens`` the API
# reports for gpt-3.5-turbo (0613 and later), gpt-4 and gpt-4o; the relay says it bills exactly that way.
# ---------------------------------------------------------------------------------------------------------------
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

# Remote image URLs are not fetched (no network, and no waiting before a request): they are assumed to be
# 1024×1024 at high detail, i.e. 765 tokens — what OpenAI charges for the most common upload size.
REMOTE_IMAGE_ASSUMED_SIZE = (1024, 1024)
REMOTE_IMAGE_RANGE = {"low": (85, 85), "high": (255, 1445), "auto": (85, 1445)}
"""(fewest, most) tokens one image of unknown size can cost, by ``detail``: ``low`` is always 85; ``high`` is one
512-px tile (255) for a small image up to eight (1,445) for a 768×2048 one — the most tiles OpenAI's scaling (fit
2048×2048, short side to 768) leaves; ``auto`` lets the model choose either."""


_LONG_TEXT = 4096
"""Characters from which a text's tokens are counted in tiktoken's buffer rather than listed (``_bpe.count``)."""


_COUNTED: dict[tuple[str, int, int], int] = {}
"""Token counts of texts seen before, by (encoding, length, ``hash(text)``) — never the text itself. A chat app
sends the whole conversation with every request: without this, the 20th turn of a conversation (14,000 characters)
was counted afresh each time, ~3 ms of CPU before the request could leave; with it, only the new message is."""
_COUNTED_MAX = 8192


def _encode_len(enc: "tiktoken.Encoding", text: str) -> int:
    """Tokens in ``text``, special-token text counted as ordinary text (``encode(text, disallowed_special=())``)."""
    if not text:
        return 0
    key = (enc.name, len(text), hash(text))
    tokens = _COUNTED.get(key)
    if tokens is not None:
        return tokens
    if len(text) < _LONG_TEXT:
        tokens = len(enc.encode_ordinary(text))
    else:
        from ._bpe import count_long

        tokens = count_long(enc, text)
    if len(_COUNTED) >= _COUNTED_MAX:
        _COUNTED.clear()  # simplest bound that is safe across threads; a conversation refills it in one request
    _COUNTED[key] = tokens
    return tokens


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def count_image(width: int | None, height: int | None, detail: str | None = "auto") -> int:
    """Tokens for one image part: 85 at ``detail: low``; otherwise the image is scaled to fit 2048×2048, then its
    short side to 768, and each 512-pixel tile costs 170 on top of the base 85 (OpenAI's vision pricing)."""
    if detail == "low":
        return 85
    if not width or not height:
        width, height = REMOTE_IMAGE_ASSUMED_SIZE
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 170 * tiles + 85


def image_size_from_data_url(url: str) -> tuple[int, int] | None:
    """Width and height read from the PNG/JPEG/GIF/WebP header of a ``data:`` URL (no image library needed);
    ``None`` for remote URLs and formats we cannot read."""
    if not url.startswith("data:") or "," not in url:
        return None
    meta, payload = url.split(",", 1)
    if not meta.endswith(";base64"):
        return None
    try:
        # The header sits in the first few KB, but a JPEG may carry a large EXIF block before its SOF marker.
        head = base64.b64decode(payload[: 65536 - 65536 % 4] if len(payload) > 65536 else payload, validate=False)
    except ValueError:
        return None
    return _image_size(head)


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return int(w) & 0x3FFF, int(h) & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            # SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
        return None
    return None


def _image_part_tokens(part: Mapping[str, Any]) -> int:
    spec = part.get("image_url")
    if isinstance(spec, str):
        url, detail = spec, "auto"
    elif isinstance(spec, Mapping):
        url, detail = str(spec.get("url") or ""), str(spec.get("detail") or "auto")
    else:
        url, detail = "", "auto"
    if detail == "low":
        return 85
    size = image_size_from_data_url(url)
    return count_image(*(size or REMOTE_IMAGE_ASSUMED_SIZE), detail=detail)


def remote_image_spread(messages: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(how many tokens fewer, how many more) a prompt can cost than :func:`count_chat` says, because of its image
    parts whose size cannot be read (remote URLs: counted as 1024×1024, bounded by :data:`REMOTE_IMAGE_RANGE`)."""
    fewer = more = 0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, Mapping) or not (part.get("type") == "image_url" or "image_url" in part):
                continue
            spec = part.get("image_url")
            url = spec if isinstance(spec, str) else str(spec.get("url") or "") if isinstance(spec, Mapping) else ""
            detail = str(spec.get("detail") or "auto") if isinstance(spec, Mapping) else "auto"
            if image_size_from_data_url(url) is not None:
                continue
            low, high = REMOTE_IMAGE_RANGE.get(detail, REMOTE_IMAGE_RANGE["auto"])
            counted = _image_part_tokens(part)
            fewer += max(0, counted - low)
            more += max(0, high - counted)
    return fewer, more


def _content_tokens(enc: "tiktoken.Encoding", content: object) -> int:
    """A message's ``content``: a string, or a list of parts (text, image_url); other part types count as JSON."""
    if isinstance(content, str):
        return _encode_len(enc, content)
    if content is None:
        return 0
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += _encode_len(enc, part)
            elif isinstance(part, Mapping):
                kind = part.get("type")
                if kind == "text":
                    total += _encode_len(enc, str(part.get("text") or ""))
                elif kind == "image_url" or "image_url" in part:
                    total += _image_part_tokens(part)
                else:
                    total += _encode_len(enc, _as_text(part))
        return total
    return _encode_len(enc, _as_text(content))


def _tool_calls_tokens(enc: "tiktoken.Encoding", calls: object) -> int:
    """An assistant message's earlier tool calls: their names and argument text (the cookbook does not cover
    them; this matches the API within a few tokens per call)."""
    total = 0
    if isinstance(calls, Sequence) and not isinstance(calls, str):
        for call in calls:
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                total += _encode_len(enc, str(fn.get("name") or ""))
                total += _encode_len(enc, _as_text(fn.get("arguments")))
    elif isinstance(calls, Mapping):  # legacy function_call
        total += _encode_len(enc, str(calls.get("name") or ""))
        total += _encode_len(enc, _as_text(calls.get("arguments")))
    return total


def _messages_tokens(enc: "tiktoken.Encoding", messages: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _content_tokens(enc, value)
            elif key in ("tool_calls", "function_call"):
                total += _tool_calls_tokens(enc, value)
            elif value is None:
                continue
            else:
                total += _encode_len(enc, _as_text(value))
                if key == "name":
                    total += TOKENS_PER_NAME
    return total + REPLY_PRIMING


# The cookbook's constants for function definitions ("counting tokens for chat completions with tool calls"):
# o200k models (gpt-4o…) start each function at 7, cl100k models (gpt-3.5-turbo, gpt-4) at 10.
_FUNC_INIT = {"o200k_base": 7, "cl100k_base": 10}
_PROP_INIT = 3
_PROP_KEY = 3
_ENUM_INIT = -3
_ENUM_ITEM = 3
_FUNC_END = 12


def _functions_tokens(enc: "tiktoken.Encoding", functions: Sequence[Mapping[str, Any]]) -> int:
    if not functions:
        return 0
    func_init = _FUNC_INIT.get(enc.name, 10)
    total = 0
    for function in functions:
        total += func_init
        name = str(function.get("name") or "")
        desc = str(function.get("description") or "")
        if desc.endswith("."):
            desc = desc[:-1]
        total += _encode_len(enc, f"{name}:{desc}")
        params = function.get("parameters")
        properties = params.get("properties") if isinstance(params, Mapping) else None
        if isinstance(properties, Mapping) and properties:
            total += _PROP_INIT
            for key, prop in properties.items():
                total += _PROP_KEY
                prop = prop if isinstance(prop, Mapping) else {}
                enum = prop.get("enum")
                if isinstance(enum, Sequence) and not isinstance(enum, str):
                    total += _ENUM_INIT
                    for item in enum:
                        total += _ENUM_ITEM + _encode_len(enc, _as_text(item))
                p_type = prop.get("type", "")
                p_type = p_type if isinstance(p_type, str) else _as_text(p_type)
                p_desc = str(prop.get("description") or "")
                if p_desc.endswith("."):
                    p_desc = p_desc[:-1]
                total += _encode_len(enc, f"{key}:{p_type}:{p_desc}")
    return total + _FUNC_END


def count_tools(
    model: str,
    tools: Sequence[Mapping[str, Any]] | None = None,
    functions: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """Tokens the function definitions add to the prompt (``tools=[{"type": "function", "function": …}]`` or the
    legacy ``functions=[…]``), by the cookbook's formula."""
    enc = encoding_for_model(model)
    defs: list[Mapping[str, Any]] = []
    for tool in tools or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping):
            defs.append(fn)
    defs.extend(f for f in functions or () if isinstance(f, Mapping))
    return _functions_tokens(enc, defs)


def count_chat(
    messages: Iterable[Mapping[str, Any]],
    model: str = "gpt-3.5-turbo",
    tools: Sequence[Mapping[str, Any]] | None = None,
    functions: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """Prompt tokens of a chat request as OpenAI (and so the relay) counts them, offline.

    Text content, names, earlier tool calls, image parts (85 at ``detail: low``, else 512-px tiles at 170 + 85;
    ``data:`` images by their real size, remote URLs assumed 1024×1024) and tool/function definitions.
    """
    enc = encoding_for_model(model)
    return _messages_tokens(enc, messages) + count_tools(model, tools, functions)


class StreamCounter:
    """Completion tokens of a streamed reply, counted from the deltas as they pass.

    Fragments are kept per choice and encoded together when ``tokens`` is read: BPE merges across fragment
    boundaries, so summing per-fragment counts would over-count. Only counts are ever reported; the text lives
    in memory for the lifetime of the stream and is not stored anywhere.
    """

    def __init__(self, model: str = "gpt-3.5-turbo") -> None:
        self.model = model
        self._pieces: dict[int, list[str]] = {}
        self._cached: int | None = 0
        self.reported_usage: Mapping[str, Any] | None = None
        """The stream's own ``usage`` object, when the relay sent one (``stream_options.include_usage``)."""

    def feed(self, text: str | None, *, choice: int = 0) -> None:
        """Add a delta's text or a tool-call argument fragment."""
        if text:
            self._pieces.setdefault(choice, []).append(text)
            self._cached = None

    add = feed  # the transport's name for it

    def feed_chunk(self, chunk: Mapping[str, Any]) -> None:
        """Add one decoded ``chat.completion.chunk`` (content, tool-call names and arguments, legacy
        function_call, and a trailing ``usage`` object when present)."""
        usage = chunk.get("usage")
        if usage and isinstance(usage, Mapping):
            self.reported_usage = usage
        for choice in chunk.get("choices") or ():
            # `type(x) is dict` first: a decoded chunk's objects are dicts, and the ABC check alone cost ~2 µs
            # per streamed chunk.
            if type(choice) is not dict and not isinstance(choice, Mapping):
                continue
            index = int(choice.get("index") or 0)
            delta = choice.get("delta") or {}
            if type(delta) is not dict and not isinstance(delta, Mapping):
                continue
            content = delta.get("content")
            if isinstance(content, str):
                self.feed(content, choice=index)
            refusal = delta.get("refusal")
            if isinstance(refusal, str):
                self.feed(refusal, choice=index)
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(fn, Mapping):
                    self.feed(fn.get("name"), choice=index)
                    self.feed(fn.get("arguments"), choice=index)
            legacy = delta.get("function_call")
            if legacy is not None and isinstance(legacy, Mapping):
                self.feed(legacy.get("name"), choice=index)
                self.feed(legacy.get("arguments"), choice=index)

    @property
    def tokens(self) -> int:
        """Completion tokens so far: the stream's own ``usage`` when it sent one, else our count."""
        if self.reported_usage is not None:
            reported = self.reported_usage.get("completion_tokens")
            if isinstance(reported, int):
                return reported
        return self.counted_tokens

    @property
    def counted_tokens(self) -> int:
        """Our own count of the text seen, whatever the stream reported."""
        if self._cached is None:
            enc = encoding_for_model(self.model)
            self._cached = sum(_encode_len(enc, "".join(p)) for p in self._pieces.values())
        return self._cached

    @property
    def prompt_tokens_reported(self) -> int | None:
        if self.reported_usage is None:
            return None
        value = self.reported_usage.get("prompt_tokens")
        return value if isinstance(value, int) else None
