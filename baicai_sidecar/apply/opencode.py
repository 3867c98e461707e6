"""``opencode``: a provider ``baicai`` in OpenCode's ``opencode.json``, through ``@ai-sdk/openai-compatible``.

Written for OpenCode 1.18 from its docs (opencode.ai/docs ``config`` and ``providers``: the global file is
``~/.config/opencode/opencode.json`` — ``$XDG_CONFIG_HOME/opencode`` when set, on every OS — and
``OPENCODE_CONFIG`` names a custom file; files are merged, not replaced; a custom provider is
``{"npm": "@ai-sdk/openai-compatible", "name", "options": {"baseURL", "apiKey"}, "models": {id: {"name"}}}``)
and CC Switch's ``build_opencode_settings`` (farion1231/cc-switch @ 5ca9459), which writes the same shape.
The openai-compatible package speaks Chat Completions, so this works with the chat-only relay as it is.

Only ``provider.baicai`` is ours: every other byte of the file stays (JSON edited by spans, see ``_edit.json``);
the default ``model`` is left alone (pick ``baicai/<model>`` in ``/models``). The key is in the file, so the
file is written 0600. A ``.jsonc`` file with comments is not ours to rewrite: we refuse it as unparseable and
point to ``--file``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, Remover
from ._edit import json_remove_in, json_set_in, json_set_member
from ._model import Env, FileEdit, Message, Target

PROVIDER_ID = "baicai"
SCHEMA = "https://opencode.ai/config.json"
KEYS = ("provider", PROVIDER_ID)


def config_path(env: Env, options: Options) -> Path:
    if options.file:
        return options.file
    custom = env.environ.get("OPENCODE_CONFIG", "").strip()
    if custom:
        return Path(custom).expanduser()
    xdg = env.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else env.home / ".config") / "opencode" / "opencode.json"


def provider_entry(target: Target) -> dict[str, Any]:
    return {
        "npm": "@ai-sdk/openai-compatible",
        "name": "BaicaiGPT" if target.kind == "relay" else "BaicaiGPT sidecar",
        "options": {"baseURL": target.base_url, "apiKey": target.key},
        "models": {target.model: {"name": target.model}},
    }


class OpenCodeAdapter(Adapter):
    name = "opencode"
    title = "OpenCode"
    summary = Text("opencode.json 加 openai-compatible 供应商 baicai",
                   "an openai-compatible provider “baicai” in opencode.json")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("opencode",), (config_path(env, Options()).parent,))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        path = config_path(env, options)
        entry = provider_entry(target)

        def add(old: str | None) -> str:
            if old is None or not old.strip():
                old = json_set_member(None, "$schema", SCHEMA, path)
            return json_set_in(old, KEYS, entry, path)

        return [FileEdit(path, "config", add, self._remove(path), secret=True)]

    @staticmethod
    def _remove(path: Path) -> Remover:
        return lambda current, original, ours: json_remove_in(current, original, KEYS, path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        return self._remove(path) if part == "config" else None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        notes: list[Message] = []
        jsonc = config_path(env, options).with_suffix(".jsonc")
        if jsonc.exists():
            notes.append(
                Text(f"{jsonc} 也存在：OpenCode 会合并两者，同名供应商以后加载的为准。",
                     f"{jsonc} exists too: OpenCode merges both, and for the same provider id the one loaded later wins.")
            )
        return Extras(
            instructions=[
                f'opencode run -m {PROVIDER_ID}/{target.model} "你好"',
                Text(f"或在 OpenCode 中输入 /models，选择 BaicaiGPT → {target.model}",
                     f"or type /models in OpenCode and pick BaicaiGPT → {target.model}"),
            ],
            notes=notes,
        )
