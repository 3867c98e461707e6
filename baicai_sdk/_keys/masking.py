"""Showing and checking keys without revealing them: ``mask_key``, fingerprints, warnings about a key."""

from __future__ import annotations

import hashlib

from .._text import Text
from .._urls import is_loopback_url
from .errors import KeyStoreError

_KNOWN_PREFIXES = ("sk-baicai-", "baicai-", "sk-proj-", "sk-")


def mask_key(key: str) -> str:
    """``baicai-…abcd``: the known prefix and the last four characters, enough to tell keys apart.

    Short strings show less (a 6-character tail of a 10-character secret would give most of it away).
    """
    key = key.strip()
    prefix = next((p for p in _KNOWN_PREFIXES if key.startswith(p)), "")
    rest = key[len(prefix):]
    tail = rest[-4:] if len(rest) >= 16 else rest[-2:] if len(rest) >= 8 else ""
    return f"{prefix}…{tail}"


def key_fingerprint(key: str) -> str:
    """A stable, non-reversible id for a key (first 16 hex digits of SHA-256): what the ledger stores."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()[:16]


def key_warnings(key: str, base_url: str | None = None) -> list[Text]:
    """Warnings about the shape of ``key`` (never a refusal: the relay may issue new prefixes)."""
    masked = mask_key(key)
    if key.startswith("baicai-"):
        return []
    if key.startswith("sk-baicai-"):
        # No DNS lookup for a warning: a literal loopback address or a localhost name is the local sidecar.
        if base_url is None or is_loopback_url(base_url, resolve=False):
            return []  # a sidecar token, used against the local sidecar
        return [
            Text(f"{masked} 是本机 sidecar 的令牌，只能发给本机 sidecar，不能直接发给中转站。",
                 f"{masked} is a local sidecar token: use it against the sidecar on 127.0.0.1, not the relay.")
        ]
    if key.startswith("sk-"):
        return [
            Text(f"{masked} 看起来是 OpenAI 官方的 sk- 密钥，白菜GPT 中转站只接受 baicai-… 密钥；请到 https://shop.baicaigpt.com 的「我的KEY」复制。",
                 f"{masked} looks like an OpenAI sk- key; the relay only accepts baicai-… keys (copy yours from the shop's 'My KEY' page).")
        ]
    return [
        Text(f"密钥 {masked} 不是以 baicai- 开头，可能不是白菜GPT 的密钥。",
             f"the key {masked} does not start with baicai-; it may not be a BaicaiGPT key.")
    ]


_QUOTES = ("\"", "'", "`", "“", "”", "‘", "’")


def trimmed_key(key: str) -> tuple[str, Text | None]:
    """``key`` without the whitespace and quotes a paste often brings along, and a note saying what was removed
    (None when nothing was). Copying ``"baicai-…"`` from a config file or a chat window keeps the quotes."""
    cleaned = key.strip()
    removed = cleaned != key
    while len(cleaned) >= 2 and cleaned[0] in _QUOTES and cleaned[-1] in _QUOTES:
        cleaned = cleaned[1:-1].strip()
        removed = True
    if not removed:
        return key, None
    return cleaned, Text(f"已去掉密钥两端的空白或引号（{mask_key(cleaned)}）",
                         f"removed the whitespace or quotes around the key ({mask_key(cleaned)})")


def _clean_key(key: str) -> str:
    """The key as typed or piped, trimmed of whitespace and quotes; refuses what could never be sent in an
    HTTP header."""
    cleaned, _ = trimmed_key(key)
    if not cleaned:
        raise KeyStoreError(Text("密钥为空。", "The key is empty."))
    if any(ch.isspace() for ch in cleaned) or not cleaned.isascii() or not cleaned.isprintable():
        raise KeyStoreError(
            Text(f"密钥 {mask_key(cleaned)} 含有空白或非 ASCII 字符，请重新复制。",
                 f"The key {mask_key(cleaned)} contains spaces or non-ASCII characters; copy it again.")
        )
    return cleaned
