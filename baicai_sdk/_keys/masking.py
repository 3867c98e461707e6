"""Showing and checking keys without revealing them: ``mask_key``, fingerprints, warnings about a key."""

from __future__ import annotations

import hashlib

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


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def key_warnings(key: str, base_url: str | None = None) -> list[str]:
    """Warnings about the shape of ``key`` (never a refusal: the relay may issue new prefixes)."""
    masked = mask_key(key)
    if key.startswith("baicai-"):
        return []
    if key.startswith("sk-baicai-"):
        if base_url is None or _is_loopback(base_url):
            return []  # a sidecar token, used against the local sidecar
        return [
            f"{masked} 是本机 sidecar 的令牌，只能发给本机 sidecar，不能直接发给中转站。 / "
            f"{masked} is a local sidecar token: use it against the sidecar on 127.0.0.1, not the relay."
        ]
    if key.startswith("sk-"):
        return [
            f"{masked} 看起来是 OpenAI 官方的 sk- 密钥，白菜GPT 中转站只接受 baicai-… 密钥；请到 "
            "https://shop.baicaigpt.com 的「我的KEY」复制。 / "
            f"{masked} looks like an OpenAI sk- key; the relay only accepts baicai-… keys (copy yours from "
            "the shop's 'My KEY' page)."
        ]
    return [
        f"密钥 {masked} 不是以 baicai- 开头，可能不是白菜GPT 的密钥。 / "
        f"the key {masked} does not start with baicai-; it may not be a BaicaiGPT key."
    ]


def _clean_key(key: str) -> str:
    """The key as typed or piped, trimmed; refuses what could never be sent in an HTTP header."""
    cleaned = key.strip()
    if not cleaned:
        raise KeyStoreError("密钥为空。 / The key is empty.")
    if any(ch.isspace() for ch in cleaned) or not cleaned.isascii() or not cleaned.isprintable():
        raise KeyStoreError(
            f"密钥 {mask_key(cleaned)} 含有空白或非 ASCII 字符，请重新复制。 / "
            f"The key {mask_key(cleaned)} contains spaces or non-ASCII characters; copy it again."
        )
    return cleaned
