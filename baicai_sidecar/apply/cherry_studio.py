"""``cherry-studio``: Cherry Studio's provider import link, ``cherrystudio://providers/api-keys?v=1&data=…``.

Written from Cherry Studio's ``src/main/services/urlschema/handle-providers.ts`` (CherryHQ/cherry-studio @
035accf: the link, and its rewrite of ``+`` → ``_`` and ``/`` → ``-`` in the raw query before
``URLSearchParams`` reads it, because the payload is handed on inside another URL where ``+`` would become a
space) and its docs (cherry-studio-docs ``pre-basic/providers/oneapi/newapi.md``: the root address without
``/v1``, then *Manage* fetches the model list); new-api's generator sends the same ``{id, baseUrl, apiKey}``
payload. ``data`` is base64 JSON ``{id, name, type, baseUrl, apiKey}`` in Cherry's own alphabet (the rewrite
above done by us, so the link means the same however the OS passes it on). Cherry Studio appends ``/v1`` itself,
so ``baseUrl`` has none. Its parser strips ``'``, ``(`` and ``)`` from the decoded JSON, so the names we send
contain none of them.

An import into an existing provider id *adds* the key to that provider's key list and rotates through them, so the
relay and the sidecar get different ids: one id for both would send the real key to 127.0.0.1 and the local token
to the relay, every other request.
"""

from __future__ import annotations

import base64
import json

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Message, Target

PROVIDER_IDS = {"relay": "baicaigpt", "sidecar": "baicaigpt-sidecar"}


def import_link(target: Target) -> str:
    data = {
        "id": PROVIDER_IDS[target.kind],
        "name": "BaicaiGPT" if target.kind == "relay" else "BaicaiGPT sidecar",
        "type": "openai",
        "baseUrl": target.root_url,
        "apiKey": target.key,
    }
    raw = base64.b64encode(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).decode("ascii")
    return f"cherrystudio://providers/api-keys?v=1&data={raw.replace('+', '_').replace('/', '-')}"


class CherryStudioAdapter(Adapter):
    name = "cherry-studio"
    title = "Cherry Studio"
    kind = "link"
    summary = Text("打开导入链接，在 Cherry Studio 中确认", "opens an import link; confirm in Cherry Studio")

    def detect(self, env: Env) -> tuple[bool, Message]:
        paths = (env.config_home() / "CherryStudio", env.config_home() / "Cherry Studio")
        return self._found(env, ("cherrystudio", "cherry-studio"), paths + self._mac_apps(env, "Cherry Studio.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        name = "BaicaiGPT" if target.kind == "relay" else "BaicaiGPT sidecar"
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                Text(f"导入后：设置 → 模型服务 → {name} → 管理（获取模型列表）→ 添加 {target.model} → 打开右上角开关",
                     f"after the import: Settings → Model Provider → {name} → Manage (fetches the model list) → add {target.model} → switch the provider on (top right)"),
                Text(f"或手动：设置 → 模型服务 → 添加（提供商类型 OpenAI）；API 地址 {target.root_url}（不带 /v1），API 密钥 {target.key}",
                     f"or by hand: Settings → Model Provider → Add (type OpenAI): API host {target.root_url} (no /v1), key {target.key}"),
            ],
        )
