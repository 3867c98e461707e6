"""``lobechat``: LobeChat's server environment. ``OPENAI_PROXY_URL`` takes the base URL *with* ``/v1``."""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class LobeChatAdapter(Adapter):
    name = "lobechat"
    title = "LobeChat"
    kind = "instructions"
    summary = "打印环境变量（OPENAI_PROXY_URL 带 /v1）/ prints env lines (OPENAI_PROXY_URL with /v1)"

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                f"OPENAI_API_KEY={target.key}",
                f"OPENAI_PROXY_URL={target.base_url}",
                f"OPENAI_MODEL_LIST=+{target.model}",
                "或在界面中：设置 → 语言模型 → OpenAI：API Key 与 API 代理地址（带 /v1）/ "
                "or in the UI: Settings → Language Model → OpenAI: API key and API proxy URL (with /v1)",
            ],
            notes=docker_sidecar_note(target),
        )
