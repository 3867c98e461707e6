"""The TUI's labels in the user's language: the SDK's one bilingual text type, named for the screens.

Every label in the app is written inline as ``tr(zh, en)`` next to where it is shown, so a screen reads like the
screen it draws; switching the language (``--lang``, the ``l`` key) is one ``set_lang`` plus a recompose. The
setting is the SDK's (``baicai_sdk.integration.set_lang``), so messages the SDK and the sidecar build for the TUI
follow it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual.binding import Binding

from baicai_sdk.integration import LANGS, Lang, Text, set_lang, tr
from baicai_sdk.integration import current_lang as get_lang

__all__ = ["LANGS", "Key", "KeyGroup", "Lang", "Text", "get_lang", "relabel_bindings", "set_lang", "tr"]


KEY_SEP = "/"
"""Between the halves of a key's label in both languages ("添加/Add"): the footer's 80 columns are the limit."""


@dataclass(frozen=True)
class Key(Binding):
    """A key binding whose footer label is a :class:`Text`, shown in the language in effect.

    Textual copies a class's ``BINDINGS`` into every new widget with the description as a plain string, worked out
    when the class was defined — before ``--lang`` or the ``l`` key had their say. :func:`relabel_bindings` renders
    the labels again after a change (and ``make_app`` once at start), so the footer speaks the screen's language.
    """

    label: Text = Text("", "")

    def __post_init__(self) -> None:
        object.__setattr__(self, "description", self.label.render(sep=KEY_SEP))
        if isinstance(self.group, KeyGroup):
            object.__setattr__(self, "group", replace(self.group))


@dataclass(frozen=True)
class KeyGroup(Binding.Group):
    """Keys shown together in the footer under one label (``dhmks 按/By``): the footer has 80 columns."""

    label: Text = Text("", "")

    def __post_init__(self) -> None:
        object.__setattr__(self, "description", self.label.render(sep=KEY_SEP))


def relabel_bindings() -> None:
    """Render every TUI widget class's :class:`Key` labels in the current language; widgets built from now on show
    them (the app recomposes its pages after a change; the app's own bindings are renewed by the caller)."""
    from textual.dom import DOMNode

    pending: list[type[DOMNode]] = [DOMNode]
    ours: list[type[DOMNode]] = []
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("baicai_tui"):
            ours.append(cls)
    for cls in ours:
        own = cls.__dict__.get("BINDINGS")
        if own and any(isinstance(b, Key) for b in own):
            cls.BINDINGS = [replace(b) if isinstance(b, Key) else b for b in own]
    for cls in ours:
        cls._merged_bindings = cls._merge_bindings()  # what each new instance copies (textual's DOMNode.__init__)
