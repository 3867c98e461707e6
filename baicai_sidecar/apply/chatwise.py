"""``chatwise``: ChatWise — Settings → Providers → "+" → OpenAI Compatible.

Written from ChatWise's docs (docs.chatwise.app ``providers``; labels not re-checked against the app here): a custom provider of type OpenAI Compatible with
Base URL (with ``/v1``) and API key; models are fetched from the provider or added by id.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._model import Env, Message, Target
from ._steps import StepsAdapter


class ChatWiseAdapter(StepsAdapter):
    name = "chatwise"
    title = "ChatWise"
    summary = Text("打印设置步骤（OpenAI Compatible，Base URL 带 /v1）",
                   "prints settings steps (OpenAI Compatible, Base URL with /v1)")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=self._mac_apps(env, "ChatWise.app") + (env.config_home() / "ChatWise",))

    def steps(self, target: Target) -> list[Message]:
        return [
            Text("1. 设置 → 服务商 → “+” → OpenAI Compatible，名称 BaicaiGPT",
                 "1. Settings → Providers → “+” → OpenAI Compatible, name BaicaiGPT"),
            f"2. Base URL: {target.base_url}",
            f"3. API Key: {target.key}",
            Text(f"4. 获取模型或手动添加 {target.model}", f"4. fetch models, or add {target.model}"),
        ]
