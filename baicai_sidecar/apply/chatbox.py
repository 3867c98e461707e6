"""``chatbox``: Chatbox's provider import link, ``chatbox://provider/import?config=<base64 JSON>``.

Written from Chatbox v1.20.0 (chatboxai/chatbox @ 0d3139e): ``src/main/deeplinks.ts`` (the link),
``src/renderer/utils/provider-config.ts`` (the zod schema of a custom provider: ``{isCustom, id, name, type,
urls, settings: {apiHost, apiPath, apiKey, models}}``), ``src/shared/utils/llm_utils.ts``
(``normalizeOpenAIApiHostAndPath``: defaults ``/chat/completions`` after a host that ends in ``/v1``) and
``src/shared/models/openai-compatible.ts`` (the model list is ``{apiHost}/models``). So ``apiHost`` carries
``/v1`` and ``apiPath`` is ``/chat/completions``: without ``/v1`` the model list would go to ``/models``.
The relay and the sidecar get different provider ids, so importing one never overwrites the other.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Message, Target
from ._printed import b64_json

PROVIDER_IDS = {"relay": "baicaigpt", "sidecar": "baicaigpt-sidecar"}
API_PATH = "/chat/completions"


def import_link(target: Target) -> str:
    config = {
        "id": PROVIDER_IDS[target.kind],
        "name": "BaicaiGPT" if target.kind == "relay" else "BaicaiGPT sidecar",
        "type": "openai",
        "isCustom": True,
        "urls": {"website": "https://baicaigpt.com"},
        "settings": {
            "apiHost": target.base_url,
            "apiPath": API_PATH,
            "apiKey": target.key,
            "models": [{"modelId": target.model, "type": "chat"}],
        },
    }
    return f"chatbox://provider/import?config={b64_json(config)}"


class ChatboxAdapter(Adapter):
    name = "chatbox"
    title = "Chatbox"
    kind = "link"
    summary = Text("打开导入链接，在 Chatbox 中确认", "opens an import link; confirm in Chatbox")

    def detect(self, env: Env) -> tuple[bool, Message]:
        paths = (env.config_home() / "xyz.chatboxapp.app", env.config_home() / "xyz.chatboxapp.ce")
        return self._found(env, ("chatbox",), paths + self._mac_apps(env, "Chatbox.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                Text(f"或手动：设置 → 模型提供方 → 添加 → OpenAI API 兼容；API 域名 {target.base_url}，API 路径 {API_PATH}，API 密钥 {target.key}，然后点“获取”拉取模型列表",
                     f"or by hand: Settings → Model Provider → Add (OpenAI API compatible): API host {target.base_url}, API path {API_PATH}, key {target.key}; then Fetch to load the model list")
            ],
        )
