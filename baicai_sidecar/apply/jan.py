"""``jan``: Jan Desktop (0.6+) — Settings → Model Providers → Add Provider (OpenAI-compatible).

Written from Jan's docs page "Custom Endpoints" (jan.ai/docs/desktop/remote-models/custom-endpoint): the Add
Custom Provider dialog, API format "OpenAI-compatible" (the default), fields Provider name, Base URL (ending in
``/v1``) and API key; models are then fetched from the endpoint or added by id.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._model import Env, Message, Target
from ._steps import StepsAdapter


class JanAdapter(StepsAdapter):
    name = "jan"
    title = "Jan"
    summary = Text("打印设置步骤（自定义服务商，Base URL 带 /v1）", "prints settings steps (custom provider, Base URL with /v1)")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("jan",), (env.config_home() / "Jan",) + self._mac_apps(env, "Jan.app"))

    def steps(self, target: Target) -> list[Message]:
        return [
            Text("1. 设置 → 模型服务商 → 添加服务商；API 格式选 OpenAI-compatible，名称 BaicaiGPT",
                 "1. Settings → Model Providers → Add Provider; API format OpenAI-compatible, Provider name BaicaiGPT"),
            f"2. Base URL: {target.base_url}",
            f"3. API Key: {target.key}",
            Text(f"4. 刷新模型列表或手动添加 {target.model}", f"4. refresh the model list, or add {target.model} by hand"),
        ]
