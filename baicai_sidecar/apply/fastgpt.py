"""``fastgpt``: a channel in FastGPT's AI Proxy (FastGPT ≥ 4.9), then the model switched on.

Written from FastGPT's docs "通过 AI Proxy 接入模型" (doc.fastgpt.cn ``docs/development/modelconfig/ai-proxy``,
FastGPT 4.8.23+; the default deployment since 4.9): 账号 → 模型提供商 → 模型渠道 → 新增渠道 (channel name,
provider, models, model mapping, 代理地址 = the proxy address, API key). From 4.9 the AI Proxy answers every model
call, so the old ``OPENAI_BASE_URL`` / ``CHAT_API_KEY`` compose variables have no effect; they only matter on a
deployment without AI Proxy (noted below). AI Proxy's OpenAI-type channel takes the base URL with ``/v1``.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class FastGptAdapter(Adapter):
    name = "fastgpt"
    title = "FastGPT (≥ 4.9, AI Proxy)"
    kind = "instructions"
    summary = Text("打印 AI Proxy 渠道的界面步骤（代理地址带 /v1）", "prints UI steps for an AI Proxy channel (address with /v1)")

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                Text("1. 账号 → 模型提供商 → 模型渠道 → 右上角“新增渠道”",
                     "1. Account → Model Providers → Model Channels → Add Channel"),
                Text("2. 渠道名 BaicaiGPT；厂商 OpenAI", "2. channel name BaicaiGPT; provider OpenAI"),
                Text(f"3. 模型：选择或“新增模型” {target.model}", f"3. models: pick or add {target.model}"),
                Text(f"4. 代理地址：{target.base_url}（带 /v1）", f"4. proxy address: {target.base_url} (with /v1)"),
                Text(f"5. API 密钥：{target.key}", f"5. API key: {target.key}"),
                Text(f"6. 保存后在 模型配置 中启用 {target.model}，并用渠道的“测试”确认",
                     f"6. save, enable {target.model} under Model Configuration, and run the channel's Test"),
            ],
            notes=[
                Text("FastGPT 4.9 起由 AI Proxy 转发所有模型请求，docker-compose 里的 OPENAI_BASE_URL、CHAT_API_KEY 不再生效；"
                     "只有未部署 AI Proxy 的旧版本才需要它们。",
                     "from 4.9 the AI Proxy carries every model call, so the compose variables OPENAI_BASE_URL and "
                     "CHAT_API_KEY have no effect; only a deployment without AI Proxy uses them."),
                *docker_sidecar_note(target),
            ],
        )
