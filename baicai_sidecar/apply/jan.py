"""``jan``: Jan (0.6+) — Settings → Model Providers → add an OpenAI-compatible provider.

Written from Jan's docs (jan.ai/docs ``remote-models/openai`` and "Add a custom provider"): provider name, Base
URL (with ``/v1``), API key, then the models are fetched from ``/v1/models`` or added by id.
"""

from __future__ import annotations

from ._model import Env, Target
from ._steps import StepsAdapter


class JanAdapter(StepsAdapter):
    name = "jan"
    title = "Jan"
    summary = "打印设置步骤（自定义服务商，Base URL 带 /v1）/ prints settings steps (custom provider, Base URL with /v1)"

    def detect(self, env: Env) -> tuple[bool, str]:
        return self._found(env, ("jan",), (env.config_home() / "Jan",) + self._mac_apps(env, "Jan.app"))

    def steps(self, target: Target) -> list[str]:
        return [
            "1. 设置 → 模型服务商 → 添加服务商，名称 BaicaiGPT / Settings → Model Providers → Add Provider, name BaicaiGPT",
            f"2. Base URL: {target.base_url}",
            f"3. API Key: {target.key}",
            f"4. 刷新模型列表或手动添加 {target.model} / refresh the model list, or add {target.model} by hand",
        ]
