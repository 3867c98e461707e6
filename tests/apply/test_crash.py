"""``apply`` killed at every step, for every file-writing adapter: ``--undo`` (or the next apply) restores every
original byte for byte, and no temp file (which may hold the key) survives.

The kill is real: a forked child runs ``apply`` with ``BAICAI_APPLY_CRASH_AT=N`` and ends with ``os._exit`` at the
N-th write step (no ``finally``, no ``atexit``), for N = 1, 2, … until an apply runs to the end. One case also
goes through the real command line in a subprocess.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import ApplyError, Env, Plan, Target, _journal

from .test_adapters import CASES, KEY, Case, _layout, app_env  # noqa: F401 - app_env is a fixture

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked child")

_CRASHED = 86


def _apply_in_child(plan: Plan, crash_at: int) -> int:
    """Run one apply in a forked child that dies at step ``crash_at``; its exit status (86 = killed there)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.environ[_journal.CRASH_ENV] = str(crash_at)
            apply_api.apply(plan)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process kill loses nothing the kernel already has; fsync guards against power loss, which no test makes.
    Skipping it keeps ~400 kills under a few seconds on a slow disk."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def _leftovers(*folders: Path) -> list[Path]:
    """Temp files anywhere under our folders, and any file still holding the key."""
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and (path.name.endswith(".baicai-tmp") or KEY.encode() in path.read_bytes()):
                found.append(path)
    return found


CODEX = Case(  # codex goes through the sidecar only, so it is not among test_adapters' CASES
    "codex",
    {".codex/config.toml": '# codex settings\nmodel = "o3"  # favourite\n\n[mcp_servers.docs]\ncommand = "npx"\n'},
    lambda new: None,
    lambda new, t: None,
    (".codex/config.toml", 'model = "o3"\nmodel = "dup"\n'),
)
_RUNS = [(c, False) for c in [*CASES, CODEX]] + [(c, True) for c in CASES if c.app == "llm"]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "reapply"), _RUNS, ids=[c.app + ("-re-apply" if r else "") for c, r in _RUNS])
def test_a_kill_at_every_step_is_undone_byte_for_byte(
    case: Case, reapply: bool, app_env: Env, target: Target, sidecar_target: Target, baicai_home: Path, tmp_path: Path
) -> None:
    paths = _layout(app_env, case.files)
    originals = {rel: p.read_bytes() for rel, p in paths.items()}
    modes = {rel: stat.S_IMODE(p.stat().st_mode) for rel, p in paths.items()}
    if case.app == "codex":
        target = sidecar_target
    # Every iteration starts from the originals, so the plans (the slow part: parsing) are made once.
    first = apply_api.plan(case.app, target, env=app_env)
    second = None
    if reapply:  # an earlier apply to the relay; the one that is killed switches to the sidecar
        apply_api.apply(first)
        second = apply_api.plan(case.app, sidecar_target, env=app_env)
        apply_api.undo(case.app)
    steps = 0
    for crash_at in range(1, 200):
        if second is not None:
            apply_api.apply(first)
        code = _apply_in_child(second or first, crash_at)
        assert code in (0, _CRASHED), code
        if crash_at % 5 == 0 and code == _CRASHED:  # the next apply finds the interrupted one and rolls it back
            apply_api.apply(apply_api.plan(case.app, target, env=app_env))
        try:
            result = apply_api.undo(case.app)
        except ApplyError as exc:  # killed before anything was changed: the files are the originals
            assert "nothing to undo" in str(exc) and code == _CRASHED
        else:
            assert result.exact, (crash_at, result.outcomes)
        assert {rel: p.read_bytes() for rel, p in paths.items()} == originals, crash_at
        assert {rel: stat.S_IMODE(p.stat().st_mode) for rel, p in paths.items()} == modes, crash_at
        leftovers = [p for p in _leftovers(app_env.home, app_env.cwd, baicai_home) if "backups" not in p.parts]
        assert not leftovers, (crash_at, leftovers)
        if code == 0:
            steps = crash_at - 1
            break
    assert steps >= 8  # copies, intent, temps, checks, renames, record: every one of them was a kill point


@pytest.mark.slow
def test_a_kill_through_the_command_line_then_undo(app_env: Env, baicai_home: Path, tmp_path: Path) -> None:
    """The real ``baicai apply`` process killed between llm's two renames, then ``baicai apply llm --undo``."""
    llm = app_env.home / "llm"
    llm.mkdir()
    (llm / "extra-openai-models.yaml").write_text("- model_id: mine\r\n  model_name: gpt-4\r\n", newline="")
    (llm / "keys.json").write_text('{"openai": "sk-user"}\n')
    originals = {p: p.read_bytes() for p in llm.iterdir()}
    environ = {
        **os.environ,
        "HOME": str(app_env.home),
        "LLM_USER_PATH": str(llm),
        "BAICAI_API_KEY": KEY,
        "BAICAI_HOME": str(baicai_home),
    }
    cli = [sys.executable, "-m", "baicai_sidecar.apply._cli", "llm", "--target", "relay", "--yes"]
    # steps: 2 backups × 2, 2 copies × 2, intent × 2, 2 temps, then check, rename, sync of the models file: die after it
    killed = subprocess.run(cli, env={**environ, _journal.CRASH_ENV: "14"}, capture_output=True, text=True)
    assert killed.returncode == _CRASHED, killed.stderr
    models, keys = llm / "extra-openai-models.yaml", llm / "keys.json"
    assert models.read_bytes() != originals[models]  # half applied
    assert keys.read_bytes() == originals[keys]
    undo = subprocess.run([*cli, "--undo"], env=environ, capture_output=True, text=True)
    assert undo.returncode == 0, undo.stderr
    assert "restored" in undo.stdout
    assert {p: p.read_bytes() for p in llm.iterdir()} == originals


def test_a_temp_file_a_killed_undo_left_beside_the_target_is_removed_by_the_next_run(env: Env, target: Target) -> None:
    from baicai_sdk.integration import stale_temps, write_temp

    dotenv = env.cwd / ".env"
    dotenv.write_text("A=1\n")
    apply_api.apply(apply_api.plan("env", target, env=env))
    temp, _ = write_temp(dotenv, f"OPENAI_API_KEY={KEY}\n".encode(), secret=True)  # as a kill mid-undo leaves it
    assert apply_api.undo("env").exact and not temp.exists()
    temp, _ = write_temp(dotenv, f"OPENAI_API_KEY={KEY}\n".encode(), secret=True)
    apply_api.apply(apply_api.plan("env", target, env=env))
    assert not temp.exists() and not stale_temps(dotenv)
