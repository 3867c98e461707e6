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
from typing import TYPE_CHECKING, Any

from baicai_sdk.integration import Text

# Loaded on first use: `baicai --help` and every other command import this package to register `baicai apply`,
# and the adapters, editors and the safety layer cost more than the rest of a quick command (bench/bench_cli.py).
if TYPE_CHECKING:
    from ._base import Adapter, Options
    from ._model import (
        AppInfo,
        ApplyError,
        Env,
        FileChange,
        FileOutcome,
        Link,
        Message,
        Plan,
        Record,
        Target,
        UndoResult,
        UnparseableFile,
        mask_secret,
    )
    from ._target import DEFAULT_MODEL, DEFAULT_SIDECAR_PORT, build_target

_WHERE = {
    **dict.fromkeys(("Adapter", "Options"), "._base"),
    **dict.fromkeys(("AppInfo", "ApplyError", "Env", "FileChange", "FileOutcome", "Link", "Plan", "Record", "Target",
                     "UndoResult", "UnparseableFile", "mask_secret"), "._model"),
    **dict.fromkeys(("DEFAULT_MODEL", "DEFAULT_SIDECAR_PORT", "build_target"), "._target"),
}
_registry: dict[str, Adapter] | None = None


def __getattr__(name: str) -> Any:
    if name == "ADAPTERS":
        return _all_adapters()
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'baicai_sidecar.apply' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
    from .aider import AiderAdapter
    from .anythingllm import AnythingLlmAdapter
    from .autogen import AutogenAdapter
    from .cc_switch import CcSwitchAdapter
    from .chatbox import ChatboxAdapter
    from .chatwise import ChatWiseAdapter
    from .cherry_studio import CherryStudioAdapter
    from .cline import ClineAdapter
    from .codex import CodexAdapter
    from .continue_dev import ContinueAdapter
    from .cursor import CursorAdapter
    from .dify import DifyAdapter
    from .env import EnvAdapter
    from .fastgpt import FastGptAdapter
    from .immersive_translate import ImmersiveTranslateAdapter
    from .jan import JanAdapter
    from .librechat import LibreChatAdapter
    from .llm import LlmAdapter
    from .lobechat import LobeChatAdapter
    from .nextchat import NextChatAdapter
    from .open_webui import OpenWebUiAdapter
    from .opencat import OpenCatAdapter
    from .opencode import OpenCodeAdapter
    from .roo_code import RooCodeAdapter

    classes: list[type[Adapter]] = [
        # files
        EnvAdapter, LlmAdapter, AichatAdapter, ContinueAdapter, CodexAdapter, AutogenAdapter,
        OpenCodeAdapter, AiderAdapter, LibreChatAdapter, RooCodeAdapter,
        # import links
        ChatboxAdapter, CherryStudioAdapter, CcSwitchAdapter, LobeChatAdapter, NextChatAdapter, OpenCatAdapter,
        # printed steps
        ClineAdapter, CursorAdapter, JanAdapter, ChatWiseAdapter, ImmersiveTranslateAdapter,
        AnythingLlmAdapter, FastGptAdapter, OpenWebUiAdapter, DifyAdapter,
    ]  # fmt: skip
    return {cls.name: cls() for cls in classes}


def _all_adapters() -> dict[str, Adapter]:
    """``ADAPTERS``: every adapter by name, made on first use."""
    global _registry
    if _registry is None:
        _registry = _adapters()
    return _registry


def adapter(app: str) -> Adapter:
    from ._model import ApplyError

    adapters = _all_adapters()
    try:
        return adapters[app]
    except KeyError:
        names = ", ".join(adapters)
        raise ApplyError(Text(f"未知应用 {app!r}；可选：{names}", f"unknown app {app!r}; one of: {names}")) from None


def list_apps(env: Env | None = None) -> list[AppInfo]:
    from ._model import AppInfo, Env

    env = env or Env.current()
    out = []
    for a in _all_adapters().values():
        found, where = a.detect(env)
        out.append(AppInfo(a.name, a.title, a.kind, found, where, a.summary))
    return out


def plan(app: str, target: Target, *, options: Options | None = None, env: Env | None = None) -> Plan:
    """What applying ``app`` would do, computed from the files as they are now. Writes nothing.

    Raises ``UnparseableFile`` (a file we cannot read safely; it stays untouched) or ``ApplyError``. The one
    exception to "writes nothing": an earlier apply a kill interrupted is rolled back first (its files get their
    bytes from before it back), so the plan is made from files as the user left them, never from half an apply.
    """
    from ._base import Options
    from ._model import Env, Plan
    from ._safety import make_change, recover_interrupted

    a = adapter(app)
    env = env or Env.current()
    options = options or Options()
    result = Plan(app, target)
    for outcome in recover_interrupted():
        result.notes.append(f"{outcome.path}: {outcome.detail}")
    for edit in a.edits(target, env, options):
        result.changes.append(make_change(edit, result.mask))
    extras = a.extras(target, env, options)
    result.instructions, result.links = extras.instructions, extras.links
    result.notes = [*target.notes, *extras.notes]
    return result


def apply(p: Plan, *, force: bool = False) -> Record:
    """Write the plan's files (backup, atomic write, record). A plan without files writes nothing."""
    from ._safety import write_plan

    return write_plan(p, force=force)


def undo(app: str, *, dry_run: bool = False) -> UndoResult:
    """Undo the last apply for ``app`` (see ``_safety.undo_record``), then revoke the app's sidecar token.

    The token goes too because the app's config no longer names it: left active, a copy of the old config (a
    backup, a synced settings file) would still spend the real key through the sidecar. Link and instructions
    apps leave no file record; for them undo revokes the token only, and says so. When a file could not be put
    back, the token stays (the app may still be pointed at the sidecar) and the note says why.

    ``dry_run``: every app's undo takes this one path, so ``--undo --dry-run`` says what would happen (outcomes
    with their diffs, the token that would be revoked) and changes nothing: files, record, backups, token store.
    """
    a = adapter(app)

    from ._model import UndoResult
    from ._safety import load_record, recover_interrupted, undo_record

    recovered = [] if dry_run else recover_interrupted()  # an apply a kill interrupted is rolled back first
    if load_record(app) is None:
        if not recovered and _sidecar_token(app) is None:
            undo_record(app, a.remover, dry_run=dry_run)  # raises the bilingual "nothing to undo"
        result = UndoResult(app, recovered, dry_run=dry_run)
    else:
        result = undo_record(app, a.remover, dry_run=dry_run)
        result.outcomes[:0] = recovered
    failed = any(o.action == "error" for o in result.outcomes)
    result.notes.extend(_revoke_token(app, failed=failed, dry_run=dry_run))
    return result


def _sidecar_token(app: str) -> str | None:
    from baicai_sidecar._tokens import TokenStore

    try:
        return TokenStore().get(app)
    except Exception:  # a damaged token file is reported by the sidecar itself; undo still restores files
        return None


def _revoke_token(app: str, *, failed: bool, dry_run: bool = False) -> list[Message]:
    if _sidecar_token(app) is None:
        return []
    if failed:
        return [
            Text(f"{app} 的 sidecar 本地令牌仍然有效：有文件未能恢复，应用可能仍指向 sidecar；修复后再运行 `baicai apply {app} --undo`。",
                 f"the sidecar token for {app} is still active: a file could not be restored, so the app may still point at the sidecar; fix it and run `baicai apply {app} --undo` again.")
        ]
    if dry_run:
        return [
            Text(f"将吊销 {app} 的 sidecar 本地令牌。", f"would revoke the sidecar token for {app}.")
        ]
    from baicai_sidecar._tokens import TokenStore

    TokenStore().revoke(app)
    return [
        Text(f"已吊销 {app} 的 sidecar 本地令牌：旧配置的副本不能再通过 sidecar 使用你的密钥。",
             f"revoked the sidecar token for {app}: a leftover copy of its old config can no longer use your key through the sidecar.")
    ]


def open_link(url: str, env: Env | None = None) -> bool:
    """Hand a deep link to the desktop (the app then asks the user to confirm). False when there is no desktop."""
    from ._model import Env

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

