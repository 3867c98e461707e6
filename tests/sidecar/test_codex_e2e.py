"""The real codex CLI (npm ``@openai/codex``) configured by ``baicai apply codex --target sidecar`` runs a turn with a
tool call through the sidecar's Responses API against the emulator.

The package is installed with npm at test time (about 30 s and 420 MB the first time) into pytest's cache directory
and reused by later runs; ``BAICAI_CODEX_VERSION`` picks another release (default: the one ``apply/codex.py`` was
written for; ``latest`` for the newest). Skipped, saying why, where node/npm, the registry or the platform binary
is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CODEX_VERSION = os.environ.get("BAICAI_CODEX_VERSION", "0.171.0")
CHATGPT_TOKEN = "chatgpt-access-token-must-stay-home-0000"
CHATGPT_AUTH = json.dumps({
    "OPENAI_API_KEY": None,
    "tokens": {"id_token": "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6InVzZXJAZXhhbXBsZS5jb20ifQ.", "access_token": CHATGPT_TOKEN,
               "refresh_token": "chatgpt-refresh-token-0000", "account_id": "acct_0000"},
    "last_refresh": "2026-11-30T00:00:00Z",
}, indent=2) + "\n"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def codex_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from filelock import FileLock

    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node/npm not installed: the real codex CLI cannot be installed here")
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider: install into a temp dir
    name = f"codex-npm-{CODEX_VERSION}"
    root = Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)
    binary = root / "node_modules" / ".bin" / "codex"
    with FileLock(str(root) + ".lock"):  # parallel workers install once
        _install(npm, root, binary)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    if version.returncode != 0:
        pytest.skip(f"the codex binary does not run on this machine: {(version.stderr or version.stdout)[-400:]}")
    return binary


def _install(npm: str, root: Path, binary: Path) -> None:
    if not binary.exists():
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(root), f"@openai/codex@{CODEX_VERSION}"],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not binary.exists():
            pytest.skip(f"npm could not install @openai/codex@{CODEX_VERSION}: {(done.stderr or done.stdout)[-400:]}")


def test_codex_exec_with_a_tool_call_through_the_sidecar(emulator: Any, sidecar_factory: Any, codex_bin: Path,
                                                         tmp_path: Path, ledger_rows: Any) -> None:
    from baicai_sidecar._tokens import TokenStore

    presented: list[str] = []
    store = TokenStore()

    def verify(token: str) -> str | None:
        presented.append(token)
        return store.verify(token)

    sidecar = sidecar_factory(verify_token=verify)
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "auth.json").write_text(CHATGPT_AUTH)
    auth_before = (codex_home / "auth.json").read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    # The emulator calls codex's first tool (exec_command) with cmd "example": a program of ours by that name
    # proves the call ran on this machine and its output went back through the sidecar.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "example").write_text(f"#!/bin/sh\necho baicai-tool-ran > {work / 'ran.txt'}\necho baicai-tool-output\n")
    (tools / "example").chmod(0o755)
    for profile in (".bash_profile", ".zprofile", ".profile"):  # codex runs commands in a login shell
        (home / profile).write_text(f'export PATH="{tools}:$PATH"\n')
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("OPENAI", "CODEX", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))}
    env.update(HOME=str(home), CODEX_HOME=str(codex_home), PATH=f"{tools}{os.pathsep}{env.get('PATH', '')}")

    baicai = Path(sys.executable).with_name("baicai")
    applied = subprocess.run([str(baicai), "apply", "codex", "--target", "sidecar", "--port", str(sidecar.port), "--yes"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    token = store.get("codex")
    assert token and token in (codex_home / "config.toml").read_text()

    done = subprocess.run(
        [str(codex_bin), "exec", "--strict-config", "--skip-git-repo-check", "--color", "never",
         "--dangerously-bypass-approvals-and-sandbox", "-C", str(work), "run the example tool"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "ran.txt").read_text().strip() == "baicai-tool-ran"
    assert "The tool returned:" in done.stdout and "baicai-tool-output" in done.stdout, done.stdout[-2000:]

    # codex: two Responses requests (the call, then its result) → two chat requests at the relay, real key only
    assert [r.path for r in emulator.state.requests] == ["/v1/chat/completions"] * 2
    assert {r.authorization for r in emulator.state.requests} == {f"Bearer {emulator.paid_key}"}
    assert presented and set(presented) == {token}  # the sidecar saw the local token, never the ChatGPT login
    assert (codex_home / "auth.json").read_bytes() == auth_before
    rows = [r for r in ledger_rows() if r["status"] != "pending"]
    assert [(r["app"], r["endpoint"], r["stream"]) for r in rows] == [("codex", "chat", 1)] * 2
