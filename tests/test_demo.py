"""`baicai demo` is the newcomer's first command: offline, nothing configured, real figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow  # runs `baicai demo` in a subprocess
def test_scripted_demo_runs_offline_and_leaves_the_users_ledger_alone(baicai_home: Path, tmp_path: Path) -> None:
    keep = tmp_path / "demo-data"
    env = {**os.environ, "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9"}  # any real network use would fail
    port = _free_port()
    done = subprocess.run(
        [sys.executable, "-m", "baicai_sdk.cli", "demo", "--no-tui", "--keep", str(keep), "--port", str(port)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"emulator: http://127.0.0.1:{port}/v1" in out
    assert "本小时 gpt-3.5：请求 2/60" in out and "this hour gpt-3.5: requests 2/60" in out
    assert "stopped locally, never sent" in out and "1/1 gpt-4" in out
    first = next(line for line in out.splitlines() if "attempt 1: ok" in line)
    assert first.startswith("   第 1 次：ok / attempt 1: ok — '") and first.count(" — ") == 1, first  # the reply once
    assert "gpt-4 requests the emulator saw: 1" in out
    # not "the free tier allows gpt-4": only the -preview models the catalogue marks free (newcomer trial, finding 5)
    assert "a free key gets 1 gpt-4 request an hour, on gpt-4-0125-preview, gpt-4-1106-vision-preview, " \
           "gpt-4-1106-preview only (gpt-4 itself and the other gpt-4 models need a paid key)" in out
    assert "免费 KEY 每小时 1 次 gpt-4，且只限 gpt-4-0125-preview" in out
    assert "ledger cost ¥0.40" in out  # DALL·E 3 standard 1024², from the catalogue via the ledger
    assert "measured" in out
    balance = next(line for line in out.splitlines() if "measured" in line)
    assert balance.count("the relay's billing endpoints") == 1, balance  # was shown once inside each half
    assert (keep / "data" / "ledger.sqlite3").is_file() and (keep / "demo-image.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (baicai_home / "data" / "ledger.sqlite3").exists(), "the demo must not write the user's ledger"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_on_a_busy_port_says_so_in_one_line(baicai_home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "baicai_sdk.cli", "demo", "--no-tui", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0], done.stderr


@pytest.mark.slow  # runs `baicai demo` in a subprocess
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_demo_ended_by_a_closed_terminal_or_kill_removes_its_temp_folder(baicai_home: Path, tmp_path: Path,
                                                                           signame: str) -> None:
    """The README says demo data is removed at exit: closing the terminal used to leave /tmp/baicai-demo-*."""
    import signal

    if not hasattr(signal, signame):
        pytest.skip(f"no {signame} here")
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "baicai_sdk.cli", "demo", "--no-tui"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)})
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the title: the temp folder exists from here on
        homes = list(temp.glob("baicai-demo-*"))
        assert len(homes) == 1
        proc.send_signal(getattr(signal, signame))
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not homes[0].exists(), f"left behind after {signame}: {sorted(p.name for p in homes[0].rglob('*'))}"
    # Its exit status says which signal ended it. (No assertion on stderr: a signal that lands inside openai's
    # client constructor leaves a half-built client whose __del__ prints "Exception ignored …" at exit.)
    assert proc.returncode == 128 + getattr(signal, signame), proc.returncode
