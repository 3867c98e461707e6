"""``librechat``: a custom endpoint ``BaicaiGPT`` in ``librechat.yaml``, its key in LibreChat's ``.env``.

Written for LibreChat 0.8 from its docs (librechat.ai/docs ``configuration/librechat_yaml/object_structure/
custom_endpoint``: ``endpoints.custom[]`` with ``name``, ``apiKey``, ``baseURL`` *with* ``/v1``,
``models.default`` / ``models.fetch``, ``titleConvo``, ``modelDisplayLabel``; ``${VAR}`` reads the server's
environment) and checked in tests against ``librechat-data-provider`` 0.8.524's ``configSchema`` — the zod
schema LibreChat validates the file with. The file is ``--file``, else ``$CONFIG_PATH``, else
``./librechat.yaml`` (LibreChat's project root); the key goes to the ``.env`` beside it as ``BAICAI_API_KEY``,
so the YAML (often committed) never holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import YamlDoc, env_remove, env_set, upsert, yaml_list_in
from ._model import Env, FileEdit, Message, Target, UnparseableFile
from ._printed import docker_sidecar_note

ENDPOINT_NAME = "BaicaiGPT"
SECRET_NAME = "BAICAI_API_KEY"
CONFIG_VERSION = "1.3.17"  # librechat-data-provider 0.8.524 Constants.CONFIG_VERSION


def config_path(env: Env, options: Options) -> Path:
    if options.file:
        return options.file
    custom = env.environ.get("CONFIG_PATH", "").strip()
    if custom and not custom.startswith(("http://", "https://")):
        return (env.cwd / Path(custom).expanduser()).resolve()
    return env.cwd / "librechat.yaml"


def _ours(item: Any) -> bool:
    return isinstance(item, dict) and item.get("name") == ENDPOINT_NAME


def endpoint(target: Target) -> dict[str, Any]:
    return {
        "name": ENDPOINT_NAME,
        "apiKey": "${%s}" % SECRET_NAME,
        "baseURL": target.base_url,
        "models": {"default": [target.model], "fetch": True},
        "titleConvo": True,
        "titleModel": "current_model",
        "modelDisplayLabel": ENDPOINT_NAME,
    }


class LibreChatAdapter(Adapter):
    name = "librechat"
    title = "LibreChat"
    summary = Text("librechat.yaml 加自定义端点 BaicaiGPT，密钥写入 .env", "a custom endpoint in librechat.yaml, key in .env")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(config_path(env, Options()),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        config = config_path(env, options)
        secrets = config.parent / ".env"
        entry = endpoint(target)

        def add_endpoint(old: str | None) -> str:
            from ruamel.yaml.comments import CommentedMap

            doc = YamlDoc(old, config)
            top = doc.mapping()
            if old is None or not old.strip():
                top.update({"version": CONFIG_VERSION, "cache": True})
            endpoints = top.get("endpoints")
            if endpoints is None:
                endpoints = top["endpoints"] = CommentedMap()
            if not isinstance(endpoints, dict):
                raise UnparseableFile(config, Text("`endpoints` 不是映射", "`endpoints` is not a mapping"))
            custom = yaml_list_in(endpoints, "custom", config)
            if not upsert(custom, entry, _ours):
                return old or ""
            return doc.dump()

        def add_secret(old: str | None) -> str:
            return env_set(old, {SECRET_NAME: target.key}, secrets)

        return [
            FileEdit(config, "config", add_endpoint, self._remove_endpoint(config)),
            FileEdit(secrets, "secrets", add_secret, self._remove_secret(secrets), secret=True),
        ]

    @staticmethod
    def _remove_endpoint(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            doc = YamlDoc(current, path)
            endpoints = doc.mapping().get("endpoints")
            custom = endpoints.get("custom") if isinstance(endpoints, dict) else None
            cut = doc.without(custom, _ours) if isinstance(custom, list) else None
            return current if cut is None else cut

        return remove

    @staticmethod
    def _remove_secret(path: Path) -> Remover:
        return lambda current, original, ours: env_remove(current, original, (SECRET_NAME,), path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        if part == "config":
            return self._remove_endpoint(path)
        if part == "secrets":
            return self._remove_secret(path)
        return None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                Text("重启 LibreChat（docker compose restart api），在端点列表中选择 BaicaiGPT",
                     "restart LibreChat (docker compose restart api) and pick BaicaiGPT in the endpoint menu")
            ],
            notes=docker_sidecar_note(target),
        )
