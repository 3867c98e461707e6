"""The key store's errors and the warning class for configuration that is probably wrong."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any


class BaicaiConfigWarning(UserWarning):
    """Something in the configuration is probably wrong but baicai can carry on (a repaired URL, an odd key)."""


# Configuration warnings are about the machine, not the call site: say each one once per process, however many
# clients are made (appended, so a user's own -W or filterwarnings still wins).
warnings.filterwarnings("once", category=BaicaiConfigWarning, append=True)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line, past baicai's, openai's and httpx2's frames.

    (``Baicai()`` reaches ``resolve_credentials`` through a varying number of frames — direct, ``copy()``,
    ``with_options`` — so a fixed number would point into ``_client.py``; the ledger's warning comes from inside
    the transport, under openai's and httpx2's frames.)
    """

    inside = tuple(os.path.dirname(m.__file__) + os.sep for m in _library_modules())
    frame = sys._getframe(1)  # resolve_credentials: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _library_modules() -> list[Any]:

    return [m for m in map(sys.modules.get, ("baicai_sdk", "openai", "httpx2", "httpx")) if m is not None
            and getattr(m, "__file__", None)]


class KeyStoreError(RuntimeError):
    """Root of the key-store errors. Messages are bilingual (中文 / English) and say what to do."""


class MissingKeyError(KeyStoreError):
    """No key in any of the three places we look."""


class NoKeyringBackend(KeyStoreError):
    """The machine has no usable OS keyring, and the file fallback was not chosen explicitly."""


class ProfileNotFound(KeyStoreError, LookupError):
    """No profile of that name."""


class ConfigCorrupt(KeyStoreError):
    """``profiles.json`` or ``secrets.json`` cannot be read; we refuse to overwrite it."""
