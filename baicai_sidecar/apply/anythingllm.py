"""``anythingllm``: AnythingLLM's "Generic OpenAI" LLM provider, as server env lines or desktop UI steps.

Written from AnythingLLM's ``docker/.env.example`` (Mintplex-Labs/anything-llm @ 0032c4d): ``LLM_PROVIDER='generic-openai'``,
``GENERIC_OPEN_AI_BASE_PATH`` (with ``/v1``), ``GENERIC_OPEN_AI_MODEL_PREF``, ``GENERIC_OPEN_AI_MODEL_TOKEN_LIMIT``,
``GENERIC_OPEN_AI_API_KEY``.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Message, Target
from ._printed import docker_sidecar_note


class AnythingLlmAdapter(Adapter):
    name = "anythingllm"
    title = "AnythingLLM"
    kind = "instructions"
    summary = Text("打印 Generic OpenAI 的环境变量与界面步骤（地址带 /v1）",
                   "prints Generic OpenAI env lines and UI steps (URL with /v1)")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(env.config_home() / "anythingllm-desktop",) + self._mac_apps(env, "AnythingLLM.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                Text("服务端 .env（Docker）：", "server .env (Docker):"),
                "LLM_PROVIDER='generic-openai'",
                f"GENERIC_OPEN_AI_BASE_PATH='{target.base_url}'",
                f"GENERIC_OPEN_AI_MODEL_PREF='{target.model}'",
                "GENERIC_OPEN_AI_MODEL_TOKEN_LIMIT=4096",
                f"GENERIC_OPEN_AI_API_KEY={target.key}",
                Text("桌面版：设置 → AI 提供商 → LLM → Generic OpenAI：Base URL（带 /v1）、API Key、Chat Model Name、Token context window 填上面的值",
                     "desktop: Settings → AI Providers → LLM → Generic OpenAI: Base URL (with /v1), API key, chat model name and token context window as above"),
            ],
            notes=docker_sidecar_note(target),
        )
