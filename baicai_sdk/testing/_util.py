"""Small helpers shared by the emulator's modules."""

from __future__ import annotations

__all__ = ["mask_key"]


def mask_key(key: str) -> str:
    """The SDK's ``mask_key``, also for a whole ``Authorization`` value as the emulator received it."""
    from .._keys import mask_key as mask

    key = key.strip()
    if key.lower().startswith("bearer "):
        return "Bearer " + mask(key[7:])
    return mask(key) if key else ""
