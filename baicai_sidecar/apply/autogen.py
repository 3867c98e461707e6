"""``autogen``: an entry in ``OAI_CONFIG_LIST`` (other entries kept) and, for autogen-agentchat, a snippet.

Written for autogen-agentchat / autogen-ext 0.7 (``autogen_core.models.ModelFamily``, ``ModelInfo``; checked by
constructing the client in tests) and ag2 0.14 (ag2ai/ag2 ``autogen/llm_config/config.py``:
``LLMConfig.from_json(path=…, filter_dict=…)``; the old module-level ``config_list_from_json`` is gone).
Our entry carries ``"tags": ["baicai"]`` so ``filter_dict={"tags": ["baicai"]}`` selects it, and so we find it
again. The file is ``--file``, else ``$OAI_CONFIG_LIST`` when that names a file, else ``./OAI_CONFIG_LIST``.
agentchat's ``OpenAIChatCompletionClient`` needs ``model_info`` for a non-OpenAI base URL; ``model_info`` below
gives each model its own family and capabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, Remover
from ._edit import json_remove_item, json_upsert_item
from ._model import Env, FileEdit, Message, Target

TAG = "baicai"


def config_list_path(env: Env, options: Options) -> Path:
    if options.file:
        return options.file
    named = env.environ.get("OAI_CONFIG_LIST", "").strip()
    if named and not named.startswith(("[", "{")):
        return (env.cwd / Path(named).expanduser()).resolve()
    return env.cwd / "OAI_CONFIG_LIST"


def _ours(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("tags"), list) and TAG in item["tags"]


# (prefix, family, vision, structured_output): longest prefix first; families are autogen_core's ModelFamily values
_FAMILIES: tuple[tuple[str, str, bool, bool], ...] = (
    ("gpt-5", "gpt-5", True, True),
    ("gpt-4.1", "gpt-41", True, True),
    ("gpt-4.5", "gpt-45", True, True),
    ("gpt-4o", "gpt-4o", True, True),
    ("o4", "o4", True, True),
    ("o3", "o3", True, True),
    ("o1-mini", "o1", False, False),
    ("o1", "o1", True, True),
    ("gpt-4-turbo-preview", "gpt-4", False, False),
    ("gpt-4-turbo", "gpt-4", True, False),
    ("gpt-4", "gpt-4", False, False),
    ("gpt-3.5", "gpt-35", False, False),
)


def model_info(model: str) -> dict[str, Any]:
    """``ModelInfo`` for ``model``: its real family, and vision only where the model takes images."""
    family, vision, structured = "unknown", False, False
    for prefix, fam, vis, struct in _FAMILIES:
        if model.startswith(prefix):
            family, vision, structured = fam, vis, struct
            break
    if "vision" in model:
        vision = True
    return {
        "vision": vision,
        "function_calling": True,
        "json_output": model not in ("gpt-3.5-turbo-0613", "gpt-3.5-turbo-16k-0613", "gpt-4-0613", "gpt-4"),
        "family": family,
        "structured_output": structured,
    }


class AutogenAdapter(Adapter):
    name = "autogen"
    title = "AutoGen (OAI_CONFIG_LIST, autogen-agentchat)"
    summary = Text("OAI_CONFIG_LIST 加一个带 baicai 标签的条目，并打印 agentchat 代码", "a tagged OAI_CONFIG_LIST entry + snippet")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(config_list_path(env, Options()),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        path = config_list_path(env, options)
        entry = {"model": target.model, "api_key": target.key, "base_url": target.base_url, "tags": [TAG]}

        def add(old: str | None) -> str:
            return json_upsert_item(old, entry, lambda item: _ours(item) and item.get("model") == target.model, path)

        return [FileEdit(path, "config_list", add, self._remove(path), secret=True)]

    @staticmethod
    def _remove(path: Path) -> Remover:
        return lambda current, original, ours: json_remove_item(current, _ours, path)

    def remover(self, part: str, path: Path) -> Remover | None:
        return self._remove(path) if part == "config_list" else None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        info = model_info(target.model)
        snippet = (
            "from autogen_ext.models.openai import OpenAIChatCompletionClient\n\n"
            "client = OpenAIChatCompletionClient(\n"
            f'    model="{target.model}",\n'
            f'    base_url="{target.base_url}",\n'
            f'    api_key="{target.key}",\n'
            f"    model_info={info!r},\n"
            ")"
        )
        path = config_list_path(env, options)
        return Extras(
            instructions=[snippet],
            notes=[
                f'ag2: LLMConfig.from_json(path="{path}", filter_dict={{"tags": ["{TAG}"]}})',
            ],
        )
