"""``cline``: Cline (VS Code extension, 3.x) — API Provider "OpenAI Compatible".

Written from Cline's docs page docs.cline.bot/provider-config/openai-compatible: Cline settings (⚙️) → API Provider
"OpenAI Compatible", then Base URL (with ``/v1``), API Key and the Model ID. Cline keeps the key in VS Code's secret
storage, which we must not write, so we print the steps.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._model import Env, Message, Target
from ._steps import StepsAdapter


class ClineAdapter(StepsAdapter):
    name = "cline"
    title = "Cline (VS Code)"
    summary = Text("打印设置步骤（OpenAI Compatible，Base URL 带 /v1）",
                   "prints settings steps (OpenAI Compatible, Base URL with /v1)")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(env.home / ".vscode" / "extensions",))

    def steps(self, target: Target) -> list[Message]:
        return [
            Text("1. Cline 面板 → 设置（齿轮）→ API Provider：OpenAI Compatible",
                 "1. Cline panel → Settings (gear) → API Provider: OpenAI Compatible"),
            f"2. Base URL: {target.base_url}",
            f"3. API Key: {target.key}",
            f"4. Model ID: {target.model}",
            Text("5. 点 Done 保存", "5. click Done to save"),
        ]
