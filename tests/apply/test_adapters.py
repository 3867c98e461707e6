"""Every file adapter against real-looking existing configs (comments, other providers, odd formatting).

For each: other settings kept, applying twice changes nothing, undo is byte-identical, undo after someone else
edited the file removes only our entry, and an unparseable file is left untouched.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import ApplyError, Env, Options, Target, UnparseableFile

KEY = "baicai-test0000000000000000key1234"  # the key of the `target` fixture

_yaml = YAML(typ="safe")

LLM_MODELS = """\
# my models — hand edited
- model_id: local-llama   # via ollama
  model_name: llama3
  api_base: "http://localhost:11434/v1"

- model_id: openrouter-claude
  model_name: anthropic/claude-3.5-sonnet
  api_base: https://openrouter.ai/api/v1
  api_key_name: openrouter
"""
LLM_KEYS = '{\n  "// Note": "This file stores secret API credentials. Do not share!",\n  "openai": "sk-user-own",\n  "openrouter":"sk-or-1"\n}\n'

AICHAT_CONFIG = """\
# aichat config
model: openai:gpt-4o        # default model
save: true
clients:
    # the official one
    -   type: openai
        api_key: sk-user-own
    -   type: openai-compatible
        name: deepseek
        api_base: https://api.deepseek.com
        api_key: 'sk-ds'   # quoted on purpose
        models:
            - name: deepseek-chat
"""

CONTINUE_CONFIG = """\
name: My Assistant
version: 1.0.0
schema: v1
models:
  # local model
  - name: Llama 3
    provider: ollama
    model: llama3
    roles:
      - chat
      - edit
context:
  - provider: code
"""
CONTINUE_ENV = "# Continue secrets\nANTHROPIC_API_KEY=sk-ant-user\n"

# codex: tests/apply/test_codex.py (it goes through the sidecar only)

OAI_LIST = """[
    {
        "model": "gpt-4",
        "api_key": "sk-user-own"
    },
    {"model": "llama3", "base_url": "http://localhost:11434/v1", "api_key": "ollama"}
]
"""

DOTENV = """\
# project settings
DEBUG=1
export OPENAI_API_KEY="sk-user-openai"   
DATABASE_URL='postgres://u:p@localhost/db'

"""


OPENCODE_CONFIG = """{
  "$schema": "https://opencode.ai/config.json",
  "model": "anthropic/claude-sonnet-4-5",
  "provider": {
    "ollama": {
      "npm": "@ai-sdk/openai-compatible",
      "options": { "baseURL": "http://localhost:11434/v1" },
      "models": { "llama3": {} }
    }
  },
  "autoupdate": true
}
"""

AIDER_CONFIG = """\
# aider settings
model: gpt-4o   # my default
dark-mode: true
openai-api-key: sk-user-openai
"""

LIBRECHAT_CONFIG = """\
version: 1.2.8
cache: true
# my endpoints
endpoints:
  custom:
    - name: "Ollama"
      apiKey: "ollama"
      baseURL: "http://host.docker.internal:11434/v1/"
      models:
        default: ["llama3"]
        fetch: false
"""
LIBRECHAT_ENV = "MONGO_URI=mongodb://127.0.0.1:27017/LibreChat\nOPENAI_API_KEY=user_provided\n"

ROO_SETTINGS = """{
  "providerProfiles": {
    "currentApiConfigName": "default",
    "apiConfigs": {
      "default": {"apiProvider": "anthropic", "id": "abc123"}
    },
    "modeApiConfigs": {}
  },
  "globalSettings": {"mode": "code"}
}
"""


@dataclass
class Case:
    app: str
    files: dict[str, str]  # relative to the home (or project for env/autogen) -> existing content
    check_kept: Callable[[dict[str, str]], None]  # given the new texts, asserts the user's settings survived
    check_ours: Callable[[dict[str, str], Target], None]
    broken: tuple[str, str]  # (file, unparseable content)
    may_change: frozenset[str] = frozenset()  # original lines our edit may touch (our key's line, a comma)


def _llm_kept(new: dict[str, str]) -> None:
    models = _yaml.load(new["llm/extra-openai-models.yaml"])
    assert [m["model_id"] for m in models[:2]] == ["local-llama", "openrouter-claude"]
    assert "# my models — hand edited" in new["llm/extra-openai-models.yaml"]
    assert "# via ollama" in new["llm/extra-openai-models.yaml"]
    keys = json.loads(new["llm/keys.json"])
    assert keys["openai"] == "sk-user-own" and keys["openrouter"] == "sk-or-1"
    assert new["llm/keys.json"].startswith(LLM_KEYS.rstrip("\n}").rstrip())


def _llm_ours(new: dict[str, str], t: Target) -> None:
    models = _yaml.load(new["llm/extra-openai-models.yaml"])
    assert models[-1] == {"model_id": "baicai-gpt-3.5-turbo", "model_name": "gpt-3.5-turbo", "api_base": t.base_url, "api_key_name": "baicai"}
    assert json.loads(new["llm/keys.json"])["baicai"] == t.key


def _aichat_kept(new: dict[str, str]) -> None:
    text = new["aichat/config.yaml"]
    data = _yaml.load(text)
    assert data["model"] == "openai:gpt-4o" and data["save"] is True
    assert [c.get("name") for c in data["clients"][:2]] == [None, "deepseek"]
    for fragment in ("# default model", "# the official one", "'sk-ds'   # quoted on purpose", "    -   type: openai\n"):
        assert fragment in text


def _aichat_ours(new: dict[str, str], t: Target) -> None:
    client = _yaml.load(new["aichat/config.yaml"])["clients"][-1]
    assert client == {"type": "openai-compatible", "name": "baicai", "api_base": t.base_url, "api_key": t.key, "models": [{"name": "gpt-3.5-turbo"}]}


def _continue_kept(new: dict[str, str]) -> None:
    data = _yaml.load(new[".continue/config.yaml"])
    assert data["models"][0]["name"] == "Llama 3" and data["context"] == [{"provider": "code"}]
    assert "# local model" in new[".continue/config.yaml"]
    assert new[".continue/.env"].startswith(CONTINUE_ENV)
    assert t_not_in(KEY, new[".continue/config.yaml"])


def t_not_in(secret: str, text: str) -> bool:
    return secret not in text


def _continue_ours(new: dict[str, str], t: Target) -> None:
    model = _yaml.load(new[".continue/config.yaml"])["models"][-1]
    assert model["apiBase"] == t.base_url and model["apiKey"] == "${{ secrets.BAICAI_API_KEY }}"
    assert f"BAICAI_API_KEY={t.key}\n" in new[".continue/.env"]


def _autogen_kept(new: dict[str, str]) -> None:
    items = json.loads(new["OAI_CONFIG_LIST"])
    assert items[:2] == json.loads(OAI_LIST)
    assert new["OAI_CONFIG_LIST"].startswith(OAI_LIST.rstrip("\n]").rstrip())


def _autogen_ours(new: dict[str, str], t: Target) -> None:
    assert json.loads(new["OAI_CONFIG_LIST"])[-1] == {"model": "gpt-3.5-turbo", "api_key": t.key, "base_url": t.base_url, "tags": ["baicai"]}


def _env_kept(new: dict[str, str]) -> None:
    text = new[".env"]
    assert text.startswith("# project settings\nDEBUG=1\nexport OPENAI_API_KEY=")
    assert "DATABASE_URL='postgres://u:p@localhost/db'\n\n" in text


def _env_ours(new: dict[str, str], t: Target) -> None:
    assert f"export OPENAI_API_KEY={t.key}\n" in new[".env"]
    assert f"OPENAI_BASE_URL={t.base_url}\n" in new[".env"] and f"OPENAI_API_BASE={t.base_url}\n" in new[".env"]


def _opencode_kept(new: dict[str, str]) -> None:
    data = json.loads(new[".config/opencode/opencode.json"])
    assert data["model"] == "anthropic/claude-sonnet-4-5" and data["autoupdate"] is True
    assert data["provider"]["ollama"]["options"]["baseURL"] == "http://localhost:11434/v1"
    assert '      "options": { "baseURL": "http://localhost:11434/v1" },' in new[".config/opencode/opencode.json"]


def _opencode_ours(new: dict[str, str], t: Target) -> None:
    provider = json.loads(new[".config/opencode/opencode.json"])["provider"]["baicai"]
    assert provider == {"npm": "@ai-sdk/openai-compatible", "name": "BaicaiGPT",
                        "options": {"baseURL": t.base_url, "apiKey": t.key}, "models": {"gpt-3.5-turbo": {"name": "gpt-3.5-turbo"}}}  # fmt: skip


def _aider_kept(new: dict[str, str]) -> None:
    assert _yaml.load(new[".aider.conf.yml"])["dark-mode"] is True
    assert new[".aider.conf.yml"].startswith("# aider settings\n")


def _aider_ours(new: dict[str, str], t: Target) -> None:
    data = _yaml.load(new[".aider.conf.yml"])
    assert (data["openai-api-base"], data["openai-api-key"], data["model"]) == (t.base_url, t.key, "openai/gpt-3.5-turbo")


def _librechat_kept(new: dict[str, str]) -> None:
    data = _yaml.load(new["librechat.yaml"])
    assert data["version"] == "1.2.8" and data["endpoints"]["custom"][0]["name"] == "Ollama"
    assert "# my endpoints" in new["librechat.yaml"]
    assert new["project-env"].startswith(LIBRECHAT_ENV)
    assert KEY not in new["librechat.yaml"]


def _librechat_ours(new: dict[str, str], t: Target) -> None:
    custom = _yaml.load(new["librechat.yaml"])["endpoints"]["custom"][-1]
    assert custom["name"] == "BaicaiGPT" and custom["baseURL"] == t.base_url and custom["apiKey"] == "${BAICAI_API_KEY}"
    assert f"BAICAI_API_KEY={t.key}\n" in new["project-env"]


def _roo_kept(new: dict[str, str]) -> None:
    data = json.loads(new["roo-code-baicai-settings.json"])
    assert data["providerProfiles"]["apiConfigs"]["default"] == {"apiProvider": "anthropic", "id": "abc123"}
    assert data["globalSettings"] == {"mode": "code"} and data["providerProfiles"]["currentApiConfigName"] == "default"


def _roo_ours(new: dict[str, str], t: Target) -> None:
    profile = json.loads(new["roo-code-baicai-settings.json"])["providerProfiles"]["apiConfigs"]["BaicaiGPT"]
    assert profile == {"id": "baicaigpt", "apiProvider": "openai", "openAiBaseUrl": t.base_url,
                       "openAiApiKey": t.key, "openAiModelId": "gpt-3.5-turbo"}  # fmt: skip


CASES = [
    Case("llm", {"llm/extra-openai-models.yaml": LLM_MODELS, "llm/keys.json": LLM_KEYS}, _llm_kept, _llm_ours,
         ("llm/extra-openai-models.yaml", "- model_id: x\n  bad: [unclosed\n"), frozenset({'  "openrouter":"sk-or-1"'})),
    Case("aichat", {"aichat/config.yaml": AICHAT_CONFIG}, _aichat_kept, _aichat_ours,
         ("aichat/config.yaml", "clients:\n  - type: openai\n   api_key: misaligned\n")),
    Case("continue", {".continue/config.yaml": CONTINUE_CONFIG, ".continue/.env": CONTINUE_ENV}, _continue_kept, _continue_ours,
         (".continue/config.yaml", "models: {name: [\n")),
    Case("autogen", {"OAI_CONFIG_LIST": OAI_LIST}, _autogen_kept, _autogen_ours,
         ("OAI_CONFIG_LIST", '[{"model": "gpt-4",}]  // trailing comma\n'),
         frozenset({'    {"model": "llama3", "base_url": "http://localhost:11434/v1", "api_key": "ollama"}'})),
    Case("env", {".env": DOTENV}, _env_kept, _env_ours, (".env", "DEBUG=1\nthis is not an assignment\n"),
         frozenset({'export OPENAI_API_KEY="sk-user-openai"   '})),
    Case("opencode", {".config/opencode/opencode.json": OPENCODE_CONFIG}, _opencode_kept, _opencode_ours,
         (".config/opencode/opencode.json", '{"provider": {"x": 1,}}\n'), frozenset({"    }"})),
    Case("aider", {".aider.conf.yml": AIDER_CONFIG}, _aider_kept, _aider_ours, (".aider.conf.yml", "model: [gpt\n"),
         frozenset({"model: gpt-4o   # my default", "openai-api-key: sk-user-openai"})),
    Case("librechat", {"librechat.yaml": LIBRECHAT_CONFIG, "project-env": LIBRECHAT_ENV}, _librechat_kept,
         _librechat_ours, ("librechat.yaml", "endpoints:\n  custom: [\n")),
    Case("roo-code", {"roo-code-baicai-settings.json": ROO_SETTINGS}, _roo_kept, _roo_ours,
         ("roo-code-baicai-settings.json", "{\"providerProfiles\": \n"),
         frozenset({'      "default": {"apiProvider": "anthropic", "id": "abc123"}'})),
]


def _where(env: Env, rel: str) -> Path:
    if rel.startswith("llm/"):
        return Path(env.environ["LLM_USER_PATH"]) / rel[4:]
    if rel.startswith("aichat/"):
        return Path(env.environ["AICHAT_CONFIG_DIR"]) / rel[7:]
    if rel in ("OAI_CONFIG_LIST", ".env", "librechat.yaml"):
        return env.cwd / rel
    if rel == "project-env":
        return env.cwd / ".env"
    return env.home / rel


@pytest.fixture
def app_env(env: Env) -> Env:
    environ = {"LLM_USER_PATH": str(env.home / "llm-dir"), "AICHAT_CONFIG_DIR": str(env.home / "aichat-dir")}
    return Env(env.home, env.cwd, environ, env.platform, env.which)


def _layout(env: Env, files: dict[str, str]) -> dict[str, Path]:
    paths = {}
    for rel, text in files.items():
        path = _where(env, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        os.chmod(path, 0o640)
        paths[rel] = path
    return paths


def _texts(paths: dict[str, Path]) -> dict[str, str]:
    return {rel: p.read_text(encoding="utf-8") for rel, p in paths.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.app for c in CASES])
def test_apply_keeps_settings_is_idempotent_and_undoes_byte_for_byte(case: Case, app_env: Env, target: Target) -> None:
    paths = _layout(app_env, case.files)
    before = {rel: p.read_bytes() for rel, p in paths.items()}

    plan = apply_api.plan(case.app, target, env=app_env)
    assert plan.changed
    for change in plan.changes:
        assert KEY not in change.diff  # the diff a human reads is masked
    record = apply_api.apply(plan)
    assert record.changed

    new = _texts(paths)
    case.check_kept(new)
    for rel, text in new.items():  # every line of the user's file is still there, byte for byte
        removed = [
            line[1:].rstrip("\n")
            for line in difflib.unified_diff(case.files[rel].splitlines(True), text.splitlines(True), n=0)
            if line.startswith("-") and not line.startswith("---")
        ]
        assert set(removed) <= case.may_change, (rel, removed)
    case.check_ours(new, target)
    for change in plan.changes:
        mode = stat.S_IMODE(change.path.stat().st_mode)
        assert mode == (0o600 if change.secret else 0o640), change.path

    again = apply_api.plan(case.app, target, env=app_env)
    assert not again.changed
    assert not apply_api.apply(again).changed
    assert _texts(paths) == new

    result = apply_api.undo(case.app)
    assert result.exact, result.outcomes
    assert {rel: p.read_bytes() for rel, p in paths.items()} == before
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in paths.values())


@pytest.mark.parametrize("case", CASES, ids=[c.app for c in CASES])
def test_apply_to_missing_files_then_undo_deletes_them(case: Case, app_env: Env, target: Target) -> None:
    plan = apply_api.plan(case.app, target, env=app_env)
    apply_api.apply(plan)
    created = [c.path for c in plan.changes]
    assert all(p.exists() for p in created)
    assert not apply_api.plan(case.app, target, env=app_env).changed
    assert apply_api.undo(case.app).exact
    assert not any(p.exists() for p in created)


@pytest.mark.parametrize("case", CASES, ids=[c.app for c in CASES])
def test_undo_after_someone_else_edited_removes_only_our_entry(case: Case, app_env: Env, target: Target) -> None:
    paths = _layout(app_env, case.files)
    apply_api.apply(apply_api.plan(case.app, target, env=app_env))
    # the user edits the first file after us: append a harmless line in that file's own syntax
    rel, path = next(iter(paths.items()))
    suffix = {".toml": '\n[profiles.mine]\nmodel = "o4-mini"\n', ".json": None, "": None}.get(path.suffix)
    text = path.read_text(encoding="utf-8")
    if rel.endswith((".yaml", ".yml")):
        edited = text + "# edited later by hand\n"
    elif rel.endswith(".env") or rel == ".env":
        edited = text + "LATER=1\n"
    elif suffix:
        edited = text + suffix
    else:  # JSON: add a member/item by hand with the stdlib (reformats, as a user's editor might)
        data = json.loads(text)
        data.append({"model": "later"}) if isinstance(data, list) else data.__setitem__("later", 1)
        edited = json.dumps(data, indent=4) + "\n"
    path.write_text(edited, encoding="utf-8")

    result = apply_api.undo(case.app)
    actions = {o.path: o.action for o in result.outcomes}
    assert actions[path] == "entry-removed"
    after = _texts(paths)
    case.check_kept(after) if not rel.endswith(".json") and rel != "OAI_CONFIG_LIST" else None  # JSON was reformatted
    assert KEY not in after[rel]
    for marker in ("# edited later by hand", "LATER=1", "[profiles.mine]", '"later"'):
        if marker in edited:
            assert marker in after[rel]
    # every other file went back byte for byte
    for other_rel, other in paths.items():
        if other != path:
            assert other.read_text(encoding="utf-8") == case.files[other_rel]


@pytest.mark.parametrize("case", CASES, ids=[c.app for c in CASES])
def test_unparseable_file_is_left_untouched(case: Case, app_env: Env, target: Target) -> None:
    files = dict(case.files)
    files[case.broken[0]] = case.broken[1]
    paths = _layout(app_env, files)
    before = {rel: p.read_bytes() for rel, p in paths.items()}
    with pytest.raises(UnparseableFile) as info:
        apply_api.plan(case.app, target, env=app_env)
    assert "untouched" in str(info.value) and "未做任何改动" in str(info.value)
    assert {rel: p.read_bytes() for rel, p in paths.items()} == before
    assert not (apply_api._safety.apply_root() / "records" / f"{case.app}.json").exists()


def test_switching_target_keeps_the_first_backup(app_env: Env, target: Target, sidecar_target: Target) -> None:
    paths = _layout(app_env, {"llm/extra-openai-models.yaml": LLM_MODELS, "llm/keys.json": LLM_KEYS})
    apply_api.apply(apply_api.plan("llm", target, env=app_env))
    apply_api.apply(apply_api.plan("llm", sidecar_target, env=app_env))
    assert _yaml.load(paths["llm/extra-openai-models.yaml"].read_text())[-1]["api_base"] == sidecar_target.base_url
    assert apply_api.undo("llm").exact
    assert paths["llm/extra-openai-models.yaml"].read_text() == LLM_MODELS
    assert paths["llm/keys.json"].read_text() == LLM_KEYS


def test_continue_refuses_to_shadow_an_old_config_json(env: Env, target: Target) -> None:
    (env.home / ".continue").mkdir()
    (env.home / ".continue" / "config.json").write_text('{"models": []}')
    with pytest.raises(ApplyError, match="config.json"):
        apply_api.plan("continue", target, env=env)
    assert not (env.home / ".continue" / "config.yaml").exists()


def test_env_shell_lines_write_nothing(env: Env, target: Target) -> None:
    plan = apply_api.plan("env", target, env=env, options=Options(shell="powershell"))
    assert plan.changes == []
    assert plan.instructions[0] == f"$env:OPENAI_API_KEY = '{target.key}'"
    assert KEY not in plan.mask(plan.instructions[0])
    assert not (env.cwd / ".env").exists()


def test_undo_without_a_record_says_so() -> None:
    with pytest.raises(ApplyError, match="nothing to undo"):
        apply_api.undo("llm")


def test_undo_keeps_a_value_the_user_changed_after_us(env: Env, target: Target) -> None:
    dotenv = env.cwd / ".env"
    dotenv.write_text("DEBUG=1\n")
    apply_api.apply(apply_api.plan("env", target, env=env))
    text = dotenv.read_text().replace(f"OPENAI_API_KEY={target.key}", "OPENAI_API_KEY=sk-user-new")
    dotenv.write_text(text)
    result = apply_api.undo("env")
    assert [o.action for o in result.outcomes] == ["entry-removed"]
    assert dotenv.read_text() == "DEBUG=1\nOPENAI_API_KEY=sk-user-new\n"


def test_undo_after_other_edits_restores_a_users_own_baicai_client(app_env: Env, target: Target) -> None:
    """The user already had an aichat client named "baicai": undo (with a later edit in the file) puts it back."""
    mine = (
        "model: openai:gpt-4o\n"
        "clients:\n"
        "  - type: openai-compatible\n"
        "    name: baicai\n"
        "    api_base: https://api.baicaigpt.com/v1\n"
        "    api_key: USER-MANUAL-KEY-0000\n"
    )
    paths = _layout(app_env, {"aichat/config.yaml": mine})
    apply_api.apply(apply_api.plan("aichat", target, env=app_env))
    path = paths["aichat/config.yaml"]
    assert "USER-MANUAL-KEY-0000" not in path.read_text()
    with path.open("a", encoding="utf-8") as fh:
        fh.write("save: true\n")  # someone else's later edit: no byte-for-byte restore possible
    result = apply_api.undo("aichat")
    assert not result.exact
    after = _yaml.load(path.read_text())
    assert after["save"] is True
    assert [dict(c) for c in after["clients"]] == [dict(_yaml.load(mine)["clients"][0])]


def test_env_warns_when_the_dotenv_could_be_committed(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from baicai_sidecar.apply.env import committable

    plain = tmp_path / "plain" / ".env"
    plain.parent.mkdir()
    assert not committable(plain)
    repo = tmp_path / "repo"
    repo.mkdir()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert committable(repo / ".env")
    (repo / ".gitignore").write_text(".env\n")
    assert not committable(repo / ".env")
