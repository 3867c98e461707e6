"""``aichat``: an ``openai-compatible`` client named ``baicai`` in aichat's ``config.yaml``.

Written for aichat 0.30 from its ``src/config/mod.rs`` (``Config::config_file`` / ``config_dir``) and its wiki
"Environment Variables": the file is ``AICHAT_CONFIG_FILE`` when set; else ``config.yaml`` in
``AICHAT_CONFIG_DIR``; else ``$XDG_CONFIG_HOME/aichat`` when that is set (on every OS, macOS and Windows too);
else ``<OS config dir>/aichat`` (Rust's ``dirs::config_dir``). The key lives in that file, so it is written 0600.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import YamlDoc, upsert, yaml_list_in
from ._model import Env, FileEdit, Message, Target

CLIENT_NAME = "baicai"


def config_path(env: Env) -> Path:
    file = env.environ.get("AICHAT_CONFIG_FILE", "").strip()
    if file:
        return Path(file).expanduser()
    folder = env.environ.get("AICHAT_CONFIG_DIR", "").strip()
    if folder:
        return Path(folder).expanduser() / "config.yaml"
    xdg = env.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else env.config_home()
    return base / "aichat" / "config.yaml"


def _ours(item: Any) -> bool:
    return isinstance(item, dict) and item.get("name") == CLIENT_NAME


def _entry_in(text: str | None, path: Path) -> Any:
    """The client named ``baicai`` in ``text`` (the file as it was before we applied), if there was one."""
    if not text:
        return None
    clients = YamlDoc(text, path).mapping().get("clients")
    return next((item for item in clients if _ours(item)), None) if isinstance(clients, list) else None


class AichatAdapter(Adapter):
    name = "aichat"
    title = "aichat"
    summary = Text("config.yaml 的 clients 中加 openai-compatible 客户端 baicai",
                   "an openai-compatible client in config.yaml")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("aichat",), (config_path(env),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        path = config_path(env)
        entry = {
            "type": "openai-compatible",
            "name": CLIENT_NAME,
            "api_base": target.base_url,
            "api_key": target.key,
            "models": [{"name": target.model}],
        }

        def add(old: str | None) -> str:
            doc = YamlDoc(old, path)
            clients = yaml_list_in(doc.mapping(), "clients", path)
            if not upsert(clients, entry, _ours):
                return old or ""
            return doc.dump()

        return [FileEdit(path, "config", add, self._remove(path), secret=True)]

    @staticmethod
    def _remove(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            doc = YamlDoc(current, path)
            clients = doc.mapping().get("clients")
            theirs = _entry_in(original, path)
            if theirs is not None and isinstance(clients, list):
                # A client named "baicai" was the user's own before we applied: put it back as it was.
                for index, item in enumerate(clients):
                    if _ours(item):
                        clients[index] = theirs
                return doc.dump()
            cut = doc.without(clients, _ours) if isinstance(clients, list) else None
            return current if cut is None else cut

        return remove

    def remover(self, part: str, path: Path) -> Remover | None:
        return self._remove(path) if part == "config" else None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(instructions=[f'aichat -m {CLIENT_NAME}:{target.model} "你好"'])
