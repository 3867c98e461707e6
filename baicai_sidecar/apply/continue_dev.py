"""``continue`` (Continue.dev): a model in ``~/.continue/config.yaml``, its key in Continue's secrets ``.env``.

Written for Continue 1.x against ``@continuedev/config-yaml`` 1.42.0 (the schema Continue parses ``config.yaml``
with; tests run every file we write through its ``parseConfigYaml`` where node is installed). Continue sends
gpt-5 and o-series models to ``/v1/responses``, which the relay lacks: for those models and the relay target the
entry carries ``useResponsesApi: false`` (honoured by the IDE extension, not by the ``cn`` CLI), and the note
points to the sidecar, which serves ``/v1/responses``.

The model's ``apiKey`` is ``${{ secrets.BAICAI_API_KEY }}``, which Continue resolves from ``~/.continue/.env``,
so the key is never in the YAML file (that file is often shared or synced). ``CONTINUE_GLOBAL_DIR`` moves the
folder. A folder that still uses the old ``config.json`` is left alone: creating ``config.yaml`` next to it would
silently replace the user's whole configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import YamlDoc, env_remove, env_set, upsert, yaml_list_in
from ._model import ApplyError, Env, FileEdit, Message, Target

SECRET_NAME = "BAICAI_API_KEY"
MODEL_PREFIX = "BaicaiGPT "


def global_dir(env: Env) -> Path:
    override = env.environ.get("CONTINUE_GLOBAL_DIR", "").strip()
    return Path(override).expanduser() if override else env.home / ".continue"


def _ours(item: Any) -> bool:
    return isinstance(item, dict) and str(item.get("name", "")).startswith(MODEL_PREFIX)


class ContinueAdapter(Adapter):
    name = "continue"
    title = "Continue (VS Code / JetBrains)"
    summary = Text("config.yaml 加一个模型，密钥写入 ~/.continue/.env", "a model in config.yaml, key in the secrets .env")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(global_dir(env),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        folder = global_dir(env)
        config, secrets = folder / "config.yaml", folder / ".env"
        if not config.exists() and (folder / "config.json").exists():
            raise ApplyError(
                Text(f"Continue 仍在使用 {folder / 'config.json'}：先在 Continue 中把配置迁移到 config.yaml 再运行。",
                     f"Continue still uses {folder / 'config.json'}: migrate to config.yaml in Continue first, then run again.")
            )
        name = f"{MODEL_PREFIX}{target.model}"
        entry: dict[str, object] = {
            "name": name,
            "provider": "openai",
            "model": target.model,
            "apiBase": target.base_url,
            "apiKey": "${{ secrets.%s }}" % SECRET_NAME,
        }

        if target.kind == "relay" and responses_model(target.model):
            entry["useResponsesApi"] = False

        def add_model(old: str | None) -> str:
            doc = YamlDoc(old, config)
            top = doc.mapping()
            if old is None or not old.strip():
                top.update({"name": "Local Assistant", "version": "1.0.0", "schema": "v1"})
            models = yaml_list_in(top, "models", config)
            if not upsert(models, entry, lambda item: _ours(item) and item.get("name") == name):
                return old or ""
            return doc.dump()

        def add_secret(old: str | None) -> str:
            return env_set(old, {SECRET_NAME: target.key}, secrets)

        return [
            FileEdit(config, "config", add_model, self._remove_model(config)),
            FileEdit(secrets, "secrets", add_secret, self._remove_secret(secrets), secret=True),
        ]

    @staticmethod
    def _remove_model(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            doc = YamlDoc(current, path)
            models = doc.mapping().get("models")
            cut = doc.without(models, _ours) if isinstance(models, list) else None
            return current if cut is None else cut

        return remove

    @staticmethod
    def _remove_secret(path: Path) -> Remover:
        return lambda current, original, ours: env_remove(current, original, (SECRET_NAME,), path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        if part == "config":
            return self._remove_model(path)
        if part == "secrets":
            return self._remove_secret(path)
        return None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        notes: list[Message] = [Text(f"在 Continue 的模型列表中选择 “{MODEL_PREFIX}{target.model}”",
                                     f"pick “{MODEL_PREFIX}{target.model}” in Continue's model list")]
        if target.kind == "relay" and responses_model(target.model):
            notes.append(Text(
                f"{target.model} 在 Continue 中走 /v1/responses：已写入 useResponsesApi: false（IDE 插件有效，cn 命令行无效）；"
                "cn 请改用 --target sidecar。",
                f"Continue sends {target.model} to /v1/responses: the entry sets useResponsesApi: false (the IDE "
                "extension honours it, the cn CLI does not); for cn use --target sidecar.",
            ))
        return Extras(notes=notes)


def responses_model(model: str) -> bool:
    """Models Continue sends to the Responses API by default (gpt-5 and the o-series)."""
    return model.startswith(("gpt-5", "o1", "o3", "o4"))
