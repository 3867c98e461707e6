"""``nextchat`` (ChatGPT-Next-Web): ``BASE_URL`` is the address *without* ``/v1`` (NextChat adds it)."""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class NextChatAdapter(Adapter):
    name = "nextchat"
    title = "NextChat (ChatGPT-Next-Web)"
    kind = "instructions"
    summary = "打印环境变量（BASE_URL 不带 /v1）/ prints env lines (BASE_URL without /v1)"

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                f"OPENAI_API_KEY={target.key}",
                f"BASE_URL={target.root_url}",
                f"CUSTOM_MODELS=-all,+{target.model}",
                f"或在界面中：设置 → 自定义接口 → 接口地址 {target.root_url}（不带 /v1）/ "
                f"or in the UI: Settings → Custom endpoint → endpoint {target.root_url} (no /v1)",
            ],
            notes=docker_sidecar_note(target),
        )
