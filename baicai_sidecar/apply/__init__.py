"""``baicai apply``: point third-party apps at the relay or the sidecar, safely and reversibly.

The API the CLI and the TUI share (neither prints anything here)::

    list_apps() -> list[AppInfo]                  # every adapter, detected here or not, and what it would change
    plan(app, target) -> Plan                     # files + unified diffs (masked), links, instructions; writes nothing
    apply(plan) -> Record                         # backup once, atomic writes, a record for undo
    undo(app) -> UndoResult                       # byte-for-byte restore, or only our entry removed
    build_target("relay" | "sidecar", app=…)      # the base URL + key to point at (tests pass a ready Target)
"""

from __future__ import annotations

import os
import subprocess

from ._base import Adapter, Options
from ._model import (
    AppInfo,
    ApplyError,
    Env,
    FileChange,
    FileOutcome,
    Link,
    Plan,
    Record,
    Target,
    UndoResult,
    UnparseableFile,
    mask_secret,
)
from ._safety import make_change, undo_record, write_plan
from ._target import DEFAULT_MODEL, DEFAULT_SIDECAR_PORT, build_target

__all__ = [
    "ADAPTERS",
    "AppInfo",
    "ApplyError",
    "Env",
    "FileChange",
    "FileOutcome",
    "Link",
    "Options",
    "Plan",
    "Record",
    "Target",
    "UndoResult",
    "UnparseableFile",
    "DEFAULT_MODEL",
    "DEFAULT_SIDECAR_PORT",
    "adapter",
    "apply",
    "build_target",
    "list_apps",
    "mask_secret",
    "open_link",
    "plan",
    "undo",
]


def _adapters() -> dict[str, Adapter]:
    from .aichat import AichatAdapter
    from .autogen import AutogenAdapter
    from .cc_switch import CcSwitchAdapter
    from .chatbox import ChatboxAdapter
    from .cherry_studio import CherryStudioAdapter
    from .codex import CodexAdapter
    from .continue_dev import ContinueAdapter
    from .dify import DifyAdapter
    from .env import EnvAdapter
    from .fastgpt import FastGptAdapter
    from .llm import LlmAdapter
    from .lobechat import LobeChatAdapter
    from .nextchat import NextChatAdapter
    from .open_webui import OpenWebUiAdapter

    classes: list[type[Adapter]] = [
        EnvAdapter, LlmAdapter, AichatAdapter, ContinueAdapter, CodexAdapter, AutogenAdapter,
        ChatboxAdapter, CherryStudioAdapter, CcSwitchAdapter,
        LobeChatAdapter, NextChatAdapter, FastGptAdapter, OpenWebUiAdapter, DifyAdapter,
    ]  # fmt: skip
    return {cls.name: cls() for cls in classes}


ADAPTERS: dict[str, Adapter] = _adapters()


def adapter(app: str) -> Adapter:
    try:
        return ADAPTERS[app]
    except KeyError:
        names = ", ".join(ADAPTERS)
        raise ApplyError(f"未知应用 {app!r}；可选：{names} / unknown app {app!r}; one of: {names}") from None


def list_apps(env: Env | None = None) -> list[AppInfo]:
    env = env or Env.current()
    out = []
    for a in ADAPTERS.values():
        found, where = a.detect(env)
        out.append(AppInfo(a.name, a.title, a.kind, found, where, a.summary))
    return out


def plan(app: str, target: Target, *, options: Options | None = None, env: Env | None = None) -> Plan:
    """What applying ``app`` would do, computed from the files as they are now. Writes nothing.

    Raises ``UnparseableFile`` (a file we cannot read safely; it stays untouched) or ``ApplyError``.
    """
    a = adapter(app)
    env = env or Env.current()
    options = options or Options()
    result = Plan(app, target)
    for edit in a.edits(target, env, options):
        result.changes.append(make_change(edit, result.mask))
    extras = a.extras(target, env, options)
    result.instructions, result.links = extras.instructions, extras.links
    result.notes = [*target.notes, *extras.notes]
    return result


def apply(p: Plan) -> Record:
    """Write the plan's files (backup, atomic write, record). A plan without files writes nothing."""
    return write_plan(p)


def undo(app: str) -> UndoResult:
    """Undo the last apply for ``app`` (see ``_safety.undo_record``)."""
    a = adapter(app)

    from pathlib import Path

    from ._safety import load_record

    record = load_record(app) or {}
    removers = {}
    for entry in record.get("files", []):
        remove = a.remover(entry.get("part", ""), Path(entry["path"]))
        if remove is not None:
            removers[entry["part"]] = remove
    return undo_record(app, removers)


def open_link(url: str, env: Env | None = None) -> bool:
    """Hand a deep link to the desktop (the app then asks the user to confirm). False when there is no desktop."""
    env = env or Env.current()
    if not env.has_desktop():
        return False
    try:
        if env.platform.startswith("win"):
            os.startfile(url)  # type: ignore[attr-defined]
            return True
        opener = "open" if env.platform == "darwin" else "xdg-open"
        if env.which(opener) is None:
            return False
        subprocess.Popen([opener, url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return True
    except OSError:
        return False

