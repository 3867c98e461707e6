"""In a terminal, `baicai apply` shows the diff and asks before writing; without a terminal it needs `--yes`."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name == "nt", reason="needs a pseudo-terminal")

_RUN = "import sys; from baicai_sdk.cli import main; sys.exit(main(sys.argv[1:]))"


def _in_terminal(args: list[str], answer: bytes, home: Path) -> tuple[int, str]:
    master, slave = pty.openpty()
    env = {**os.environ, "BAICAI_API_KEY": "baicai-" + "c" * 40, "HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", _RUN, *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    os.write(master, answer)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", "replace")


def test_a_terminal_is_asked_and_no_keeps_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=old\n")
    code, out = _in_terminal(["apply", "env", "--file", str(env_file)], b"n\n", tmp_path)
    assert "Write these changes? [y/N]" in out and "nothing written" in out, out
    assert code == 1
    assert env_file.read_text() == "OPENAI_API_KEY=old\n"


def test_a_terminal_that_says_yes_gets_the_change(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=old\n")
    code, out = _in_terminal(["apply", "env", "--file", str(env_file)], b"y\n", tmp_path)
    assert code == 0, out
    assert "OPENAI_API_KEY=old" not in env_file.read_text()


def test_yes_is_not_asked_and_undo_is_not_asked(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=old\n")
    code, out = _in_terminal(["apply", "env", "--file", str(env_file), "--yes"], b"", tmp_path)
    assert code == 0 and "[y/N]" not in out, out
    env_file.write_text("OPENAI_API_KEY=old\n")
    piped = subprocess.run([sys.executable, "-c", _RUN, "apply", "env", "--file", str(env_file), "--undo"],
                           capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=60)
    assert "[y/N]" not in piped.stdout


def test_without_a_terminal_and_without_yes_it_shows_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    """A script (stdin not a terminal) that did not say --yes gets the plan and a refusal saying to add --yes —
    not a silent write into another app's config. No sidecar token is issued for the refused apply either."""
    llm = tmp_path / "llm"
    environ = {**os.environ, "HOME": str(tmp_path), "LLM_USER_PATH": str(llm), "LANG": "C.UTF-8"}
    environ.pop("BAICAI_LANG", None)
    cli = [sys.executable, "-c", _RUN, "apply", "llm", "--target", "sidecar"]
    refused = subprocess.run(cli, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=environ, timeout=60)
    assert refused.returncode == 1, refused.stderr
    assert "+  api_key_name: baicai" in refused.stdout  # the plan is shown
    zh, en = refused.stderr.index("加上 --yes 重新运行"), refused.stderr.index("run the same command again with --yes")
    assert zh < en  # Chinese first, then English
    assert "written" not in refused.stdout and not llm.exists()
    from baicai_sidecar._tokens import TokenStore

    assert TokenStore().get("llm") is None

    written = subprocess.run([*cli, "--yes"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=environ,
                             timeout=60)
    assert written.returncode == 0, written.stderr
    assert (llm / "keys.json").exists() and TokenStore().get("llm") is not None
