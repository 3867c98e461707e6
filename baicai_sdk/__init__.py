"""baicai_sdk — the BaicaiGPT relay from Python, as a drop-in ``openai`` client.

Public names are exactly ``__all__`` (tests/sdk/test_exported_members.py). Heavy pieces (the openai client,
tiktoken, sqlite, keyring) load on first use, so ``import baicai_sdk`` stays about as cheap as ``import openai``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
