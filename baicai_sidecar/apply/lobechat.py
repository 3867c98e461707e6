"""``lobechat``: LobeChat's server environment, or its settings-import URL.

Written for LobeChat 1.x from its self-hosting docs (``OPENAI_API_KEY``, ``OPENAI_PROXY_URL`` *with* ``/v1``,
``OPENAI_MODEL_LIST``), its ``ImportSettings`` component (reads the ``LOBE_URL_IMPORT_NAME`` query parameter into
``importUrlShareSettings``) and new-api's chat template (QuantumNous/new-api ``setting/chats``:
``?settings={"keyVaults":{"openai":{"apiKey":"{key}","baseURL":"{address}/v1"}}}``). LobeChat sends its Responses-only models,
and chats with web search, to ``/v1/responses``: the relay has none, the sidecar serves it.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Target
from ._printed import docker_sidecar_note

HOSTED = "https://chat-preview.lobehub.com/"


def import_link(target: Target, host: str = HOSTED) -> str:
    settings = {"keyVaults": {"openai": {"apiKey": target.key, "baseURL": target.base_url}}}
    return f"{host}?settings={quote(json.dumps(settings, separators=(',', ':')), safe='')}"


class LobeChatAdapter(Adapter):
    name = "lobechat"
    title = "LobeChat"
    kind = "link"
    summary = Text("打开设置导入链接，或打印环境变量（OPENAI_PROXY_URL 带 /v1）",
                   "opens a settings-import link, or prints env lines (OPENAI_PROXY_URL with /v1)")

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        notes = [
            Text(f"链接指向官方预览站 {HOSTED}；自部署时把它换成你的地址",
                 f"the link opens the hosted preview {HOSTED}; for your own deployment replace that host"),
        ]
        if target.kind == "relay":
            notes.append(
                Text("LobeChat 把只支持 Responses 的模型和带联网搜索的对话发往 /v1/responses，白菜GPT 没有该接口：只用普通对话模型，或改用 --target sidecar。",
                     "LobeChat sends Responses-only models and chats with web search to /v1/responses, which the relay lacks: stick to plain chat models, or use --target sidecar.")
            )
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                Text("自部署的服务端环境变量：", "server environment of a self-hosted LobeChat:"),
                f"OPENAI_API_KEY={target.key}",
                f"OPENAI_PROXY_URL={target.base_url}",
                f"OPENAI_MODEL_LIST=+{target.model}",
                Text("或在界面中：设置 → AI 服务商 → OpenAI：API Key 与 API 代理地址（带 /v1）",
                     "or in the UI: Settings → AI Service Provider → OpenAI: API key and API proxy URL (with /v1)"),
            ],
            notes=[*notes, *docker_sidecar_note(target)],
        )
