"""``fastgpt``: FastGPT's ``OPENAI_BASE_URL`` (*with* ``/v1``) and ``CHAT_API_KEY`` in its docker-compose env."""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Target
from ._printed import docker_sidecar_note


class FastGptAdapter(Adapter):
    name = "fastgpt"
    title = "FastGPT"
    kind = "instructions"
    summary = "打印 docker-compose 环境变量（OPENAI_BASE_URL 带 /v1）/ prints compose env (OPENAI_BASE_URL with /v1)"

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(
            instructions=[
                f"OPENAI_BASE_URL={target.base_url}",
                f"CHAT_API_KEY={target.key}",
                f"然后在 模型配置 中启用 {target.model} / then enable {target.model} in the model configuration",
            ],
            notes=docker_sidecar_note(target),
        )
