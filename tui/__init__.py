"""baicai_tui — the BaicaiGPT terminal dashboard (Textual), started by ``baicai tui``.

Textual loads lazily: importing this package (as the CLI's entry points do) costs nothing until the app
or the demo is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._demo import run_demo
    from .app import BaicaiApp, make_app

__all__ = ["make_app", "BaicaiApp", "run_demo"]


def __getattr__(name: str) -> Any:
    if name in ("make_app", "BaicaiApp"):
        from . import app

        return getattr(app, name)
    if name == "run_demo":
        from ._demo import run_demo

        return run_demo
    raise AttributeError(name)
