"""``baicai emulator`` as a user runs it: a real process, the banner, serving, and a clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx2
import pytest

from baicai_sdk.testing import FREE_DEMO_KEY, PAID_DEMO_KEY

pytestmark = pytest.mark.slow  # each test starts `baicai emulator` in a subprocess


def _start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "baicai_sdk.cli", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "Ctrl-C" in line:
            return proc, lines
    proc.kill()
    raise AssertionError(f"no banner: {lines} {proc.stderr.read() if proc.stderr else ''}")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def _base_url(lines: list[str]) -> str:
    return next(line.split("API_BASE:", 1)[1].strip() for line in lines if "API_BASE:" in line)


def test_demo_keys_serve_and_ctrl_c_stops_cleanly() -> None:
    proc, lines = _start("--error-style", "errcode", "--after-beta")
    try:
        base = _base_url(lines)
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        assert any(FREE_DEMO_KEY in line for line in lines) and any(PAID_DEMO_KEY in line for line in lines)
        ok = httpx2.post(base + "/chat/completions", headers={"authorization": f"Bearer {PAID_DEMO_KEY}"},
                         json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})
        assert ok.status_code == 200 and ok.json()["usage"]["total_tokens"] > 0
        refused = httpx2.post(base + "/chat/completions", headers={"authorization": f"Bearer {FREE_DEMO_KEY}"},
                              json={"model": "gpt-3.5-turbo", "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]})
        assert refused.json() == {"errcode": 48005, "errmsg": refused.json()["errmsg"]}
    finally:
        code, out, err = _stop(proc)
    assert code == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_given_keys_are_printed_masked() -> None:
    secret = "baicai-" + "s" * 36 + "wxyz"
    proc, lines = _start("--key", f"paid:{secret}", "--key", "free:baicai-" + "f" * 40, "--faults", "latency=0.01")
    try:
        banner = "\n".join(lines)
        assert secret not in banner and "baicai-…wxyz" in banner and "latency=0.01" in banner
        answer = httpx2.get(_base_url(lines) + "/models", headers={"authorization": f"Bearer {secret}"})
        assert answer.status_code == 200
    finally:
        code, _, _ = _stop(proc)
    assert code == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--key", "gold:baicai-x"], "TIER:KEY"), (["--faults", "bussy=1"], "bussy")],
)
def test_bad_arguments_are_explained(args: list[str], needle: str) -> None:
    result = subprocess.run([sys.executable, "-m", "baicai_sdk.cli", "emulator", "--port", "0", *args],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and needle in result.stderr and "/" in result.stderr


def test_port_in_use_is_explained() -> None:
    proc, lines = _start()
    try:
        port = _base_url(lines).rsplit(":", 1)[1].split("/")[0]
        result = subprocess.run([sys.executable, "-m", "baicai_sdk.cli", "emulator", "--port", port],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 1 and "--port" in result.stderr
    finally:
        _stop(proc)
