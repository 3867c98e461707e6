"""``cc-switch``: CC Switch's import links, ``ccswitch://v1/import?resource=provider&app=opencode|codex&…``.

Written from CC Switch v3.20.0 (farion1231/cc-switch @ 5ca9459): ``src-tauri/src/deeplink/parser.rs`` (the query
parameters and the accepted ``app`` values), ``deeplink/provider.rs`` (``build_opencode_settings``: an
``@ai-sdk/openai-compatible`` provider with ``options.baseURL``/``apiKey`` and the model), and the user manual
``docs/user-manual/*/2-providers/2.1-add.md`` ("Codex Local Routing and Model Mapping").

- ``app=opencode`` works with the chat-only relay as it is: OpenCode's openai-compatible provider speaks Chat
  Completions.
- ``app=codex``: current Codex speaks only the Responses API. CC Switch's documented answer for a chat-only
  upstream is its **Needs Local Routing** toggle (需要本地路由映射) with a model mapping, while its local routing
  runs with Codex takeover: CC Switch then turns Codex's Responses requests into Chat Completions. The sidecar
  serves ``/v1/responses`` itself, so with ``--target sidecar`` the toggle is not needed. We never suggest
  ``wire_api = "chat"``: current Codex refuses it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Target

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


def codex_steps(target: Target) -> list[str]:
    if target.kind == "sidecar":
        return [
            "Codex 链接：sidecar 自己提供 /v1/responses，导入后直接在 CC Switch 中启用该供应商即可，不需要“需要本地路由映射”。 / "
            "Codex link: the sidecar serves /v1/responses itself, so after the import just enable the provider in "
            "CC Switch; Needs Local Routing is not needed."
        ]
    return [
        "Codex 链接导入后（白菜GPT 只提供 Chat Completions，而 Codex 只说 Responses）：",
        "  1. 编辑该 Codex 供应商 → 打开“需要本地路由映射”，在“模型映射”中添加 "
        f"{target.model} / edit the Codex provider → turn on Needs Local Routing and add {target.model} to Model Mapping",
        "  2. 代理（本地路由）→ 启动，并开启 Codex 接管；使用期间保持运行 / "
        "Proxy (local routing) → start it with Codex takeover on, and keep it running",
        "  3. 重启 Codex 以刷新模型列表 / restart Codex to refresh its model list",
        "  或者用 --target sidecar 生成链接（sidecar 自带 Responses 接口） / "
        "or make the link with --target sidecar (the sidecar speaks the Responses API)",
    ]


class CcSwitchAdapter(Adapter):
    name = "cc-switch"
    title = "CC Switch (OpenCode, Codex)"
    kind = "link"
    summary = "打开导入链接（OpenCode 与 Codex 供应商），在 CC Switch 中确认 / opens import links (OpenCode and Codex providers); confirm in CC Switch"

    def detect(self, env: Env) -> tuple[bool, str]:
        return self._found(env, ("cc-switch",), (env.home / ".cc-switch",) + self._mac_apps(env, "CC Switch.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target, app)) for app in APPS],
            instructions=[
                "OpenCode 链接：导入后即可使用（OpenCode 走 Chat Completions）。 / "
                "OpenCode link: works once imported (OpenCode speaks Chat Completions).",
                *codex_steps(target),
            ],
        )
