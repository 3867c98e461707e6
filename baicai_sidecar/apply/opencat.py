"""``opencat``: OpenCat's team link, ``opencat://team/join?domain=<host without /v1>&token=<key>``.

Written from new-api's built-in chat templates (QuantumNous/new-api ``setting/chats``:
``opencat://team/join?domain={address}&token={key}``, where ``{address}`` is the server address without ``/v1``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Link, Message, Target


def import_link(target: Target) -> str:
    return "opencat://team/join?" + urlencode({"domain": target.root_url, "token": target.key})


class OpenCatAdapter(Adapter):
    name = "opencat"
    title = "OpenCat (macOS / iOS)"
    kind = "link"
    summary = Text("打开导入链接，在 OpenCat 中确认", "opens an import link; confirm in OpenCat")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=self._mac_apps(env, "OpenCat.app"))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            links=[Link(self.name, import_link(target))],
            instructions=[
                Text(f"或手动：设置 → API 服务 → 自定义（OpenAI 兼容）：API Host {target.root_url}，API Key {target.key}",
                     f"or by hand: Settings → API providers → custom (OpenAI compatible): API host {target.root_url}, key {target.key}")
            ],
        )
