"""``dify``: UI steps for Dify's "OpenAI-API-compatible" model provider (a plugin; base URL *with* ``/v1``).

Written from the plugin's form, langgenius/dify-official-plugins @ 1c2615c
``models/openai_api_compatible/provider/openai_api_compatible.yaml``: the labels below are the form's own
(``Model Name``, ``API Key``, ``API Base URL`` e.g. ``https://api.openai.com/v1``, ``Completion mode``,
``Model context size``, ``Upper bound for max tokens``, ``Function Call Type`` → ``Tool Call``,
``Stream function calling``, ``API Type`` → ``Chat Completions API``).
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class DifyAdapter(Adapter):
    name = "dify"
    title = "Dify"
    kind = "instructions"
    summary = Text("打印界面步骤（OpenAI-API-compatible，地址带 /v1）", "prints UI steps (OpenAI-API-compatible, URL with /v1)")

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                Text("1. 设置 → 模型供应商 → 安装 “OpenAI-API-compatible” 插件 → 添加模型",
                     "1. Settings → Model Provider → install “OpenAI-API-compatible” → Add Model"),
                Text(f"2. 模型类型 LLM；模型名称：{target.model}", f"2. Model Type LLM; Model Name: {target.model}"),
                f"3. API Key: {target.key}",
                Text(f"4. API Base URL: {target.base_url}（带 /v1）", f"4. API Base URL: {target.base_url} (with /v1)"),
                Text("5. 对话类型：对话；API 类型：Chat Completions API (/chat/completions)",
                     "5. Completion mode: Chat; API Type: Chat Completions API (/chat/completions)"),
                Text("6. 模型上下文长度：4096；最大 token 上限：4096",
                     "6. Model context size: 4096; Upper bound for max tokens: 4096"),
                Text("7. 函数调用类型：工具调用；流式函数调用：支持",
                     "7. Function Call Type: Tool Call; Stream function calling: Support"),
            ],
            notes=docker_sidecar_note(target),
        )
