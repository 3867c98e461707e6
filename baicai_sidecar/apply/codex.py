"""``codex`` (OpenAI Codex CLI): a ``[model_providers.baicai]`` provider in ``config.toml`` and the key in
``auth.json``, written as a pair (both or neither; ``_safety`` puts the first back if the second fails).

``CODEX_HOME`` moves ``~/.codex``. The relay speaks Chat Completions only, so the provider says
``wire_api = "chat"``; ``requires_openai_auth = true`` makes codex send ``auth.json``'s ``OPENAI_API_KEY``.
Because that key is global to codex, the top-level ``model_provider``/``model`` are switched too: a baicai key
must never go to api.openai.com (the relay's "changed the key but not the URL" mistake).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import json_remove_member, json_set_member, toml_load
from ._model import Env, FileEdit, Target, UnparseableFile

PROVIDER_ID = "baicai"
AUTH_KEY = "OPENAI_API_KEY"


def codex_home(env: Env) -> Path:
    override = env.environ.get("CODEX_HOME", "").strip()
    return Path(override).expanduser() if override else env.home / ".codex"


def _providers(doc: Any, path: Path, create: bool) -> Any:
    import tomlkit

    providers = doc.get("model_providers")
    if providers is None and create:
        providers = tomlkit.table(is_super_table=True)
        doc["model_providers"] = providers
    if providers is not None and not isinstance(providers, dict):
        raise UnparseableFile(path, "model_providers 不是表 / model_providers is not a table")
    return providers


class CodexAdapter(Adapter):
    name = "codex"
    title = "Codex CLI (OpenAI)"
    summary = "config.toml 加 [model_providers.baicai] 并切换 model_provider；auth.json 写密钥 / provider + auth.json pair"

    def detect(self, env: Env) -> tuple[bool, str]:
        return self._found(env, ("codex",), (codex_home(env),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        home = codex_home(env)
        config, auth = home / "config.toml", home / "auth.json"
        provider = {
            "name": "BaicaiGPT",
            "base_url": target.base_url,
            "wire_api": "chat",
            "requires_openai_auth": True,
        }

        def add_config(old: str | None) -> str:
            import tomlkit

            doc = toml_load(old, config)
            providers = _providers(doc, config, create=True)
            current = providers.get(PROVIDER_ID)
            changed = False
            if current is None or {k: current.get(k) for k in provider} != provider:
                table: Any = current if isinstance(current, dict) else tomlkit.table()
                for k, v in provider.items():
                    table[k] = v
                if current is None:
                    if len(providers) and list(doc.keys())[-1] != "model_providers":
                        table.add(tomlkit.nl())  # a blank line before the next table, as the user's file has
                    providers[PROVIDER_ID] = table
                changed = True
            for key, value in (("model_provider", PROVIDER_ID), ("model", target.model)):
                if doc.get(key) != value:
                    doc[key] = value  # tomlkit files a new top-level key before the first table
                    changed = True
            if not changed:
                return old or ""
            text = tomlkit.dumps(doc)
            toml_load(text, config)  # never write TOML we could not read back
            return text

        def add_auth(old: str | None) -> str:
            return json_set_member(old, AUTH_KEY, target.key, auth)

        return [
            FileEdit(config, "config", add_config, self._remove_config(config)),
            FileEdit(auth, "auth", add_auth, self._remove_auth(auth), secret=True),
        ]

    @staticmethod
    def _remove_config(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            import tomlkit

            doc = toml_load(current, path)
            before = doc.as_string()
            orig = toml_load(original, path) if original else {}
            providers = _providers(doc, path, create=False)
            if providers is not None and PROVIDER_ID in providers:
                del providers[PROVIDER_ID]
                if not providers:
                    del doc["model_providers"]
            if doc.get("model_provider") == PROVIDER_ID:  # still ours: give back what the user had
                for key in ("model_provider", "model"):
                    if key in orig:
                        doc[key] = orig[key]
                    elif key in doc:
                        del doc[key]
            after = tomlkit.dumps(doc)
            return current if after == before else after

        return remove

    @staticmethod
    def _remove_auth(path: Path) -> Remover:
        return lambda current, original, ours: json_remove_member(current, original, AUTH_KEY, path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        if part == "config":
            return self._remove_config(path)
        if part == "auth":
            return self._remove_auth(path)
        return None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        notes = []
        auth = codex_home(env) / "auth.json"
        try:
            data = json.loads(auth.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("tokens"):
            notes.append(
                "auth.json 里还有 ChatGPT 登录：若 codex 仍用它，请在 config.toml 设 preferred_auth_method = \"apikey\" / "
                "auth.json also holds a ChatGPT login; if codex keeps using it, set preferred_auth_method = \"apikey\""
            )
        return Extras(instructions=[f'codex "你好"   # model_provider = "{PROVIDER_ID}", model = "{target.model}"'], notes=notes)
