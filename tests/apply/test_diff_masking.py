"""The diffs ``apply`` shows mask every secret in the user's files, not only baicai's own key.

Found by a newcomer: with llm's ``keys.json`` holding ``{"openai": "sk-mine-123"}`` the diff printed the OpenAI key
in full next to baicai's masked one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import Env, Target
from baicai_sidecar.apply._mask import mask_secrets


@pytest.mark.parametrize(
    ("line", "secret", "shown"),
    [
        ('  "openai": "sk-mine-123",', "sk-mine-123", '"sk-…23"'),  # llm keys.json: a key map named by provider
        ("OPENAI_API_KEY=abc123def456ghi789", "abc123def456ghi789", "OPENAI_API_KEY=…i789"),  # .env
        ('export ANTHROPIC_API_KEY="ant-secret-value-1234"', "ant-secret-value-1234", '"…1234"'),
        ("openai-api-key: sk-proj-aaaaaaaaaaaaaaaaaaaa1234", "aaaaaaaaaaaaaaaaaaaa1234", "sk-proj-…1234"),  # aider
        ('      "apiKey": "zzyzx-987654321"', "zzyzx-987654321", '"apiKey": "…21"'),  # camelCase JSON
        ('experimental_bearer_token = "tok-abcdefgh12345678"', "tok-abcdefgh12345678", '"…5678"'),  # TOML
        ("    api_key: my-plain-password", "my-plain-password", "api_key: …word"),  # YAML
        ("password = 'hunter2hunter2'", "hunter2hunter2", "'…r2'"),
        ("k: baicai-abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123", "baicai-…0123"),
    ],
)
def test_secret_values_are_masked_in_json_yaml_toml_and_env_lines(line: str, secret: str, shown: str) -> None:
    masked = mask_secrets(line)
    assert secret not in masked and shown in masked, masked


@pytest.mark.parametrize(
    "line",
    [
        "  max_tokens: 4096",
        "  api_key_name: baicai",
        "  api_base: http://127.0.0.1:8765/v1",
        "- model_id: baicai-gpt-3.5-turbo",
        "  api_key: ${OPENAI_API_KEY}",
        '  apiKey: "{env:OPENAI_API_KEY}"',
        '  "// Note": "This file stores secret API credentials. Do not share!"',
        'experimental_bearer_token = "sk-baicai-NEW-TOKEN"',  # the dry-run placeholder is not a secret
        "model = gpt-4-0125-preview",
    ],
)
def test_settings_that_are_not_secrets_are_shown_as_they_are(line: str) -> None:
    assert mask_secrets(line) == line


def test_llm_diff_masks_the_users_other_provider_key(env: Env, sidecar_target: Target) -> None:
    folder = env.home / "llm"
    folder.mkdir()
    (folder / "keys.json").write_text('{"openai": "sk-mine-123"}\n')
    llm_env = Env(env.home, env.cwd, {"LLM_USER_PATH": str(folder)}, env.platform, env.which)
    plan = apply_api.plan("llm", sidecar_target, env=llm_env)
    diff = "".join(c.diff for c in plan.changes)
    assert "sk-mine-123" not in diff and '"openai": "sk-…23"' in diff
    assert sidecar_target.key not in diff and "sk-baicai-…tok9" in diff
    apply_api.apply(plan)
    assert "sk-mine-123" in (folder / "keys.json").read_text()  # masking is for the eyes only: the file keeps it


def test_env_diff_masks_a_key_the_file_already_had(tmp_path: Path, env: Env, target: Target) -> None:
    dotenv = env.cwd / ".env"
    dotenv.write_text("ANTHROPIC_API_KEY=sk-ant-api03-realrealrealreal9876\nOPENAI_API_KEY=sk-old-openai-5555\n")
    diff = "".join(c.diff for c in apply_api.plan("env", target, env=env).changes)
    assert "realrealreal" not in diff and "sk-old-openai-5555" not in diff and target.key not in diff
    assert "OPENAI_API_KEY" in diff  # what changes is still readable
