"""Bilingual text: a Chinese and an English half, shown as the user's language setting says.

The setting: ``BAICAI_LANG`` (``zh``, ``en`` or ``both``; ``zh_CN``-style values count by their prefix), else the
locale (``LC_ALL`` > ``LC_MESSAGES`` > ``LANG``): a Chinese locale shows Chinese, an English one English, and any
other (``C``, ``POSIX``, unset) both, Chinese first — ``中文 / English``. Read when a text is shown, so a process
that changes ``BAICAI_LANG`` sees it at once. The English half is what logs keep (:attr:`Text.en`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

__all__ = ["Lang", "Text", "current_lang"]

Lang = Literal["zh", "en", "both"]
SEPARATOR = " / "


def _lang_of(value: str) -> Lang | None:
    value = value.strip().lower()
    if value == "both":
        return "both"
    if value.startswith("zh"):
        return "zh"
    if value.startswith("en"):
        return "en"
    return None


def current_lang() -> Lang:
    """The language texts are shown in now (see the module's docstring)."""
    chosen = _lang_of(os.environ.get("BAICAI_LANG", ""))
    if chosen is not None:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return _lang_of(value) or "both"
    return "both"


@dataclass(frozen=True)
class Text:
    """One message in both languages; ``str()`` shows it in :func:`current_lang`."""

    zh: str
    en: str

    def render(self, lang: Lang | None = None) -> str:
        lang = lang or current_lang()
        if lang == "zh":
            return self.zh
        if lang == "en":
            return self.en
        return f"{self.zh}{SEPARATOR}{self.en}"

    def __str__(self) -> str:
        return self.render()

    def __add__(self, other: Text) -> Text:
        return Text(self.zh + other.zh, self.en + other.en)
