"""The one file helper: atomic writes with the right mode, cross-process locks, change detection on coarse mtimes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from baicai_sdk import _files
from baicai_sdk._files import FileWatch, LockTimeout, atomic_write, file_lock, stale_temps, write_temp

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@posix_only
def test_atomic_write_keeps_the_mode_caps_secrets_and_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.conf"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    atomic_write(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    atomic_write(link, b"secret", secret=True)
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert not stale_temps(real)


@posix_only
def test_a_temp_file_is_private_until_it_is_renamed(tmp_path: Path) -> None:
    target = tmp_path / "auth.json"
    temp, real = write_temp(target, b'{"k": "baicai-secret"}', mode=0o600)
    assert real == target and stale_temps(target) == [temp]
    assert stat.S_IMODE(temp.stat().st_mode) == 0o600
    _files.commit_temp(temp, real)
    assert target.read_bytes() == b'{"k": "baicai-secret"}' and not stale_temps(target)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from baicai_sdk._files import file_lock
    with file_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_the_lock_excludes_another_process_and_says_which_file(tmp_path: Path) -> None:
    target = tmp_path / "profiles.json"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(target), "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout) as caught, file_lock(target, timeout=0.2):
            pass
        assert str(target) in str(caught.value) and "另一个 baicai 进程" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    with file_lock(target, timeout=5), file_lock(target, timeout=5):  # free again, and reentrant in one thread
        pass


_ISSUER = textwrap.dedent(
    """
    import sys
    from baicai_sidecar._tokens import TokenStore
    store = TokenStore(sys.argv[1])
    for i in range(25):
        store.issue(f"{sys.argv[2]}-{i}")
    """
)


@pytest.mark.slow
def test_two_processes_issuing_tokens_lose_nothing(tmp_path: Path) -> None:
    from baicai_sidecar._tokens import TokenStore

    path = tmp_path / "sidecar-tokens.json"
    procs = [subprocess.Popen([sys.executable, "-c", _ISSUER, str(path), name]) for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    apps = {t.app for t in TokenStore(path).list()}
    assert apps == {f"{n}-{i}" for n in ("a", "b") for i in range(25)}


@pytest.fixture
def coarse_stamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem with 2-second mtimes, no inode numbers and no ctime (FAT, some network shares)."""
    real_stamp = _files._stamp

    def coarse(path: Path) -> _files._Stamp | None:
        stamp = real_stamp(path)
        if stamp is None:
            return None
        two_s = 2_000_000_000
        return _files._Stamp(stamp.dev, 0, stamp.size, stamp.mtime_ns // two_s * two_s, 0)

    monkeypatch.setattr(_files, "_stamp", coarse)


@pytest.mark.usefixtures("coarse_stamps")
def test_file_watch_sees_a_same_size_rewrite_within_one_mtime_tick(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    atomic_write(path, b"aaaa")
    watch = FileWatch(path)
    assert watch.changed() and watch.read() == b"aaaa"
    assert not watch.changed()
    atomic_write(path, b"bbbb")  # same size, same (coarse) mtime, no inode to tell them apart
    assert watch.changed() and watch.read() == b"bbbb"
    old = 1_600_000_000_000_000_000
    os.utime(path, ns=(old, old))
    watch.read()
    assert not watch.changed()  # an old mtime is trusted: one stat, no read


@pytest.mark.usefixtures("coarse_stamps")
def test_a_rotation_in_another_process_is_seen_on_the_next_verify(tmp_path: Path) -> None:
    from baicai_sidecar._tokens import TokenStore

    path = tmp_path / "t.json"
    sidecar_view, cli_view = TokenStore(path), TokenStore(path)
    old = cli_view.issue("chatbox")
    assert sidecar_view.verify(old) == "chatbox"
    new = cli_view.issue("chatbox", rotate=True)  # same length, same tick
    assert sidecar_view.verify(old) is None
    assert sidecar_view.verify(new) == "chatbox"


def test_stale_temp_files_holding_a_secret_are_removed_by_the_next_write(tmp_path: Path) -> None:
    from baicai_sidecar._tokens import TokenStore

    path = tmp_path / "sidecar-tokens.json"
    store = TokenStore(path)
    store.issue("a")
    temp, _ = write_temp(path, b'{"tokens": {"x": {"token": "sk-baicai-leftover"}}}', secret=True)  # a killed writer's
    store.issue("b")
    assert not temp.exists() and not stale_temps(path)
