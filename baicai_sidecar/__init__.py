"""baicai_sidecar — a localhost OpenAI-compatible proxy that lets desktop chat apps use the BaicaiGPT relay.

Apps get ``http://127.0.0.1:8765/v1`` and a local token (``sk-baicai-…``); the real key stays with baicai, and every
request goes through the SDK's one pipeline (quota gate, ledger, relay error rules). Run it with ``baicai sidecar``.

Names load lazily: ``import baicai_sidecar`` (done by ``baicai --help`` to register the command) must not pull in
uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["SidecarConfig", "create_app", "SidecarServer", "TokenStore"]

if TYPE_CHECKING:
    from ._server import SidecarServer
    from ._tokens import TokenStore
    from .app import SidecarConfig, create_app

_WHERE = {"SidecarConfig": ".app", "create_app": ".app", "SidecarServer": "._server", "TokenStore": "._tokens"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'baicai_sidecar' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
