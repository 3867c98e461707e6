"""``cursor``: Cursor — Settings → Models → OpenAI API Key with "Override OpenAI Base URL".

Written from Cursor's docs (docs.cursor.com ``settings/api-keys``; labels not re-checked against the app here): a custom OpenAI key and base URL are used for
the chat models you add by name; Cursor sends these requests from its own servers, so a URL on 127.0.0.1 (the
sidecar) cannot work — only the relay.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._model import Env, Message, Target
from ._steps import StepsAdapter


class CursorAdapter(StepsAdapter):
    name = "cursor"
    title = "Cursor"
    summary = Text("打印设置步骤（覆盖 OpenAI Base URL，带 /v1；只能用 relay）",
                   "prints settings steps (override OpenAI base URL, with /v1; relay only)")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("cursor",), (env.config_home() / "Cursor",) + self._mac_apps(env, "Cursor.app"))

    def steps(self, target: Target) -> list[Message]:
        return [
            Text("1. Cursor 设置 → 模型 → API 密钥 → OpenAI API Key", "1. Cursor Settings → Models → API Keys → OpenAI API Key"),
            f"2. OpenAI API Key: {target.key}",
            Text(f"3. 打开 Override OpenAI Base URL：{target.base_url}", f"3. turn on Override OpenAI Base URL: {target.base_url}"),
            Text("4. 点 Verify", "4. click Verify"),
            Text(f"5. Models → Add model：{target.model}，并只勾选它", f"5. Models → Add model: {target.model}, and enable only that one"),
        ]

    def notes(self, target: Target) -> list[Message]:
        if target.kind != "sidecar":
            return []
        return [
            Text("Cursor 从它自己的服务器发出这些请求，连不到你电脑上的 127.0.0.1：请改用 --target relay。",
                 "Cursor sends these requests from its own servers, which cannot reach 127.0.0.1 on your machine: use --target relay.")
        ]
