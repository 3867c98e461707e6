"""``open-webui``: ``OPENAI_API_BASE_URL`` *with* ``/v1`` and ``OPENAI_API_KEY``, or Admin → Connections.

Written from Open WebUI's docs (docs.openwebui.com ``getting-started/env-configuration``): these variables are
``PersistentConfig``: they seed the database on the *first* start only, and afterwards the value saved in the
admin panel wins, so changing them on an existing install does nothing unless ``ENABLE_PERSISTENT_CONFIG=False``.
"""

from __future__ import annotations

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options
from ._model import Env, Message, Target
from ._printed import docker_sidecar_note


class OpenWebUiAdapter(Adapter):
    name = "open-webui"
    title = "Open WebUI"
    kind = "instructions"
    summary = Text("打印环境变量（OPENAI_API_BASE_URL 带 /v1）与界面步骤",
                   "prints env lines (OPENAI_API_BASE_URL with /v1) and UI steps")

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("open-webui",))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                f"OPENAI_API_BASE_URL={target.base_url}",
                f"OPENAI_API_KEY={target.key}",
                Text(f"已在运行的实例：管理员设置 → 外部连接 → OpenAI API → 添加连接：{target.base_url}，密钥同上",
                     f"an instance already set up: Admin Settings → Connections → OpenAI API → add a connection: {target.base_url}, the key above"),
            ],
            notes=[
                Text("这些变量是 PersistentConfig：只在首次启动时写入数据库，之后以管理员界面保存的值为准；已有实例请在界面中修改，或设置 ENABLE_PERSISTENT_CONFIG=False。",
                     "these variables are PersistentConfig: they only seed the first start, after which the admin panel's saved value wins — change an existing install in the UI, or set ENABLE_PERSISTENT_CONFIG=False."),
                *docker_sidecar_note(target),
            ],
        )
