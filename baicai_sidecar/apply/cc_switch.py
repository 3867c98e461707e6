"""``cc-switch``: CC Switch's import link for its Codex app, ``ccswitch://v1/import?resource=provider&app=codex…``.

The relay speaks the OpenAI Chat Completions API only, so the Claude and Gemini apps in CC Switch cannot use
it. CC Switch's Codex template defaults to ``wire_api = "responses"``, which the relay does not serve: we say so.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Target


def import_link(target: Target) -> str:
    query = urlencode(
        {
            "resource": "provider",
            "app": "codex",
            "name": "BaicaiGPT",
            "homepage": "https://baicaigpt.com",
            "endpoint": target.base_url,
            "apiKey": target.key,
            "model": target.model,
        }
    )
    return f"ccswitch://v1/import?{query}"


class CcSwitchAdapter(Adapter):
    name = "cc-switch"
    title = "CC Switch (Codex)"
    kind = "link"
    summary = "打开导入链接（Codex 供应商），在 CC Switch 中确认 / opens an import link (Codex provider); confirm in CC Switch"

    def detect(self, env: Env) -> tuple[bool, str]:
        return self._found(env, ("cc-switch",), (env.home / ".cc-switch",) + self._mac_apps(env, "CC Switch.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target))],
            notes=[
                "导入后在 CC Switch 中把 wire_api 改为 \"chat\"（白菜GPT 不支持 responses 接口），或直接用 `baicai apply codex`。 / "
                "after the import, set wire_api = \"chat\" in CC Switch (the relay has no Responses API), "
                "or use `baicai apply codex` instead."
            ],
        )
