"""What an adapter is: a name, how to detect the app, and the edits, links or instructions for one target.

Adapters return data and never print, open, or write: ``_safety`` writes, the CLI prints and opens links, the TUI
shows the same ``Plan``. A file adapter only knows how to turn old text into new text for its own entry, and how
to take that entry out again (``remover``) for an undo after someone else edited the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from baicai_sdk.integration import Text

from ._model import Env, FileEdit, Link, Message, Target

__all__ = ["Adapter", "Options", "Extras", "OursLine", "Remover"]

OursLine = Callable[[str], bool]
"""Was this line written by baicai? (line fingerprints kept in the apply record; see ``_safety.line_prints``)"""
Remover = Callable[[str, "str | None", OursLine], str]


@dataclass(frozen=True)
class Options:
    """Per-run choices some adapters take (``--file``, ``--shell``)."""

    file: Path | None = None
    shell: str | None = None


@dataclass
class Extras:
    instructions: list[Message] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)


class Adapter:
    name: ClassVar[str]
    title: ClassVar[Message]
    kind: ClassVar[Literal["file", "link", "instructions"]] = "file"
    summary: ClassVar[Message]  # what applying changes, one line
    default_model: ClassVar[str | None] = None
    """The model ``build_target`` picks without ``--model``, for an app the general default does not fit."""

    def detect(self, env: Env) -> tuple[bool, Message]:
        """(found here?, what was found or where we looked)."""
        return False, ""

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        return []

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras()

    def remover(self, part: str, path: Path) -> Remover | None:
        return None

    # helpers ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _mac_apps(env: Env, bundle: str) -> tuple[Path, ...]:
        if env.platform != "darwin":
            return ()
        return (Path("/Applications") / bundle, env.home / "Applications" / bundle)

    @staticmethod
    def _found(env: Env, commands: tuple[str, ...] = (), paths: tuple[Path, ...] = ()) -> tuple[bool, Message]:
        hits = [f"`{c}` ({env.which(c)})" for c in commands if env.which(c)]
        hits += [str(p) for p in paths if p.exists()]
        if hits:
            return True, ", ".join(hits)
        looked = [f"`{c}`" for c in commands] + [str(p) for p in paths]
        return (False, Text("未找到：", "not found: ") + ", ".join(looked)) if looked else (False, "")
