"""Bilingual labels: Chinese first, then English, or one of the two (the language setting).

Why a module-level setting rather than a lookup table: every label in the app is written inline as a
``(zh, en)`` pair next to where it is shown, so a screen reads like the screen it draws, and switching the
language is one assignment plus a recompose.
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = ["Lang", "set_lang", "get_lang", "tr", "LANGS"]

Lang = Literal["both", "zh", "en"]
LANGS: tuple[Lang, ...] = ("both", "zh", "en")

_current: Lang = "both"


def _from_env() -> Lang:
    value = os.environ.get("BAICAI_LANG", "").strip().lower()
    return value if value in LANGS else "both"


_current = _from_env()


def set_lang(lang: str | None) -> Lang:
    """Set the language for labels made from now on; unknown values mean both."""
    global _current
    _current = lang if lang in LANGS else "both"
    return _current


def get_lang() -> Lang:
    return _current


def tr(zh: str, en: str, sep: str = " / ") -> str:
    """``中文 / English``, or only one of them when the language setting says so."""
    if _current == "zh":
        return zh
    if _current == "en":
        return en
    return f"{zh}{sep}{en}"
