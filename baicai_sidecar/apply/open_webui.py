"""``open-webui``: ``OPENAI_API_BASE_URL`` *with* ``/v1`` and ``OPENAI_API_KEY`` (or Admin → Connections)."""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class OpenWebUiAdapter(Adapter):
    name = "open-webui"
    title = "Open WebUI"
    kind = "instructions"
    summary = "打印环境变量（OPENAI_API_BASE_URL 带 /v1）/ prints env lines (OPENAI_API_BASE_URL with /v1)"

    def detect(self, env: Env) -> tuple[bool, str]:
        return self._found(env, ("open-webui",))

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        notes = [] if target.kind == "relay" else docker_sidecar_note(target)
        return Extras(
            instructions=[
                f"OPENAI_API_BASE_URL={target.base_url}",
                f"OPENAI_API_KEY={target.key}",
                f"或在界面中：管理员设置 → 外部连接 → OpenAI API：{target.base_url} / "
                f"or in the UI: Admin Settings → Connections → OpenAI API: {target.base_url}",
            ],
            notes=notes,
        )
