"""``roo-code``: a settings-import file for Roo Code (VS Code) with one provider profile ``BaicaiGPT``.

Written for Roo Code 3.x against ``@roo-code/types`` 1.115.0 (the zod schemas Roo Code validates an imported
settings file with: ``{providerProfiles: {currentApiConfigName, apiConfigs: {name: {apiProvider: "openai",
openAiBaseUrl, openAiApiKey, openAiModelId, id}}, modeApiConfigs}, globalSettings}``; the tests parse the file we
write with them) and Roo Code's docs ("Import/Export settings", the ``roo-cline.autoImportSettingsPath`` VS Code
setting). Roo Code keeps its real settings in VS Code's secret storage, which we must not write: the user imports
this file (Settings → Import), or points ``roo-cline.autoImportSettingsPath`` at it. The file holds the key, so it
is written 0600 and ``--undo`` deletes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, Remover
from ._edit import json_remove_in, json_set_in
from ._model import Env, FileEdit, Message, Target

PROFILE = "BaicaiGPT"


def settings_path(env: Env, options: Options) -> Path:
    return options.file or env.home / "roo-code-baicai-settings.json"


def profile(target: Target) -> dict[str, Any]:
    return {
        "id": "baicaigpt" if target.kind == "relay" else "baicaigpt-sidecar",
        "apiProvider": "openai",
        "openAiBaseUrl": target.base_url,
        "openAiApiKey": target.key,
        "openAiModelId": target.model,
    }


class RooCodeAdapter(Adapter):
    name = "roo-code"
    title = "Roo Code (VS Code)"
    summary = Text("写一个设置导入文件（OpenAI Compatible 配置档 BaicaiGPT），在 Roo Code 中导入",
                   "writes a settings-import file to import in Roo Code")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(env.home / ".vscode" / "extensions",))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        path = settings_path(env, options)
        entry = profile(target)

        def add(old: str | None) -> str:
            if old is None or not old.strip():
                document = {
                    "providerProfiles": {"currentApiConfigName": PROFILE, "apiConfigs": {PROFILE: entry}, "modeApiConfigs": {}},
                    "globalSettings": {},
                }
                return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
            return json_set_in(old, ("providerProfiles", "apiConfigs", PROFILE), entry, path)

        return [FileEdit(path, "settings", add, self._remove(path), secret=True)]

    @staticmethod
    def _remove(path: Path) -> Remover:
        return lambda current, original, ours: json_remove_in(current, original, ("providerProfiles", "apiConfigs", PROFILE), path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        return self._remove(path) if part == "settings" else None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        path = settings_path(env, options)
        return Extras(
            instructions=[
                Text(f"Roo Code → 设置（齿轮）→ 底部“导入”→ 选择 {path}",
                     f"Roo Code → Settings (gear) → Import (at the bottom) → pick {path}"),
                Text(f'或在 VS Code settings.json 中设置 "roo-cline.autoImportSettingsPath": "{path}" 后重启',
                     f'or set "roo-cline.autoImportSettingsPath": "{path}" in VS Code settings.json and restart'),
                Text("导入后可删除该文件（或 `baicai apply roo-code --undo`）",
                     "once imported, delete the file (or run `baicai apply roo-code --undo`)"),
            ],
        )
