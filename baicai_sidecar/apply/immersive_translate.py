"""``immersive-translate``: Immersive Translate (browser extension) — an OpenAI translation service.

Written from Immersive Translate's OpenAI service settings as its docs and relay guides describe them (e.g. a
relay's guide on apifox: choose the OpenAI service, fill in APIKEY, open "展开更多自定义选项" and set
"自定义 API 接口地址" to the *full* chat URL ``…/v1/chat/completions``, not the base URL). The extension calls it from the browser, so with the
sidecar the browser must reach 127.0.0.1 on this machine.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._model import Message, Target
from ._steps import StepsAdapter


class ImmersiveTranslateAdapter(StepsAdapter):
    name = "immersive-translate"
    title = Text("沉浸式翻译", "Immersive Translate")
    summary = Text("打印设置步骤（接口地址为完整的 /v1/chat/completions）",
                   "prints settings steps (the endpoint is the full /v1/chat/completions)")

    def steps(self, target: Target) -> list[Message]:
        return [
            Text("1. 扩展设置 → 翻译服务 → OpenAI → 去修改", "1. extension Settings → Translation Services → OpenAI → Edit"),
            f"2. APIKEY: {target.key}",
            Text(f"3. 模型：{target.model}（选“自定义模型”填入）", f"3. Model: {target.model} (choose a custom model and type it)"),
            Text("   展开“更多自定义选项”", "   expand “more custom options”"),
            Text(f"4. 自定义 API 接口地址：{target.base_url}/chat/completions",
                 f"4. custom API endpoint: {target.base_url}/chat/completions"),
            Text("5. 点“测试服务”，然后把 OpenAI 设为当前翻译服务", "5. click Test, then make OpenAI the active service"),
        ]
