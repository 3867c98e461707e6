"""``llm`` (simonw/llm): a model in ``extra-openai-models.yaml`` and its key in ``keys.json``.

llm's user dir is ``LLM_USER_PATH`` when set, else click's app dir for ``io.datasette.llm``. Models are entries
with ``model_id`` (what ``llm -m`` takes), ``model_name`` (sent to the API), ``api_base`` and ``api_key_name``
(a name in ``keys.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import YamlDoc, json_remove_member, json_set_member, upsert
from ._model import Env, FileEdit, Message, Target

KEY_NAME = "baicai"
_KEYS_NOTE = {"// Note": "This file stores secret API credentials. Do not share!"}


def user_dir(env: Env) -> Path:
    override = env.environ.get("LLM_USER_PATH", "").strip()
    if override:
        return Path(override).expanduser()
    return env.config_home() / "io.datasette.llm"


def model_id(model: str) -> str:
    return f"baicai-{model}"


def _ours(item: Any) -> bool:
    return isinstance(item, dict) and item.get("api_key_name") == KEY_NAME and str(item.get("model_id", "")).startswith("baicai-")


class LlmAdapter(Adapter):
    name = "llm"
    title = "llm (simonw/llm CLI)"
    summary = Text("extra-openai-models.yaml 加一个模型，keys.json 加密钥",
                   "a model in extra-openai-models.yaml + key in keys.json")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("llm",), (user_dir(env),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        folder = user_dir(env)
        models, keys = folder / "extra-openai-models.yaml", folder / "keys.json"
        entry = {
            "model_id": model_id(target.model),
            "model_name": target.model,
            "api_base": target.base_url,
            "api_key_name": KEY_NAME,
        }

        def add_model(old: str | None) -> str:
            doc = YamlDoc(old, models)
            seq = doc.sequence()
            upsert(seq, entry, lambda item: _ours(item) and item.get("model_id") == entry["model_id"])
            return doc.dump()

        def add_key(old: str | None) -> str:
            if old is None or not old.strip():
                old = json_set_member(None, "// Note", _KEYS_NOTE["// Note"], keys)
            return json_set_member(old, KEY_NAME, target.key, keys)

        return [
            FileEdit(models, "models", add_model, self._remove_models(models)),
            FileEdit(keys, "keys", add_key, self._remove_key(keys), secret=True),
        ]

    @staticmethod
    def _remove_models(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            doc = YamlDoc(current, path)
            cut = doc.without(doc.sequence(), _ours)
            return current if cut is None else cut

        return remove

    @staticmethod
    def _remove_key(path: Path) -> Remover:
        return lambda current, original, ours: json_remove_member(current, original, KEY_NAME, path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        return {"models": self._remove_models, "keys": self._remove_key}.get(part, lambda p: None)(path)

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(instructions=[f'llm -m {model_id(target.model)} "你好"'])
