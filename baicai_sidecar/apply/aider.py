"""``aider``: ``openai-api-base``, ``openai-api-key`` and ``model: openai/<model>`` in ``~/.aider.conf.yml``.

Written for aider 0.86 from its docs ("OpenAI compatible APIs": ``OPENAI_API_BASE`` + ``OPENAI_API_KEY`` and
``--model openai/<model>``; "YAML config file": ``.aider.conf.yml`` in the home dir, the git root and the
current dir, later ones winning) and its option parser ``aider/args.py`` (aider-chat 0.86.2), which the tests
load to parse the file we write. ``--file`` picks a project's ``.aider.conf.yml`` instead of the home one.

Three top-level keys are ours; undo puts back the values the user had for them (or removes them), and a value
the user changed after us stays. The key is in the file, so it is written 0600.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import YamlDoc
from ._model import Env, FileEdit, Message, Target


def config_path(env: Env, options: Options) -> Path:
    return options.file or env.home / ".aider.conf.yml"


KEYS = ("openai-api-base", "openai-api-key", "model")


def _key_lines(text: str) -> dict[str, int]:
    """Where each of our keys sits, when it is a one-line top-level ``key: value``."""
    found: dict[str, int] = {}
    for index, line in enumerate(text.splitlines()):
        for k in KEYS:
            if line.startswith(f"{k}:") and not line.rstrip().endswith((":", "|", ">")):
                found[k] = index
    return found


def values(target: Target) -> dict[str, str]:
    return {"openai-api-base": target.base_url, "openai-api-key": target.key, "model": f"openai/{target.model}"}


class AiderAdapter(Adapter):
    name = "aider"
    title = "aider"
    summary = Text("~/.aider.conf.yml 写 openai-api-base、openai-api-key、model", "the OpenAI-compatible keys in ~/.aider.conf.yml")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("aider",), (config_path(env, Options()),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        path = config_path(env, options)
        wanted = values(target)

        def add(old: str | None) -> str:
            doc = YamlDoc(old, path)
            top = doc.mapping()
            if all(top.get(k) == v for k, v in wanted.items()):
                return old or ""
            for k, v in wanted.items():
                top[k] = v
            return doc.dump()

        return [FileEdit(path, "config", add, self._remove(path), secret=True)]

    @staticmethod
    def _remove(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            doc = YamlDoc(current, path)
            top = doc.mapping()
            before: Any = YamlDoc(original, path).mapping() if original else {}
            theirs = _key_lines(original or "")
            lines = current.splitlines(keepends=True)
            mine = _key_lines(current)
            changed = False
            for k in KEYS:
                if k not in top or k not in mine or not ours(lines[mine[k]]):
                    continue  # gone, or a value the user set after us
                if k in before:
                    top[k] = before[k]
                    lines[mine[k]] = (original or "").splitlines(keepends=True)[theirs[k]] if k in theirs else lines[mine[k]]
                else:
                    del top[k]
                    lines[mine[k]] = ""
                changed = True
            if not changed:
                return current
            # Line by line keeps the user's comments (ruamel ties a trailing comment to the key before it);
            # used only when it parses to exactly what ruamel's own edit gives.
            text = "".join(lines)
            try:
                if YamlDoc(text, path).mapping() == top:
                    return text
            except Exception:  # noqa: BLE001 - any doubt: ruamel's output is still right
                pass
            return doc.dump()

        return remove

    def remover(self, part: str, path: Path) -> Remover | None:
        return self._remove(path) if part == "config" else None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[Text("aider  # 读取 ~/.aider.conf.yml", "reads ~/.aider.conf.yml")],
            notes=[
                Text(f"也可只用环境变量：OPENAI_API_BASE, OPENAI_API_KEY, AIDER_MODEL=openai/{target.model}",
                     f"or with environment variables only: OPENAI_API_BASE, OPENAI_API_KEY, AIDER_MODEL=openai/{target.model}")
            ],
        )
