"""Bilingual text: a Chinese and an English half, shown as the user's language setting says.

Every message a person reads — errors, hints, the CLI, the sidecar's console, the TUI's labels — is a :class:`Text`
(or :func:`tr`, its one-line form for a label), so one setting decides the language everywhere:

1. a choice made inside the program (:func:`set_lang`: the TUI's ``--lang`` and its language key);
2. ``BAICAI_LANG`` (``zh``, ``en`` or ``both``; ``zh_CN``-style values count by their prefix);
3. the locale (``LC_ALL`` > ``LC_MESSAGES`` > ``LANG``): a Chinese locale shows Chinese, an English one English;
4. any other locale (``C``, ``POSIX``, ``de_DE``, unset — containers, CI, a bare ssh session) says nothing about
   who reads the output, so both are shown, Chinese first — ``中文 / English`` — as the project's errors always were.

Read when a text is shown, so a process that changes the setting sees it at once. The English half is what logs
keep (:attr:`Text.en`), whatever the setting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["LANGS", "Lang", "Text", "current_lang", "head_rows", "labelled", "set_lang", "tr"]

Lang = Literal["zh", "en", "both"]
LANGS: tuple[Lang, ...] = ("both", "zh", "en")
SEPARATOR = " / "
_LEAD = re.compile(r"\s*(?:(?:\d+[.)]|[>*•·-])\s+)?")  # an indent, then maybe a list mark: "  1) ", "\n", "- "

_chosen: Lang | None = None  # set_lang's choice; None: the environment decides


def _lang_of(value: str) -> Lang | None:
    value = value.strip().lower()
    if value == "both":
        return "both"
    if value.startswith("zh"):
        return "zh"
    if value.startswith("en"):
        return "en"
    return None


def set_lang(lang: str | None) -> Lang:
    """Choose the language for this process (the TUI's ``--lang`` and language key); ``None`` or an unknown value
    gives the choice back to ``BAICAI_LANG`` and the locale. Returns the language now in effect."""
    global _chosen
    _chosen = _lang_of(lang) if lang else None
    return current_lang()


def current_lang() -> Lang:
    """The language texts are shown in now (see the module's docstring)."""
    if _chosen is not None:
        return _chosen
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

    def render(self, lang: Lang | None = None, *, sep: str = SEPARATOR) -> str:
        """The text in ``lang`` (default: :func:`current_lang`); ``sep`` joins the halves when both are shown."""
        lang = lang or current_lang()
        if lang == "zh":
            return self.zh
        if lang == "en":
            return self.en
        # An indent or a list number both halves start with is shown once: "  1) 中文 / English".
        lead = _LEAD.match(self.zh).group(0)  # type: ignore[union-attr]  # the pattern matches any string
        if not lead or not self.en.startswith(lead):
            lead = ""
        # On separate lines, each half keeps the indent (a banner's note stays under its label).
        second = lead if "\n" in sep else ""
        return f"{lead}{self.zh[len(lead):]}{sep}{second}{self.en[len(lead):]}"

    def __str__(self) -> str:
        return self.render()

    @classmethod
    def of(cls, value: Text | str) -> Text:
        """``value`` as a Text: a plain string (a path, a name, a message from elsewhere) is the same in both."""
        return value if isinstance(value, Text) else cls(value, value)

    def __add__(self, other: Text | str) -> Text:
        """Join two texts half by half; a plain string (a path, a number) joins both halves."""
        if isinstance(other, str):
            return Text(self.zh + other, self.en + other)
        return Text(self.zh + other.zh, self.en + other.en)

    def __radd__(self, other: str) -> Text:
        return Text(other + self.zh, other + self.en)


def tr(zh: str, en: str, *, sep: str = SEPARATOR) -> str:
    """``str(Text(zh, en))``: a label or a line printed at once, in the current language."""
    return Text(zh, en).render(sep=sep)


def head_rows(zh: tuple[str, ...], en: tuple[str, ...]) -> list[tuple[str, ...]]:
    """A table's header in the current language: one row, or with both the Chinese row over the English one (as
    ``usage log`` and the TUI's tables show it), each padded by the caller like the rows below."""
    return {"zh": [zh], "en": [en], "both": [zh, en]}[current_lang()]


def labelled(zh: str, en: str, value: object) -> str:
    """A label before a value already in the user's language (an exception, a warning, a path): ``错误：…``,
    ``error: …``, or with both ``错误 / error: …`` — the value once, never twice."""
    lang = current_lang()
    if zh == en:  # a name both languages use ("API Key")
        return f"{en}: {value}"
    if lang == "zh":
        return f"{zh}：{value}"
    if lang == "en":
        return f"{en}: {value}"
    return f"{zh}{SEPARATOR}{en}: {value}"
