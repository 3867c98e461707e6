"""The command line, deep links and printed instructions."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import Env, Target


def test_list_on_a_machine_with_none_of_the_apps(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    env = {
        "HOME": str(home), "PATH": "/usr/bin:/bin", "BAICAI_HOME": str(tmp_path / "bh"),
        "PYTHONPATH": os.pathsep.join(sys.path), "XDG_CONFIG_HOME": str(home / ".config"),
    }  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "baicai_sidecar.apply._cli", "--list"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "none of these apps was detected on this machine" in proc.stdout
    assert "本机未检测到任何支持的应用" in proc.stdout
    for name in ("llm", "aichat", "codex", "chatbox", "dify"):
        assert name in proc.stdout


def _decode(value: str) -> dict[str, object]:
    return json.loads(base64.b64decode(unquote(value)))  # type: ignore[no-any-return]


def test_chatbox_link_splits_host_and_path(env: Env, sidecar_target: Target) -> None:
    plan = apply_api.plan("chatbox", sidecar_target, env=env)
    url = urlsplit(plan.links[0].url)
    assert (url.scheme, url.netloc, url.path) == ("chatbox", "provider", "/import")
    config = _decode(parse_qs(url.query)["config"][0] if "+" not in url.query else url.query.split("=", 1)[1])
    assert config["settings"] == {  # type: ignore[comparison-overlap]
        "apiHost": "http://127.0.0.1:8765", "apiPath": "/v1/chat/completions",
        "apiKey": sidecar_target.key, "models": [{"modelId": "gpt-3.5-turbo", "type": "chat"}],
    }  # fmt: skip
    assert sidecar_target.key not in plan.masked_link(plan.links[0])


def test_cherry_studio_link_has_no_v1_and_nothing_its_parser_strips(env: Env, target: Target) -> None:
    plan = apply_api.plan("cherry-studio", target, env=env)
    query = urlsplit(plan.links[0].url).query
    assert "+" not in query  # URLSearchParams would turn it into a space
    data = _decode(parse_qs(query)["data"][0])
    assert data["baseUrl"] == "https://api.baicaigpt.com" and data["apiKey"] == target.key
    assert not any(c in json.dumps(data) for c in "'()")


def test_cc_switch_link_targets_codex(env: Env, target: Target) -> None:
    plan = apply_api.plan("cc-switch", target, env=env)
    url = urlsplit(plan.links[0].url)
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc, url.path) == ("ccswitch", "v1", "/import")
    assert params["resource"] == "provider" and params["app"] == "codex" and params["endpoint"] == target.base_url
    assert any("wire_api" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("app", "line"),
    [
        ("lobechat", "OPENAI_PROXY_URL=https://api.baicaigpt.com/v1"),
        ("nextchat", "BASE_URL=https://api.baicaigpt.com"),
        ("fastgpt", "OPENAI_BASE_URL=https://api.baicaigpt.com/v1"),
        ("open-webui", "OPENAI_API_BASE_URL=https://api.baicaigpt.com/v1"),
    ],
)
def test_each_web_app_gets_its_own_url_rule(app: str, line: str, env: Env, target: Target) -> None:
    plan = apply_api.plan(app, target, env=env)
    assert line in plan.instructions
    assert plan.changes == []
    assert all(target.key not in plan.mask(i) for i in plan.instructions)


def test_dify_steps_use_v1_and_sidecar_warns_about_docker(env: Env, sidecar_target: Target) -> None:
    plan = apply_api.plan("dify", sidecar_target, env=env)
    assert any("http://127.0.0.1:8765/v1" in step for step in plan.instructions)
    assert any("Docker" in note for note in plan.notes)


def test_autogen_agentchat_snippet_is_valid_python_with_model_info(env: Env, target: Target) -> None:
    plan = apply_api.plan("autogen", target, env=env)
    snippet = plan.instructions[0]
    compile(snippet, "<snippet>", "exec")
    assert "model_info=" in snippet and "'family': 'gpt-35'" in snippet


def test_cli_dry_run_writes_nothing_and_masks_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from baicai_sidecar.apply._cli import main

    key = "baicai-cli0000000000000000000wxyz"
    monkeypatch.setenv("BAICAI_API_KEY", key)
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    assert main(["llm", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+  api_key_name: baicai" in out or "api_key_name: baicai" in out
    assert key not in out and "…wxyz" in out
    assert not (tmp_path / "llm").exists()
    assert main(["llm"]) == 0
    assert (tmp_path / "llm" / "keys.json").exists()
    assert main(["llm", "--undo"]) == 0
    assert not (tmp_path / "llm" / "keys.json").exists()


def test_build_target_relay_from_env_and_sidecar_token_is_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-envkey00000000000000001234")
    monkeypatch.setenv("BAICAI_BASE_URL", "https://api.baicaigpt.com/v1/v1")
    relay = apply_api.build_target("relay", app="llm", model="gpt-4-1106-preview")
    assert relay.base_url == "https://api.baicaigpt.com/v1" and relay.model == "gpt-4-1106-preview"
    assert any("/v1" in note for note in relay.notes)  # the correction is shown, not silent
    assert relay.key not in repr(relay)
    first = apply_api.build_target("sidecar", app="llm", port=9999)
    second = apply_api.build_target("sidecar", app="llm", port=9999)
    assert first.base_url == "http://127.0.0.1:9999/v1" and first.key.startswith("sk-baicai-")
    assert first.key == second.key  # applying twice must not rotate the app's token
    from baicai_sidecar._tokens import TokenStore

    assert TokenStore().verify(first.key) == "llm"


def test_dry_run_to_the_sidecar_saves_no_token(tmp_path, monkeypatch) -> None:
    """`--dry-run` writes nothing at all: not the app's file, and not a new sidecar token either."""
    from baicai_sdk.cli import main
    from baicai_sidecar._tokens import TokenStore

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    assert main(["apply", "llm", "--target", "sidecar", "--dry-run"]) == 0
    assert TokenStore().get("llm") is None
    assert not (tmp_path / "llm").exists() or not any((tmp_path / "llm").iterdir())
    assert main(["apply", "llm", "--target", "sidecar"]) == 0
    token = TokenStore().get("llm")
    assert token is not None and token in (tmp_path / "llm" / "keys.json").read_text()


def test_deep_links_with_the_real_key_are_never_put_on_a_command_line(tmp_path: Path, monkeypatch) -> None:
    """Any local user can read /proc/PID/cmdline: only a link with a sidecar token is handed to xdg-open."""
    from baicai_sdk.cli import main

    calls = tmp_path / "calls.txt"
    opener = tmp_path / "bin" / "xdg-open"
    opener.parent.mkdir()
    opener.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{opener.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    real_key = "baicai-REALKEY0000000000000000000wxyz"
    monkeypatch.setenv("BAICAI_API_KEY", real_key)

    assert main(["apply", "chatbox", "--target", "relay"]) == 0
    assert not calls.exists()
    assert main(["apply", "chatbox", "--target", "sidecar"]) == 0
    for _ in range(100):  # the opener runs detached
        if calls.exists() and calls.read_text().strip():
            break
        time.sleep(0.05)
    opened = calls.read_text().strip()
    assert opened.startswith("chatbox://")
    config = json.dumps(_decode(parse_qs(urlsplit(opened).query)["config"][0]))
    assert real_key not in config and "sk-baicai-" in config  # the app gets a local token only
