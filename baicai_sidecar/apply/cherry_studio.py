"""``cherry-studio``: Cherry Studio's provider import link, ``cherrystudio://providers/api-keys?v=1&data=…``.

``data`` is base64 JSON ``{id, name, type, baseUrl, apiKey}``. Cherry Studio appends ``/v1`` to an address by
itself, so ``baseUrl`` has none. Its parser strips ``'``, ``(`` and ``)`` from the decoded JSON, so the names we
send contain none of them.
"""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Target
from ._printed import b64_json


def import_link(target: Target) -> str:
    data = {
        "id": "baicaigpt",
        "name": "BaicaiGPT" if target.kind == "relay" else "BaicaiGPT sidecar",
        "type": "openai",
        "baseUrl": target.root_url,
        "apiKey": target.key,
    }
    return f"cherrystudio://providers/api-keys?v=1&data={b64_json(data)}"


class CherryStudioAdapter(Adapter):
    name = "cherry-studio"
    title = "Cherry Studio"
    kind = "link"
    summary = "打开导入链接，在 Cherry Studio 中确认 / opens an import link; confirm in Cherry Studio"

    def detect(self, env: Env) -> tuple[bool, str]:
        paths = (env.config_home() / "CherryStudio", env.config_home() / "Cherry Studio")
        return self._found(env, ("cherrystudio", "cherry-studio"), paths + self._mac_apps(env, "Cherry Studio.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                f"或手动：设置 → 模型服务 → 添加（OpenAI）；API 地址 {target.root_url}（不带 /v1），API 密钥 {target.key} / "
                f"or by hand: Settings → Model Provider → Add (OpenAI): API host {target.root_url} (no /v1), key {target.key}"
            ],
        )
