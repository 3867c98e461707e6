"""``baicai apply llm`` against the running emulator, then the real ``llm`` CLI gets a reply through it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import Env, Target

pytestmark = pytest.mark.slow  # runs the real `llm` CLI in a subprocess

LLM = Path(sys.executable).with_name("llm")


@pytest.mark.skipif(not LLM.exists(), reason="the llm CLI is not installed next to this Python")
def test_llm_cli_replies_through_the_emulator(emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    user_dir = tmp_path / "llm-user"
    env = Env(tmp_path, tmp_path, {"LLM_USER_PATH": str(user_dir)}, sys.platform, lambda name: None)
    target = Target("relay", emulator.base_url, emulator.paid_key, "emulator", "gpt-3.5-turbo")
    apply_api.apply(apply_api.plan("llm", target, env=env))

    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
    child_env.update(LLM_USER_PATH=str(user_dir), NO_PROXY="127.0.0.1,localhost")
    proc = subprocess.run(
        [str(LLM), "-m", "baicai-gpt-3.5-turbo", "--no-log", "hello"],
        env=child_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    chats = [r for r in emulator.state.requests if "chat/completions" in r.path]
    assert chats, "the reply did not come from the emulator"
    assert chats[-1].model == "gpt-3.5-turbo"
    assert chats[-1].authorization.endswith(emulator.paid_key[-4:])
