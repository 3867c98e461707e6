"""The data that flows between adapters, the safety layer, the CLI and the TUI.

Adapters return these objects and never print: the CLI renders them as text, the TUI as widgets. Anything that may
hold a secret (file contents, instructions, links) is kept in full for writing or opening, and masked by
``Plan.mask`` for every place a human looks at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from baicai_sdk.integration import Text, tr

__all__ = [
    "Message",
    "ApplyError",
    "UnparseableFile",
    "Target",
    "Env",
    "FileEdit",
    "FileChange",
    "Link",
    "Plan",
    "AppInfo",
    "Record",
    "FileOutcome",
    "UndoResult",
    "mask_secret",
]

TargetKind = Literal["relay", "sidecar"]
Message: TypeAlias = "Text | str"
"""What a person reads: a :class:`Text` (shown in their language), or a plain string both languages share."""


class ApplyError(Exception):
    """Something the user must fix; the message is bilingual (Chinese first) and says what to do."""


class UnparseableFile(ApplyError):
    """A file the adapter cannot read safely. It is left exactly as it is — never rewritten."""

    def __init__(self, path: Path | str, reason: Message) -> None:
        self.path = Path(path)
        self.reason = reason
        why = Text.of(reason)
        super().__init__(
            Text(f"无法解析 {path}（{why.zh}），文件未做任何改动；请修正该文件后重试。",
                 f"cannot parse {path} ({why.en}); the file was left untouched — fix it and try again.")
        )


NEW_TOKEN_PLACEHOLDER = "sk-baicai-NEW-TOKEN"
"""What ``--dry-run`` shows where a sidecar token would be issued: not a secret, so shown whole (masked it read
``sk-baicai-…EN``, like a real token)."""


def mask_secret(secret: str) -> str:
    """``baicai-…abcd`` / ``sk-baicai-…abcd``: which key it is, never enough to use it."""
    from baicai_sdk import mask_key

    return secret if secret == NEW_TOKEN_PLACEHOLDER else mask_key(secret)


@dataclass(frozen=True)
class Target:
    """Where an app is pointed: a base URL ending in ``/v1``, the key it sends, and a label for humans.

    ``kind`` is ``relay`` (the real key, straight to BaicaiGPT) or ``sidecar`` (a local token for this one app,
    sent to the sidecar on 127.0.0.1, which holds the real key).
    """

    kind: TargetKind
    base_url: str
    key: str
    label: Message
    model: str = "gpt-3.5-turbo"
    notes: tuple[Message, ...] = ()  # e.g. "base URL corrected: removed a repeated /v1"
    tier: str = "unknown"  # the key's tier (free | paid) when its profile or BAICAI_TIER says; adapters may warn

    @property
    def root_url(self) -> str:
        """The base URL without its trailing ``/v1`` — for apps that add ``/v1`` themselves."""
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def __repr__(self) -> str:  # a Target ends up in tracebacks; the key must not
        return f"Target(kind={self.kind!r}, base_url={self.base_url!r}, key={mask_secret(self.key)!r})"


@dataclass(frozen=True)
class Env:
    """What detection and path rules look at; tests pass their own so nothing depends on the real machine."""

    home: Path
    cwd: Path
    environ: Mapping[str, str]
    platform: str  # sys.platform
    which: Callable[[str], str | None]

    @classmethod
    def current(cls) -> Env:
        import shutil
        import sys

        return cls(Path.home(), Path.cwd(), dict(os.environ), sys.platform, shutil.which)

    def config_home(self) -> Path:
        """Where apps following XDG / the OS convention keep config (``dirs::config_dir`` in Rust apps)."""
        if self.platform == "darwin":
            return self.home / "Library" / "Application Support"
        if self.platform.startswith("win"):
            return Path(self.environ.get("APPDATA") or self.home / "AppData" / "Roaming")
        xdg = self.environ.get("XDG_CONFIG_HOME", "").strip()
        return Path(xdg) if xdg else self.home / ".config"

    def has_desktop(self) -> bool:
        if self.platform == "darwin" or self.platform.startswith("win"):
            return True
        return bool(self.environ.get("DISPLAY") or self.environ.get("WAYLAND_DISPLAY"))


@dataclass(frozen=True)
class FileEdit:
    """What an adapter wants done to one file: how to add its entry, and how to take only its entry out again.

    ``add(old)`` gets the current text (None when the file does not exist) and returns the new text; it raises
    ``UnparseableFile`` rather than guess. ``remove(current, original, ours)`` is the undo fallback when someone
    else changed the file since: it drops our entry and puts back what the original had in its place (``original``
    is the backed-up text, None when the file did not exist; ``ours(line)`` tells whether a line is one we wrote,
    so a value the user changed after us is left alone). ``part`` names the file within the adapter ("config",
    "auth"…) so an undo can find ``remove`` again without a target.
    """

    path: Path
    part: str
    add: Callable[[str | None], str]
    remove: Callable[[str, str | None, Callable[[str], bool]], str]
    secret: bool = False


@dataclass
class FileChange:
    """One file in a plan: before, after, and the diff a human reads (secrets masked)."""

    path: Path
    part: str
    old: str | None
    new: str
    diff: str
    secret: bool

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class Link:
    """An import deep link (``chatbox://…``) the user confirms inside the app."""

    app: str
    url: str


@dataclass
class Plan:
    """Everything ``apply`` would do for one app, computed without touching any file."""

    app: str
    target: Target
    changes: list[FileChange] = field(default_factory=list)
    instructions: list[Message] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)

    def mask(self, text: Message) -> str:
        """``text`` (as shown) with the target's key replaced by its masked form (also inside encoded deep links)."""
        text = str(text)
        if self.target.key:
            text = text.replace(self.target.key, mask_secret(self.target.key))
        return text

    def masked_link(self, link: Link) -> str:
        """Deep links carry the key base64-encoded: show the scheme and path, never the payload."""
        head, _, _query = link.url.partition("?")
        return head + tr("?…（含密钥，已隐藏）", "?… (holds the key, hidden)")


@dataclass(frozen=True)
class AppInfo:
    """One line of ``baicai apply --list``."""

    name: str
    title: Message
    kind: Literal["file", "link", "instructions"]
    detected: bool
    where: Message  # what was found, or where we looked
    changes: Message  # what applying would change


@dataclass
class FileOutcome:
    path: Path
    action: Literal["written", "unchanged", "restored", "deleted", "entry-removed", "nothing-to-do", "error"]
    detail: Message = ""
    diff: str = ""  # ``--undo --dry-run``: what the undo would do to the file (secrets masked)


@dataclass
class Record:
    """What ``apply`` did (also kept as JSON under the data dir, so ``--undo`` works in a later process)."""

    app: str
    target_kind: str
    target_label: str
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(o.action == "written" for o in self.outcomes)


@dataclass
class UndoResult:
    app: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)  # e.g. the app's sidecar token was revoked (or why not)
    dry_run: bool = False  # outcomes say what an undo would do; nothing was changed

    @property
    def exact(self) -> bool:
        """True when every file went back byte for byte."""
        return all(o.action in ("restored", "deleted", "nothing-to-do") for o in self.outcomes)
