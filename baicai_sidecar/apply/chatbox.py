"""``chatbox``: Chatbox's provider import link, ``chatbox://provider/import?config=<base64 JSON>``.

Chatbox splits the address into ``apiHost`` (scheme and host, plus any path prefix) and ``apiPath``
(``/v1/chat/completions``). The app shows the provider and asks before saving it.
"""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Target
from ._printed import b64_json


def import_link(target: Target) -> str:
    config = {
        "id": "baicaigpt",
        "name": "BaicaiGPT",
        "type": "openai",
        "isCustom": True,
        "urls": {"website": "https://baicaigpt.com"},
        "settings": {
            "apiHost": target.root_url,
            "apiPath": "/v1/chat/completions",
            "apiKey": target.key,
            "models": [{"modelId": target.model, "type": "chat"}],
        },
    }
    return f"chatbox://provider/import?config={b64_json(config)}"


class ChatboxAdapter(Adapter):
    name = "chatbox"
    title = "Chatbox"
    kind = "link"
    summary = "打开导入链接，在 Chatbox 中确认 / opens an import link; confirm in Chatbox"

    def detect(self, env: Env) -> tuple[bool, str]:
        paths = (env.config_home() / "xyz.chatboxapp.app", env.config_home() / "xyz.chatboxapp.ce")
        return self._found(env, ("chatbox",), paths + self._mac_apps(env, "Chatbox.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                "或手动：设置 → 模型提供方 → 添加 → OpenAI API 兼容；"
                f"API 域名 {target.root_url}，API 路径 /v1/chat/completions，API 密钥 {target.key} / "
                f"or by hand: Settings → Model Provider → Add (OpenAI API compatible): host {target.root_url}, "
                f"path /v1/chat/completions, key {target.key}"
            ],
        )
