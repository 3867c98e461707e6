"""The shared safety layer: atomic writes under SIGKILL, pair rollback, stale plans, symlinks, modes."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import ApplyError, Env, Target, _safety

_WRITER = r"""
import sys
from pathlib import Path
from baicai_sidecar.apply._safety import atomic_write
path = Path(sys.argv[1])
old, new = Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
print("ready", flush=True)
i = 0
while True:
    atomic_write(path, new if i % 2 == 0 else old, secret=True)
    i += 1
"""


@pytest.mark.slow
def test_kill_mid_write_leaves_old_or_new_never_a_mix(tmp_path: Path) -> None:
    # two large, different JSON documents: a torn write would not parse or would match neither
    old = json.dumps({"version": "old", "items": ["a" * 64] * 40_000}).encode()
    new = json.dumps({"version": "new", "items": ["b" * 64] * 40_000}).encode()
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    target = tmp_path / "config.json"
    target.write_bytes(old)
    target.chmod(0o600)  # a kill before the first rename leaves this file: its mode must already be the one we check
    rng = random.Random(6)
    seen = set()
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target), str(tmp_path / "old"), str(tmp_path / "new")],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        data = target.read_bytes()
        assert data in (old, new), f"torn file: {len(data)} bytes"
        seen.add(json.loads(data)["version"])
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert seen == {"old", "new"} or len(seen) == 1  # both usually show up; either way nothing torn
    for leftover in _safety.stale_temp_files(tmp_path):  # a killed writer may leave its temp file, never the target
        assert leftover.name.endswith(".baicai-tmp")


def test_second_file_failing_puts_the_first_back(env: Env, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    llm = env.home / "llm"
    llm.mkdir()
    env = Env(env.home, env.cwd, {"LLM_USER_PATH": str(llm)}, env.platform, env.which)
    (llm / "extra-openai-models.yaml").write_text("- model_id: mine\n  model_name: gpt-4\n")
    plan = apply_api.plan("llm", target, env=env)
    real_replace = os.replace

    def failing(src: str, dst: str) -> None:  # the models file is already renamed into place when keys.json fails
        if Path(dst).name == "keys.json":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(ApplyError, match="No space left on device.*rolled back"):
        apply_api.apply(plan)
    assert (llm / "extra-openai-models.yaml").read_text() == "- model_id: mine\n  model_name: gpt-4\n"
    assert not (llm / "keys.json").exists()
    assert not _safety.stale_temp_files(llm) and not list(_safety.apply_root().rglob("*.baicai-tmp"))
    assert not (_safety.apply_root() / "journal" / "intent.json").exists()


def test_a_file_changed_after_the_preview_is_not_written(env: Env, target: Target) -> None:
    env_file = env.cwd / ".env"
    env_file.write_text("A=1\n")
    plan = apply_api.plan("env", target, env=env)
    env_file.write_text("A=2\n")
    with pytest.raises(ApplyError, match="changed after the preview"):
        apply_api.apply(plan)
    assert env_file.read_text() == "A=2\n"


def test_symlinked_dotfile_is_written_through_the_link(env: Env, target: Target) -> None:
    real = env.home / "dotfiles" / "env"
    real.parent.mkdir()
    real.write_text("A=1\n")
    os.symlink(real, env.cwd / ".env")
    apply_api.apply(apply_api.plan("env", target, env=env))
    assert (env.cwd / ".env").is_symlink()
    assert "OPENAI_API_KEY=" in real.read_text()
    assert apply_api.undo("env").exact
    assert real.read_text() == "A=1\n" and (env.cwd / ".env").is_symlink()


def test_backups_and_records_live_under_the_data_dir_and_hold_no_key_in_records(env: Env, target: Target) -> None:
    (env.cwd / ".env").write_text("A=1\n")
    apply_api.apply(apply_api.plan("env", target, env=env))
    root = _safety.apply_root()
    record = (root / "records" / "env.json").read_text()
    assert target.key not in record
    backups = list((root / "backups" / "env").iterdir())
    assert [b.read_text() for b in backups] == ["A=1\n"]
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600


def test_a_second_apply_waiting_too_long_for_the_lock_gets_a_clear_error(
    env: Env, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from baicai_sdk.integration import file_lock

    (env.cwd / ".env").write_text("A=1\n")
    plan = apply_api.plan("env", target, env=env)
    held, release = threading.Event(), threading.Event()

    def other_apply() -> None:  # another thread (like another process) holds the apply lock
        with file_lock(_safety.apply_root() / "apply"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=other_apply)
    holder.start()
    try:
        assert held.wait(10)
        monkeypatch.setattr(_safety, "_LOCK_TIMEOUT", 0.2)
        with pytest.raises(ApplyError, match="另一个 baicai 进程.*in use by another baicai process"):
            apply_api.apply(plan)
        assert (env.cwd / ".env").read_text() == "A=1\n"
    finally:
        release.set()
        holder.join()
    apply_api.apply(plan)  # free again
