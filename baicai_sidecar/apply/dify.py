"""``dify``: UI steps for Dify's "OpenAI-API-compatible" model provider (endpoint *with* ``/v1``)."""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class DifyAdapter(Adapter):
    name = "dify"
    title = "Dify"
    kind = "instructions"
    summary = "打印界面步骤（OpenAI-API-compatible，地址带 /v1）/ prints UI steps (OpenAI-API-compatible, URL with /v1)"

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                "1. 设置 → 模型供应商 → 安装并选择 “OpenAI-API-compatible” / "
                "Settings → Model Provider → install and pick “OpenAI-API-compatible”",
                f"2. 添加模型：模型名称 {target.model}，类型 LLM / add model: name {target.model}, type LLM",
                f"3. API Key：{target.key}",
                f"4. API endpoint URL：{target.base_url}（带 /v1 / with /v1）",
                "5. 模型上下文长度 4096，Function calling 支持 / context 4096, function calling supported",
            ],
            notes=docker_sidecar_note(target),
        )
