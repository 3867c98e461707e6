"""Small helpers shared by the emulator's modules."""

from __future__ import annotations

__all__ = ["mask_key"]


def mask_key(key: str) -> str:
    """``baicai-…abcd``: enough to tell keys apart, never enough to use one (also for malformed input)."""
    key = key.strip()
    if key.lower().startswith("bearer "):
        return "Bearer " + mask_key(key[7:])
    if len(key) <= 8:
        return "…" if key else ""
    prefix = key.split("-", 1)[0] + "-" if "-" in key[:10] else ""
    return f"{prefix}…{key[-4:]}"
