"""Third-party clients work unchanged through the sidecar: openai (sync + async), the llm CLI, AutoGen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好"}]}


async def test_async_openai_stream(emulator: Any, sidecar: Any, app_token: str) -> None:
    c = openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=app_token, max_retries=0)
    parts = [chunk.choices[0].delta.content or "" async for chunk in await c.chat.completions.create(
        **CHAT, stream=True) if chunk.choices]
    assert "".join(parts)
    await c.close()
    assert emulator.state.requests[-1].authorization == f"Bearer {emulator.paid_key}"


@pytest.mark.slow  # runs the real `llm` CLI
def test_llm_cli(emulator: Any, sidecar: Any, app_token: str, tmp_path: Path) -> None:
    user = tmp_path / "llm"
    user.mkdir()
    (user / "extra-openai-models.yaml").write_text(
        f"- model_id: baicai-35\n  model_name: gpt-3.5-turbo\n  api_base: \"{sidecar.base_url}\"\n"
        "  api_key_name: baicai\n", encoding="utf-8")
    (user / "keys.json").write_text(json.dumps({"baicai": app_token}), encoding="utf-8")
    env = {**os.environ, "LLM_USER_PATH": str(user)}
    llm = str(Path(sys.executable).with_name("llm"))
    for extra in ([], ["--no-stream"]):
        done = subprocess.run([llm, "-m", "baicai-35", "--no-log", *extra, "用一句话介绍白菜"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
    assert [r.stream for r in emulator.state.requests] == [True, False]
    assert {r.authorization for r in emulator.state.requests} == {f"Bearer {emulator.paid_key}"}


@pytest.mark.filterwarnings("ignore:Resolved model mismatch")
async def test_autogen_chat_completion_client(emulator: Any, sidecar: Any, app_token: str) -> None:
    from autogen_core.models import UserMessage
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    model = OpenAIChatCompletionClient(model="gpt-3.5-turbo", base_url=sidecar.base_url, api_key=app_token)
    result = await model.create([UserMessage(content="你好", source="user")])
    assert isinstance(result.content, str) and result.content
    streamed = [item async for item in model.create_stream([UserMessage(content="再说一次", source="user")])]
    assert isinstance(streamed[-1].content, str) and streamed[-1].content
    await model.close()
    assert len(emulator.state.requests) == 2
    assert {r.authorization for r in emulator.state.requests} == {f"Bearer {emulator.paid_key}"}
