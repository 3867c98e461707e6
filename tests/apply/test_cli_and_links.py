"""The command line, deep links and printed instructions."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sdk.integration import Text
from baicai_sdk.testing import wait_until
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


def test_chatbox_link_keeps_v1_in_the_host_and_ids_differ_per_target(env: Env, target: Target, sidecar_target: Target) -> None:
    """Chatbox lists models at ``{apiHost}/models``: without /v1 in the host that would be /models."""
    plan = apply_api.plan("chatbox", sidecar_target, env=env)
    url = urlsplit(plan.links[0].url)
    assert (url.scheme, url.netloc, url.path) == ("chatbox", "provider", "/import")
    config = _decode(parse_qs(url.query)["config"][0])
    assert config["isCustom"] is True and config["type"] == "openai"
    assert config["settings"] == {  # type: ignore[comparison-overlap]
        "apiHost": "http://127.0.0.1:8765/v1", "apiPath": "/chat/completions",
        "apiKey": sidecar_target.key, "models": [{"modelId": "gpt-3.5-turbo", "type": "chat"}],
    }  # fmt: skip
    assert sidecar_target.key not in plan.masked_link(plan.links[0])
    relay = _decode(parse_qs(urlsplit(apply_api.plan("chatbox", target, env=env).links[0].url).query)["config"][0])
    assert relay["id"] != config["id"]  # importing one never overwrites the other


def _cherry_decode(url: str) -> dict[str, object]:
    """What Cherry Studio does: its main process maps + → _ and / → - before URLSearchParams; the renderer maps back."""
    raw = url.split("data=", 1)[1]
    assert "+" not in raw and "/" not in raw and "%" not in raw
    return json.loads(base64.b64decode(raw.replace("_", "+").replace("-", "/")))  # type: ignore[no-any-return]


def test_cherry_studio_link_has_no_v1_and_a_distinct_id_per_target(env: Env, target: Target, sidecar_target: Target) -> None:
    relay = _cherry_decode(apply_api.plan("cherry-studio", target, env=env).links[0].url)
    assert relay["baseUrl"] == "https://api.baicaigpt.com" and relay["apiKey"] == target.key
    assert not any(c in json.dumps(relay) for c in "'()")
    sidecar = _cherry_decode(apply_api.plan("cherry-studio", sidecar_target, env=env).links[0].url)
    assert sidecar["baseUrl"] == "http://127.0.0.1:8765" and sidecar["apiKey"] == sidecar_target.key
    # one id for both would make Cherry rotate the real key and the local token on every other request
    assert relay["id"] != sidecar["id"]
    plan = apply_api.plan("cherry-studio", target, env=env)
    assert any("Manage" in step and "管理" in step for step in map(str, plan.instructions))  # how to fetch the model list


def test_cc_switch_links_for_opencode_and_codex_with_its_own_routing_steps(env: Env, target: Target, sidecar_target: Target) -> None:
    plan = apply_api.plan("cc-switch", target, env=env)
    apps = []
    for link in plan.links:
        url = urlsplit(link.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert (url.scheme, url.netloc, url.path) == ("ccswitch", "v1", "/import")
        assert params["resource"] == "provider" and params["endpoint"] == target.base_url
        assert params["apiKey"] == target.key and params["name"] and params["model"] == "gpt-3.5-turbo"
        apps.append(params["app"])
    assert apps == ["opencode", "codex"]  # the one that works as is comes first (the CLI opens the first)
    text = "\n".join(map(str, plan.instructions + plan.notes))
    assert "wire_api" not in text  # current codex refuses wire_api = "chat"
    assert "Upstream Format: Chat Completions" in text and "上游格式：Chat Completions" in text
    assert "routing takeover" in text and "路由接管" in text
    sidecar_text = "\n".join(map(str, apply_api.plan("cc-switch", sidecar_target, env=env).instructions))
    assert "routing takeover is not needed" in sidecar_text


def _query_json(url: str, marker: str) -> dict[str, object]:
    return json.loads(unquote(url.split(marker, 1)[1]))  # type: ignore[no-any-return]


def test_web_app_settings_links_decode_to_each_apps_format(env: Env, target: Target) -> None:
    lobe = apply_api.plan("lobechat", target, env=env).links[0].url
    assert lobe.startswith("https://") and "?settings=" in lobe
    assert _query_json(lobe, "?settings=") == {"keyVaults": {"openai": {"apiKey": target.key, "baseURL": target.base_url}}}
    nextchat = apply_api.plan("nextchat", target, env=env).links[0].url
    assert "#/?settings=" in nextchat
    assert _query_json(nextchat, "#/?settings=") == {"key": target.key, "url": "https://api.baicaigpt.com"}
    opencat = urlsplit(apply_api.plan("opencat", target, env=env).links[0].url)
    assert (opencat.scheme, opencat.netloc, opencat.path) == ("opencat", "team", "/join")
    assert {k: v[0] for k, v in parse_qs(opencat.query).items()} == {"domain": "https://api.baicaigpt.com", "token": target.key}


@pytest.mark.parametrize(
    ("app", "line"),
    [
        ("lobechat", "OPENAI_PROXY_URL=https://api.baicaigpt.com/v1"),
        ("nextchat", "BASE_URL=https://api.baicaigpt.com"),
        ("open-webui", "OPENAI_API_BASE_URL=https://api.baicaigpt.com/v1"),
        ("anythingllm", "GENERIC_OPEN_AI_BASE_PATH='https://api.baicaigpt.com/v1'"),
        ("cline", "2. Base URL: https://api.baicaigpt.com/v1"),
        ("jan", "2. Base URL: https://api.baicaigpt.com/v1"),
        ("chatwise", "2. Base URL: https://api.baicaigpt.com/v1"),
        ("dify", "4. API Base URL: https://api.baicaigpt.com/v1（带 /v1） / API Base URL: https://api.baicaigpt.com/v1 (with /v1)"),
        ("fastgpt", "4. 代理地址：https://api.baicaigpt.com/v1（带 /v1） / proxy address: https://api.baicaigpt.com/v1 (with /v1)"),
        ("immersive-translate", "4. 自定义 API 接口地址：https://api.baicaigpt.com/v1/chat/completions / custom API endpoint: https://api.baicaigpt.com/v1/chat/completions"),
    ],
)
def test_each_app_gets_its_own_url_rule_and_the_key_is_masked(app: str, line: str, env: Env, target: Target) -> None:
    plan = apply_api.plan(app, target, env=env)
    assert line in map(str, plan.instructions)
    assert plan.changes == []
    assert any(target.key in i for i in map(str, plan.instructions))
    assert all(target.key not in plan.mask(i) for i in map(str, plan.instructions))


def test_fastgpt_open_webui_and_cursor_say_what_the_old_advice_missed(env: Env, target: Target, sidecar_target: Target) -> None:
    assert any("no effect" in n for n in map(str, apply_api.plan("fastgpt", target, env=env).notes))
    assert any("PersistentConfig" in n for n in map(str, apply_api.plan("open-webui", target, env=env).notes))
    assert any("Function Call Type" in i and "Tool Call" in i for i in map(str, apply_api.plan("dify", target, env=env).instructions))
    assert any("127.0.0.1" in n for n in map(str, apply_api.plan("cursor", sidecar_target, env=env).notes))


def test_dify_steps_use_v1_and_sidecar_warns_about_docker(env: Env, sidecar_target: Target) -> None:
    plan = apply_api.plan("dify", sidecar_target, env=env)
    assert any("http://127.0.0.1:8765/v1" in step for step in map(str, plan.instructions))
    assert any("Docker" in note for note in map(str, plan.notes))


_MODEL_INFO = [
    ("gpt-3.5-turbo", "gpt-35", False), ("gpt-4", "gpt-4", False), ("gpt-4-vision-preview", "gpt-4", True),
    ("gpt-4o-mini", "gpt-4o", True), ("gpt-4.1", "gpt-41", True), ("gpt-5", "gpt-5", True), ("o3-mini", "o3", True),
    ("o1-mini", "o1", False), ("deepseek-chat", "unknown", False),
]  # fmt: skip


@pytest.mark.parametrize(("model", "family", "vision"), _MODEL_INFO)
def test_autogen_model_info_gives_each_model_its_family(model: str, family: str, vision: bool, env: Env, target: Target) -> None:
    from baicai_sidecar.apply.autogen import model_info

    info = model_info(model)
    assert (info["family"], info["vision"]) == (family, vision)
    plan = apply_api.plan("autogen", Target("relay", target.base_url, target.key, "t", model), env=env)
    compile(plan.instructions[0], "<snippet>", "exec")
    assert "config_list_from_json" not in "\n".join(plan.notes)  # gone in ag2 0.14
    assert any("LLMConfig.from_json" in n for n in map(str, plan.notes))


@pytest.mark.slow  # importing autogen-ext takes ~5 s
def test_autogen_snippet_builds_autogens_own_client(env: Env, target: Target) -> None:
    pytest.importorskip("autogen_ext.models.openai", reason="autogen-ext is not installed")
    from autogen_core.models import ModelFamily
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    for model, family, vision in _MODEL_INFO:
        plan = apply_api.plan("autogen", Target("relay", target.base_url, target.key, "t", model), env=env)
        snippet = plan.instructions[0]
        assert family in ModelFamily.ANY.__args__  # type: ignore[attr-defined]
        namespace: dict[str, object] = {"OpenAIChatCompletionClient": OpenAIChatCompletionClient}
        exec(snippet.replace("from autogen_ext.models.openai import OpenAIChatCompletionClient", ""), namespace)
        client = namespace["client"]
        assert (client.model_info["family"], client.model_info["vision"]) == (family, vision)  # type: ignore[attr-defined]


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
    assert main(["llm", "--yes"]) == 0
    assert (tmp_path / "llm" / "keys.json").exists()
    capsys.readouterr()
    assert main(["llm", "--undo"]) == 0
    assert not (tmp_path / "llm" / "keys.json").exists()
    assert "已删除 / deleted" in capsys.readouterr().out  # the outcome in words, both halves (not English alone)


def test_undo_removes_the_folders_apply_created_while_they_are_empty(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """llm's folder did not exist: apply made it, undo takes it away again. A folder that was there before, or
    one the app has put a file in since, stays."""
    from baicai_sidecar.apply._cli import main

    monkeypatch.setenv("BAICAI_API_KEY", "baicai-cli0000000000000000000wxyz")
    home = tmp_path / "made" / "by-apply"
    monkeypatch.setenv("LLM_USER_PATH", str(home))
    assert main(["llm", "--yes"]) == 0 and (home / "keys.json").exists()
    assert main(["llm", "--undo"]) == 0
    assert not (tmp_path / "made").exists() and tmp_path.exists()

    assert main(["llm", "--yes"]) == 0
    (home / "logs.db").write_bytes(b"the app's own file")
    assert main(["llm", "--undo"]) == 0
    assert not (home / "keys.json").exists() and (home / "logs.db").exists()

    existing = tmp_path / "was-here"
    existing.mkdir()
    monkeypatch.setenv("LLM_USER_PATH", str(existing))
    assert main(["llm", "--yes"]) == 0 and main(["llm", "--undo"]) == 0
    assert existing.is_dir() and not any(existing.iterdir())


def test_build_target_relay_from_env_and_sidecar_token_is_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-envkey00000000000000001234")
    monkeypatch.setenv("BAICAI_BASE_URL", "https://api.baicaigpt.com/v1/v1")
    relay = apply_api.build_target("relay", app="llm", model="gpt-4-1106-preview")
    assert relay.base_url == "https://api.baicaigpt.com/v1" and relay.model == "gpt-4-1106-preview"
    assert any("/v1" in note for note in map(str, relay.notes))  # the correction is shown, not silent
    assert relay.key not in repr(relay)
    first = apply_api.build_target("sidecar", app="llm", port=9999)
    second = apply_api.build_target("sidecar", app="llm", port=9999)
    assert first.base_url == "http://127.0.0.1:9999/v1" and first.key.startswith("sk-baicai-")
    assert first.key == second.key  # applying twice must not rotate the app's token
    from baicai_sidecar._tokens import TokenStore

    assert TokenStore().verify(first.key) == "llm"


def test_dry_run_to_the_sidecar_saves_no_token(tmp_path, monkeypatch, capsys) -> None:
    """`--dry-run` writes nothing at all: not the app's file, and not a new sidecar token either. Where the token
    would go it shows the placeholder whole: masked, it read `sk-baicai-…EN`, like a real token."""
    from baicai_sdk.cli import main
    from baicai_sidecar._tokens import TokenStore

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    assert main(["apply", "llm", "--target", "sidecar", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sk-baicai-NEW-TOKEN" in out and "…EN" not in out
    assert TokenStore().get("llm") is None
    assert not (tmp_path / "llm").exists() or not any((tmp_path / "llm").iterdir())
    assert main(["apply", "llm", "--target", "sidecar", "--yes"]) == 0
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
    # the opener runs detached
    opened = wait_until(lambda: calls.exists() and calls.read_text().strip(), interval=0.05, what="the link opener")
    assert opened.startswith("chatbox://")
    config = json.dumps(_decode(parse_qs(urlsplit(opened).query)["config"][0]))
    assert real_key not in config and "sk-baicai-" in config  # the app gets a local token only


def test_list_shows_at_least_twenty_apps_each_saying_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    from baicai_sidecar.apply._cli import KIND_LABELS, main

    apps = apply_api.list_apps()
    assert len(apps) >= 20
    assert {a.kind for a in apps} == {"file", "link", "instructions"}
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for a in apps:
        line = next(line for line in out.splitlines() if line[2:].split(" ", 1)[0] == a.name)
        assert str(KIND_LABELS[a.kind]) in line


def _bash() -> str:
    import shutil

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    return bash


def test_env_shell_output_is_evaluable_by_bash(tmp_path: Path) -> None:
    """`eval "$(baicai apply env --shell bash --reveal)"` sets the variables; without --reveal it sets nothing."""
    bash = _bash()
    key = "baicai-evalkey000000000000000wxyz"
    env = {**os.environ, "BAICAI_API_KEY": key, "BAICAI_HOME": str(tmp_path / "bh"), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("OPENAI_API_KEY", None)
    cli = f"{sys.executable} -m baicai_sidecar.apply._cli env --shell bash"
    script = f'eval "$({cli} --reveal)"; printf "%s|%s" "$OPENAI_API_KEY" "$OPENAI_BASE_URL"'
    done = subprocess.run([bash, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{key}|https://api.baicaigpt.com/v1"
    assert "→" in done.stderr  # the header went to stderr, not into eval

    masked = subprocess.run([bash, "-c", f'eval "$({cli})"; printf "[%s]" "$OPENAI_API_KEY"'], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert masked.returncode == 0 and masked.stdout == "[]"  # nothing half-set
    assert "--reveal" in masked.stderr and key not in masked.stderr + masked.stdout


def test_printed_steps_with_a_masked_key_say_how_to_reveal_it(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from baicai_sidecar.apply._cli import main

    key = "baicai-hintkey000000000000000wxyz"
    monkeypatch.setenv("BAICAI_API_KEY", key)
    assert main(["cline"]) == 0
    out = capsys.readouterr().out
    assert key not in out and "…wxyz" in out and "--reveal" in out
    assert main(["cline", "--reveal"]) == 0
    out = capsys.readouterr().out
    assert key in out and "masked" not in out


def test_undo_revokes_the_apps_sidecar_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from baicai_sdk.cli import main
    from baicai_sidecar._tokens import TokenStore

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    assert main(["apply", "llm", "--target", "sidecar", "--yes"]) == 0
    token = TokenStore().get("llm")
    assert token is not None and TokenStore().verify(token) == "llm"
    capsys.readouterr()
    assert main(["apply", "llm", "--undo"]) == 0
    assert "revoked the sidecar token for llm" in capsys.readouterr().out
    assert TokenStore().verify(token) is None and TokenStore().get("llm") is None

    # a link app writes no file: undo still takes its token away, and says so
    assert main(["apply", "chatbox", "--target", "sidecar", "--no-open"]) == 0
    assert TokenStore().get("chatbox") is not None
    result = apply_api.undo("chatbox")
    assert result.outcomes == [] and any("revoked" in n for n in map(str, result.notes))
    assert TokenStore().get("chatbox") is None
    with pytest.raises(apply_api.ApplyError, match="nothing to undo"):
        apply_api.undo("chatbox")


def test_undo_keeps_the_token_when_a_file_could_not_be_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from baicai_sidecar._tokens import TokenStore

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    target = apply_api.build_target("sidecar", app="llm")
    apply_api.apply(apply_api.plan("llm", target))
    keys = tmp_path / "llm" / "keys.json"
    keys.write_text("{ not json")  # someone broke the file after us: undo cannot take our entry out
    result = apply_api.undo("llm")
    assert any(o.action == "error" for o in result.outcomes)
    assert TokenStore().get("llm") == target.key
    assert any("still active" in n for n in map(str, result.notes))


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"AICHAT_CONFIG_FILE": "/x/my.yaml", "AICHAT_CONFIG_DIR": "/d"}, "linux", "/x/my.yaml"),
        ({"AICHAT_CONFIG_DIR": "/d", "XDG_CONFIG_HOME": "/xdg"}, "darwin", "/d/config.yaml"),
        ({"XDG_CONFIG_HOME": "/xdg"}, "darwin", "/xdg/aichat/config.yaml"),
        ({"XDG_CONFIG_HOME": "/xdg", "APPDATA": "/appdata"}, "win32", "/xdg/aichat/config.yaml"),
        ({}, "darwin", "HOME/Library/Application Support/aichat/config.yaml"),
        ({"APPDATA": "/appdata"}, "win32", "/appdata/aichat/config.yaml"),
    ],
)
def test_aichat_config_path_follows_aichat(environ: dict[str, str], platform: str, expected: str, tmp_path: Path) -> None:
    from baicai_sidecar.apply.aichat import config_path

    env = Env(tmp_path, tmp_path, environ, platform, lambda name: None)
    assert config_path(env) == Path(expected.replace("HOME", str(tmp_path)))


def test_the_reveal_note_comes_only_when_a_key_was_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """codex's dry run shows the NEW-TOKEN placeholder and no key at all: no "key masked, add --reveal" note."""
    from baicai_sdk.cli import main

    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    assert main(["apply", "codex", "--target", "sidecar", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sk-baicai-NEW-TOKEN" in out and "--reveal" not in out


def test_cline_steps_are_chinese_first_like_every_other_line(env: Env, sidecar_target: Target) -> None:
    last = Text.of(apply_api.plan("cline", sidecar_target, env=env).instructions[-1])
    assert "保存" in last.zh and "保存" not in last.en and "Done" in last.en
