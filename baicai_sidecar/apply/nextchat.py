"""``nextchat`` (ChatGPT-Next-Web): ``BASE_URL`` *without* ``/v1`` (NextChat adds it), or its settings link.

Written for NextChat 2.x from its README (ChatGPTNextWeb/NextChat: ``OPENAI_API_KEY``, ``BASE_URL``,
``CUSTOM_MODELS``) and new-api's chat template (QuantumNous/new-api ``setting/chats``:
``https://app.nextchat.dev/#/?settings={"key":"{key}","url":"{address}"}``, ``{address}`` without ``/v1``;
NextChat asks the user to confirm before it saves the settings).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Target
from ._printed import docker_sidecar_note

HOSTED = "https://app.nextchat.dev/"


def import_link(target: Target, host: str = HOSTED) -> str:
    settings = {"key": target.key, "url": target.root_url}
    return f"{host}#/?settings={quote(json.dumps(settings, separators=(',', ':')), safe='')}"


class NextChatAdapter(Adapter):
    name = "nextchat"
    title = "NextChat (ChatGPT-Next-Web)"
    kind = "link"
    summary = Text("打开设置导入链接，或打印环境变量（BASE_URL 不带 /v1）",
                   "opens a settings link, or prints env lines (BASE_URL without /v1)")

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                Text("自部署的环境变量：", "environment of a self-hosted NextChat:"),
                f"OPENAI_API_KEY={target.key}",
                f"BASE_URL={target.root_url}",
                f"CUSTOM_MODELS=-all,+{target.model}",
                Text(f"或在界面中：设置 → 自定义接口 → 接口地址 {target.root_url}（不带 /v1）",
                     f"or in the UI: Settings → Custom endpoint → endpoint {target.root_url} (no /v1)"),
            ],
            notes=[
                Text(f"链接指向 {HOSTED}；自部署时把它换成你的地址",
                     f"the link opens {HOSTED}; replace the host for your own deployment"),
                *docker_sidecar_note(target),
            ],
        )
