"""``cc-switch``: CC Switch's import links, ``ccswitch://v1/import?resource=provider&app=opencode|codex&…``.

Written from CC Switch v3.20.0 (farion1231/cc-switch @ 5ca9459): ``src-tauri/src/deeplink/parser.rs`` (the query
parameters and the accepted ``app`` values), ``deeplink/provider.rs`` (``build_opencode_settings``: an
``@ai-sdk/openai-compatible`` provider with ``options.baseURL``/``apiKey`` and the model), the UI labels in
``src/i18n/locales/{zh,en}.json`` (``codexConfig.upstreamFormatLabel`` 上游格式 / Upstream Format →
``upstreamFormatChat`` "Chat Completions（需开启路由）", ``advancedOptionsToggle`` 高级选项, ``proxy.takeover``)
and the user manual ``docs/user-manual/*/2-providers/2.1-add.md`` ("Codex Local Routing and Model Mapping").

- ``app=opencode`` works with the chat-only relay as it is: OpenCode's openai-compatible provider speaks Chat
  Completions.
- ``app=codex``: current Codex speaks only the Responses API. CC Switch's answer for a chat-only upstream is the
  provider's **Upstream Format = Chat Completions** (上游格式) with a model mapping, while its local routing runs
  with Codex takeover: CC Switch then turns Codex's Responses requests into Chat Completions. The sidecar
  serves ``/v1/responses`` itself, so with ``--target sidecar`` the toggle is not needed. We never suggest
  ``wire_api = "chat"``: current Codex refuses it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Message, Target

APPS = ("opencode", "codex")


def import_link(target: Target, app: str = "opencode") -> str:
    name = "BaicaiGPT" if target.kind == "relay" else "BaicaiGPT sidecar"
    query = urlencode(
        {
            "resource": "provider",
            "app": app,
            "name": name,
            "homepage": "https://baicaigpt.com",
            "endpoint": target.base_url,
            "apiKey": target.key,
            "model": target.model,
        }
    )
    return f"ccswitch://v1/import?{query}"


def codex_steps(target: Target) -> list[Message]:
    if target.kind == "sidecar":
        return [
            Text("Codex 链接：sidecar 自己提供 /v1/responses，导入后直接启用该供应商，上游格式保持 Responses（原生），不需要路由接管。",
                 "Codex link: the sidecar serves /v1/responses itself, so after the import just enable the provider; keep Upstream Format = Responses (native) — routing takeover is not needed.")
        ]
    return [
        Text("Codex 链接导入后（白菜GPT 只提供 Chat Completions，而 Codex 只说 Responses）：",
             "after importing the Codex link (the relay speaks Chat Completions only, Codex only Responses):"),
        Text(f"  1. 编辑该 Codex 供应商 → 高级选项 → 上游格式：Chat Completions（需开启路由）；在 模型映射 中添加 {target.model}",
             f"  1. edit the Codex provider → Advanced Options → Upstream Format: Chat Completions (routing required); add {target.model} under Model Mapping"),
        Text("  2. 启动本地路由，并为 Codex 开启路由接管；使用期间保持运行",
             "  2. start local routing and turn on routing takeover for Codex; keep it running"),
        Text("  3. 重启 Codex 以刷新模型列表", "  3. restart Codex to refresh its model list"),
        Text("  或者用 --target sidecar 生成链接（sidecar 自带 Responses 接口，上游格式保持 Responses）",
             "  or make the link with --target sidecar (the sidecar speaks the Responses API; keep Upstream Format = Responses)"),
    ]


class CcSwitchAdapter(Adapter):
    name = "cc-switch"
    title = "CC Switch (OpenCode, Codex)"
    kind = "link"
    summary = Text("打开导入链接（OpenCode 与 Codex 供应商），在 CC Switch 中确认",
                   "opens import links (OpenCode and Codex providers); confirm in CC Switch")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("cc-switch",), (env.home / ".cc-switch",) + self._mac_apps(env, "CC Switch.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(f"{self.name}:{app}", import_link(target, app)) for app in APPS],
            instructions=[
                Text("OpenCode 链接：导入后即可使用（OpenCode 走 Chat Completions）。",
                     "OpenCode link: works once imported (OpenCode speaks Chat Completions)."),
                *codex_steps(target),
            ],
        )
