"""The files `apply` writes, read back by each app's own parser or schema (where it installs here).

- Continue: ``@continuedev/config-yaml``'s ``parseConfigYaml`` (the parser Continue loads config.yaml with).
- LibreChat: ``librechat-data-provider``'s ``configSchema`` (the zod schema LibreChat validates librechat.yaml with).
- Roo Code: ``@roo-code/types``' ``providerSettingsWithIdSchema`` and ``globalSettingsSchema``, put together the
  way Roo Code's settings import does (``providerProfiles`` + optional ``globalSettings``).
- aider: its own option parser (``aider/args.py`` from the aider-chat wheel, without aider's heavy dependencies:
  only ``configargparse``, ``shtab`` and ``packaging`` are needed to build the parser), reading our YAML file.

The npm packages and the aider wheel are installed once into pytest's cache dir and reused (seconds after the
first run). Without node/npm, or without the package registries, each test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import Env, Target

pytestmark = pytest.mark.slow  # node or a subprocess per check: 2–4 s each once the packages are cached

NPM_PACKAGES = ("@continuedev/config-yaml@1.42.0", "librechat-data-provider@0.8.524", "@roo-code/types@1.115.0")
AIDER = "aider-chat==0.86.2"
AIDER_PARSER_DEPS = ("configargparse", "shtab", "packaging")


@pytest.fixture(scope="session")
def node_modules(request: pytest.FixtureRequest) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed: the apps' own JavaScript schemas cannot run here")
    root = Path(request.config.cache.mkdir("baicai-apply-npm"))
    stamp = root / "installed.txt"
    if not stamp.exists() or stamp.read_text() != "\n".join(NPM_PACKAGES):
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(root), *NPM_PACKAGES],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"npm could not install the apps' schema packages (no registry?): {done.stderr[-300:]}")
        stamp.write_text("\n".join(NPM_PACKAGES))
    return root / "node_modules"


def _node(node_modules: Path, script: str, *args: str) -> dict[str, object]:
    path = node_modules.parent / "check.mjs"
    path.write_text(script, encoding="utf-8")
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run([node, str(path), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


CONTINUE_CHECK = """
import { readFileSync } from "node:fs";
import { parseConfigYaml } from "@continuedev/config-yaml";
const config = parseConfigYaml(readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(config.models));
"""


@pytest.mark.parametrize("model", ["gpt-3.5-turbo", "gpt-5"])
def test_continue_config_is_accepted_by_continues_own_parser(node_modules: Path, env: Env, target: Target, model: str) -> None:
    target = Target("relay", target.base_url, target.key, "t", model)
    folder = env.home / ".continue"
    folder.mkdir()
    (folder / "config.yaml").write_text("name: Mine\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: Llama\n    provider: ollama\n    model: llama3\n")
    apply_api.apply(apply_api.plan("continue", target, env=env))
    models = _node(node_modules, CONTINUE_CHECK, str(folder / "config.yaml"))
    assert isinstance(models, list) and [m["name"] for m in models] == ["Llama", f"BaicaiGPT {model}"]
    ours = models[1]
    assert ours["apiBase"] == target.base_url and ours["provider"] == "openai"
    assert ours["apiKey"] == "${{ secrets.BAICAI_API_KEY }}"


LIBRECHAT_CHECK = """
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const YAML = require("js-yaml");
const { configSchema, Constants } = require("librechat-data-provider");
const result = configSchema.safeParse(YAML.load(readFileSync(process.argv[2], "utf8")));
console.log(JSON.stringify({ ok: result.success, version: Constants.CONFIG_VERSION,
  issues: result.success ? [] : result.error.issues, custom: result.success ? result.data.endpoints.custom : null }));
"""


def test_librechat_yaml_is_accepted_by_librechats_schema(node_modules: Path, env: Env, target: Target) -> None:
    apply_api.apply(apply_api.plan("librechat", target, env=env))  # a new file
    out = _node(node_modules, LIBRECHAT_CHECK, str(env.cwd / "librechat.yaml"))
    assert out["ok"], out["issues"]
    from baicai_sidecar.apply.librechat import CONFIG_VERSION

    assert out["version"] == CONFIG_VERSION
    custom = out["custom"]
    assert isinstance(custom, list) and custom[0]["name"] == "BaicaiGPT" and custom[0]["baseURL"] == target.base_url


ROO_CHECK = """
import { readFileSync } from "node:fs";
import { z } from "zod";
import { providerSettingsWithIdSchema, globalSettingsSchema } from "@roo-code/types";
// the shape Roo Code's settings import parses (providerProfiles + optional globalSettings)
const providerProfilesSchema = z.object({
  currentApiConfigName: z.string(),
  apiConfigs: z.record(z.string(), providerSettingsWithIdSchema),
  modeApiConfigs: z.record(z.string(), z.string()).optional(),
});
const schema = z.object({ providerProfiles: providerProfilesSchema, globalSettings: globalSettingsSchema.optional() });
const result = schema.safeParse(JSON.parse(readFileSync(process.argv[2], "utf8")));
console.log(JSON.stringify({ ok: result.success, issues: result.success ? [] : result.error.issues,
  profile: result.success ? result.data.providerProfiles.apiConfigs["BaicaiGPT"] : null }));
"""


def test_roo_code_import_file_is_accepted_by_roo_codes_schemas(node_modules: Path, env: Env, target: Target, sidecar_target: Target) -> None:
    apply_api.apply(apply_api.plan("roo-code", target, env=env))
    path = env.home / "roo-code-baicai-settings.json"
    out = _node(node_modules, ROO_CHECK, str(path))
    assert out["ok"], out["issues"]
    assert out["profile"] == {"id": "baicaigpt", "apiProvider": "openai", "openAiBaseUrl": target.base_url,
                              "openAiApiKey": target.key, "openAiModelId": "gpt-3.5-turbo"}  # fmt: skip
    apply_api.apply(apply_api.plan("roo-code", sidecar_target, env=env))  # switching target edits our profile
    out = _node(node_modules, ROO_CHECK, str(path))
    assert out["ok"] and out["profile"]["openAiBaseUrl"] == sidecar_target.base_url  # type: ignore[index]


@pytest.fixture(scope="session")
def aider_path(request: pytest.FixtureRequest) -> Path:
    root = Path(request.config.cache.mkdir("baicai-apply-aider"))
    if not (root / "aider" / "args.py").exists():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(root), AIDER, *AIDER_PARSER_DEPS],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"pip could not fetch {AIDER} (no registry?): {done.stderr[-300:]}")
    return root


AIDER_CHECK = """
import sys, types, json
sys.modules["aider.coders"] = types.SimpleNamespace(__all__=[])  # the edit-format list pulls in aider's LLM stack
import aider
aider.coders = sys.modules["aider.coders"]
from aider.args import get_parser
args = get_parser([], None).parse_args(["--config", sys.argv[1]])
print(json.dumps({"base": args.openai_api_base, "key": args.openai_api_key, "model": args.model}))
"""


def test_aider_conf_is_read_by_aiders_own_parser(aider_path: Path, env: Env, target: Target) -> None:
    (env.home / ".aider.conf.yml").write_text("# mine\ndark-mode: true\n")
    apply_api.apply(apply_api.plan("aider", target, env=env))
    child = {**os.environ, "PYTHONPATH": str(aider_path)}
    child = {k: v for k, v in child.items() if not k.startswith(("OPENAI_", "AIDER_"))}
    done = subprocess.run([sys.executable, "-c", AIDER_CHECK, str(env.home / ".aider.conf.yml")],
                          env=child, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"base": target.base_url, "key": target.key, "model": "openai/gpt-3.5-turbo"}
    # and a key aider does not know is refused by the same parser, so the check can fail
    (env.home / "bad.yml").write_text("openai-api-bse: x\n")
    bad = subprocess.run([sys.executable, "-c", AIDER_CHECK, str(env.home / "bad.yml")],
                         env=child, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode != 0


def test_opencode_provider_has_the_shape_opencode_and_cc_switch_write(env: Env, target: Target) -> None:
    """No OpenCode parser installs here (its npm package is a platform binary): check the documented shape."""
    apply_api.apply(apply_api.plan("opencode", target, env=env))
    data = json.loads((env.home / ".config" / "opencode" / "opencode.json").read_text())
    assert data["$schema"] == "https://opencode.ai/config.json"
    provider = data["provider"]["baicai"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {"baseURL": target.base_url, "apiKey": target.key}
    assert set(provider["models"]) == {"gpt-3.5-turbo"}
    assert "model" not in data  # the user's default model is theirs to choose
