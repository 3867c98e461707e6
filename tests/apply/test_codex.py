"""codex: one provider table through the sidecar (Responses API), auth.json never read for writing, undo exact."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest
import tomlkit

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import ApplyError, Env, Target, UnparseableFile

CODEX_CONFIG = """\
# codex settings
model = "o3"  # favourite
approval_policy = "on-request"

[model_providers.openrouter]
name = "OpenRouter"
base_url = "https://openrouter.ai/api/v1"
env_key = "OPENROUTER_API_KEY"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
"""
CHATGPT_AUTH = (
    '{\n  "OPENAI_API_KEY": null,\n  "tokens": {\n    "id_token": "eyJhbGciOiJub25lIn0.e30.",\n'
    '    "access_token": "chatgpt-access-token-0000",\n    "refresh_token": "chatgpt-refresh-0000",\n'
    '    "account_id": "acct_0000"\n  },\n  "last_refresh": "2026-11-30T00:00:00Z"\n}\n'
)


def _codex(env: Env) -> Path:
    home = env.home / ".codex"
    home.mkdir(exist_ok=True)
    return home


def test_sidecar_provider_speaks_responses_with_its_own_token(env: Env, sidecar_target: Target) -> None:
    home = _codex(env)
    (home / "config.toml").write_text(CODEX_CONFIG)
    (home / "auth.json").write_text(CHATGPT_AUTH)
    os.chmod(home / "config.toml", 0o640)
    auth_before = (home / "auth.json").read_bytes()

    plan = apply_api.plan("codex", sidecar_target, env=env)
    assert [c.path.name for c in plan.changes] == ["config.toml"]  # auth.json is not part of the plan
    assert sidecar_target.key not in plan.changes[0].diff
    assert any("ChatGPT" in note for note in map(str, plan.notes))
    apply_api.apply(plan)

    text = (home / "config.toml").read_text()
    doc = tomlkit.parse(text).unwrap()
    assert doc["model_provider"] == "baicai" and doc["model"] == sidecar_target.model
    assert doc["model_providers"]["baicai"] == {
        "name": "BaicaiGPT (sidecar)", "base_url": sidecar_target.base_url, "wire_api": "responses",
        "experimental_bearer_token": sidecar_target.key}
    assert doc["model_providers"]["openrouter"]["env_key"] == "OPENROUTER_API_KEY"
    assert doc["approval_policy"] == "on-request" and doc["mcp_servers"]["docs"]["args"] == ["-y", "docs-mcp"]
    removed = [line[1:].rstrip("\n") for line in difflib.unified_diff(CODEX_CONFIG.splitlines(True),
                                                                       text.splitlines(True), n=0)
               if line.startswith("-") and not line.startswith("---")]
    assert removed == ['model = "o3"  # favourite']  # every other line of the user's file is still there
    assert stat.S_IMODE((home / "config.toml").stat().st_mode) == 0o600  # it holds a bearer token now
    assert (home / "auth.json").read_bytes() == auth_before

    assert not apply_api.plan("codex", sidecar_target, env=env).changed
    assert apply_api.undo("codex").exact
    assert (home / "config.toml").read_text() == CODEX_CONFIG
    assert stat.S_IMODE((home / "config.toml").stat().st_mode) == 0o640
    assert (home / "auth.json").read_bytes() == auth_before


def test_relay_target_is_refused_and_points_to_the_sidecar(env: Env, target: Target) -> None:
    home = _codex(env)
    (home / "config.toml").write_text(CODEX_CONFIG)
    with pytest.raises(ApplyError) as info:
        apply_api.plan("codex", target, env=env)
    message = str(info.value)
    assert "--target sidecar" in message and "Responses API" in message and "中转" in message
    assert (home / "config.toml").read_text() == CODEX_CONFIG
    assert not (home / "auth.json").exists()


def test_missing_config_is_created_and_undo_deletes_it(env: Env, sidecar_target: Target) -> None:
    apply_api.apply(apply_api.plan("codex", sidecar_target, env=env))
    config = env.home / ".codex" / "config.toml"
    assert tomlkit.parse(config.read_text())["model_provider"] == "baicai"
    assert not (env.home / ".codex" / "auth.json").exists()
    assert apply_api.undo("codex").exact
    assert not config.exists()


def test_undo_after_a_later_edit_removes_only_our_provider(env: Env, sidecar_target: Target) -> None:
    config = _codex(env) / "config.toml"
    config.write_text(CODEX_CONFIG)
    apply_api.apply(apply_api.plan("codex", sidecar_target, env=env))
    config.write_text(config.read_text() + '\n[profiles.mine]\nmodel = "o4-mini"\n')
    result = apply_api.undo("codex")
    assert [o.action for o in result.outcomes] == ["entry-removed"]
    doc = tomlkit.parse(config.read_text()).unwrap()
    assert "baicai" not in doc["model_providers"] and doc["profiles"]["mine"]["model"] == "o4-mini"
    assert doc["model"] == "o3" and "model_provider" not in doc
    assert sidecar_target.key not in config.read_text()


def test_an_older_baicai_entry_is_replaced_whole(env: Env, sidecar_target: Target) -> None:
    """0.x of baicai wrote wire_api = "chat" and requires_openai_auth (which sends a ChatGPT login upstream)."""
    home = _codex(env)
    (home / "config.toml").write_text(
        'model_provider = "baicai"\nmodel = "gpt-3.5-turbo"\n\n[model_providers.baicai]\nname = "BaicaiGPT"\n'
        'base_url = "https://api.baicaigpt.com/v1"\nwire_api = "chat"\nrequires_openai_auth = true\n')
    (home / "auth.json").write_text('{"OPENAI_API_KEY": "baicai-old0000000000000000000000abcd"}')
    plan = apply_api.plan("codex", sidecar_target, env=env)
    assert any("--undo" in note for note in map(str, plan.notes))  # the old real key in auth.json is pointed out
    apply_api.apply(plan)
    provider = tomlkit.parse((home / "config.toml").read_text()).unwrap()["model_providers"]["baicai"]
    assert "requires_openai_auth" not in provider and provider["wire_api"] == "responses"


def test_unparseable_config_is_left_untouched(env: Env, sidecar_target: Target) -> None:
    config = _codex(env) / "config.toml"
    config.write_text('model = "o3"\nmodel = "dup"\n')
    with pytest.raises(UnparseableFile):
        apply_api.plan("codex", sidecar_target, env=env)
    assert config.read_text() == 'model = "o3"\nmodel = "dup"\n'


@pytest.mark.parametrize(("tier", "warned"), [("free", True), ("paid", False), (None, False)])
def test_a_free_key_is_told_codex_will_not_fit_its_limits(tier: str | None, warned: bool, env: Env,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """codex's turn is over 10k tokens: on the free tier neither gpt-4-0125-preview (1 request, 1,000 tokens an
    hour) nor gpt-3.5-turbo (4k window) can serve it, so the model stays and the plan says why."""
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "f" * 40)
    if tier:
        monkeypatch.setenv("BAICAI_TIER", tier)
    target = apply_api.build_target("sidecar", app="codex", port=8765, issue_token=False)
    assert target.model == "gpt-4-0125-preview" and target.tier == (tier or "unknown")
    notes = [str(n) for n in apply_api.plan("codex", target, env=env).notes]
    assert any("free tier allows gpt-4-0125-preview once and 1,000 tokens an hour" in n for n in notes) == warned
