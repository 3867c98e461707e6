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
import threading
import types
from importlib import resources
from typing import TYPE_CHECKING, Any

from ._catalog import encoding_name_for

if TYPE_CHECKING:
    import tiktoken

__all__ = ["get_encoding", "encoding_for_model", "count_text", "BUNDLED_ENCODINGS", "TokenizerUnavailable"]

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


def _read_bundled(name: str, expected_sha256: str | None) -> dict[bytes, int]:
    blob = resources.files("baicai_sdk").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(blob)
    digest = hashlib.sha256(data).hexdigest()
    want = expected_sha256 or _KNOWN_SHA256[name]
    if digest != want:
        raise TokenizerUnavailable(
            f"内置分词文件 {name} 校验失败，请重新安装 baicai。 / "
            f"The bundled tokenizer file {name} fails its SHA-256 check ({digest[:12]}… != {want[:12]}…); reinstall baicai."
        )
    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}


def _constructor_args(name: str) -> dict[str, Any]:
    """tiktoken's own constructor for ``name``, run with our file reader in place of its downloader."""
    from tiktoken_ext import openai_public

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
            import tiktoken

            enc = tiktoken.Encoding(**_constructor_args(name))
            _cache[name] = enc
    return enc


def encoding_for_model(model: str) -> "tiktoken.Encoding":
    """The encoding OpenAI uses for ``model``; unknown names get cl100k (every model the relay lists uses it)."""
    return get_encoding(encoding_name_for(model))


def count_text(text: str, model: str = "gpt-3.5-turbo") -> int:
    """Tokens in plain text, as OpenAI counts them (special-token text counted as ordinary text)."""
    return len(encoding_for_model(model).encode(text, disallowed_special=()))
