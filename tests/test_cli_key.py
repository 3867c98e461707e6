"""``baicai key …`` end to end: in-process through ``cli.main`` and as a real subprocess fed on stdin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from baicai_sdk import cli
from baicai_sdk._keys import KeyStore

FREE = "baicai-free-0123456789abcdefWXYZ"
PAID = "baicai-paid-9876543210fedcbaQRST"


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_add_from_stdin_then_list_show_use_tier_rm(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(monkeypatch, capsys, ["key", "add", "main", "--tier", "free"], FREE + "\n")
    assert code == 0, err
    assert "baicai-…WXYZ" in out and "now active" in out
    code, out, err = run(monkeypatch, capsys, ["key", "add", "work", "--tier", "paid", "--base-url",
                                               "https://api.baicaigpt.com/v1/v1"], PAID)
    assert code == 0
    assert "removed a repeated /v1" in err
    assert "baicai key use work" in out

    code, out, _ = run(monkeypatch, capsys, ["key", "list"])
    lines = out.splitlines()
    assert lines[0].split() == ["名称", "密钥", "会员等级", "存储", "中转地址"], lines  # a header, Chinese over English
    assert lines[1].split() == ["name", "key", "tier", "store", "base", "URL"], lines
    from baicai_sdk._commands._cells import cells

    key_column = lines[1].index("key")  # aligned by terminal cells: a Chinese character takes two
    assert lines[2].index("baicai-…WXYZ") == key_column == cells(lines[0][:lines[0].index("密钥")])
    assert lines[2].startswith("* main") and "baicai-…WXYZ" in lines[2] and "free" in lines[2]
    assert lines[3].startswith("  work") and "https://api.baicaigpt.com/v1" in lines[3]

    code, out, _ = run(monkeypatch, capsys, ["key", "list", "--json"])
    listed = json.loads(out)
    assert [(p["name"], p["tier"], p["active"]) for p in listed] == [("main", "free", True), ("work", "paid", False)]

    assert run(monkeypatch, capsys, ["key", "use", "work"])[0] == 0
    code, out, _ = run(monkeypatch, capsys, ["key", "show"])
    assert "work  （当前） / (active)" in out and "baicai-…QRST" in out
    assert "会员等级 / tier" in out.splitlines()[2], out  # labels in the user's language too

    assert run(monkeypatch, capsys, ["key", "tier", "main", "paid"])[0] == 0
    code, out, _ = run(monkeypatch, capsys, ["key", "show", "main", "--json"])
    assert json.loads(out)["tier"] == "paid"

    code, out, _ = run(monkeypatch, capsys, ["key", "rm", "work"])
    assert code == 0 and "No profile is active now" in out
    assert [p.name for p in KeyStore().list()] == ["main"]


def test_hidden_prompt_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return FREE

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", _Stdin("", tty=True))
    assert cli.main(["key", "add", "main"]) == 0
    assert len(prompts) == 1 and "hidden" in prompts[0]
    assert KeyStore().get("main").secret() == FREE
    assert FREE not in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["key", "add", "main", FREE], ["key", "add", "main", "--key", FREE],
                                  ["key", "add", "main", f"--api-key={FREE}"]])
def test_key_on_the_command_line_is_refused_without_echo(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(monkeypatch, capsys, argv, PAID)
    assert code == 2
    assert FREE not in out + err
    assert err.index("命令行") < err.index("command-line")
    assert KeyStore().list() == []


def test_empty_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(monkeypatch, capsys, ["key", "add", "main"], "\n")
    assert code == 1 and "empty" in err
    assert KeyStore().list() == []


def test_sk_key_is_saved_with_a_warning(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    openai_key = "sk-proj-abcdefghijklmnopqrstuvwxyz12"
    code, out, err = run(monkeypatch, capsys, ["key", "add", "oa"], openai_key)
    assert code == 0
    assert "sk-proj-…yz12" in err and openai_key not in out + err


def test_unknown_profile_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["key", "use", "x"], ["key", "rm", "x"], ["key", "show", "x"], ["key", "tier", "x", "free"]):
        code, _, err = run(monkeypatch, capsys, argv)
        assert code == 1 and "no profile named 'x'" in err
    code, _, err = run(monkeypatch, capsys, ["key", "show"])
    assert code == 1 and "No active profile" in err


def test_empty_list_explains_what_to_do(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(monkeypatch, capsys, ["key", "list"])
    assert code == 0 and "baicai key add" in out and "baicai demo" in out


def test_no_keyring_backend_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    no_keyring: None, baicai_home: Path) -> None:
    asked: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": asked.append(prompt) or FREE)
    code, _, err = run(monkeypatch, capsys, ["key", "add", "main"], FREE)
    assert code == 1
    assert "BAICAI_SECRET_STORE=file" in err and "--store file" in err
    assert not (baicai_home / "config" / "secrets.json").exists()
    # the explicit fallback works
    code, out, _ = run(monkeypatch, capsys, ["key", "add", "main", "--store", "file"], FREE)
    assert code == 0 and "secrets.json" in out


def test_keyring_store_via_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               fake_keyring: Any) -> None:
    code, out, _ = run(monkeypatch, capsys, ["key", "add", "main"], FREE)
    assert code == 0 and "OS keyring" in out
    assert fake_keyring.secrets[("baicai", "main")] == FREE


def test_corrupt_config_is_reported_before_the_key_is_asked(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            baicai_home: Path) -> None:
    path = baicai_home / "config" / "profiles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{oops")
    stdin = _Stdin(FREE)
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main(["key", "add", "main"]) == 1
    assert stdin.tell() == 0, "the key was not read"
    assert str(path) in capsys.readouterr().err
    assert path.read_text() == "{oops"


def _baicai(args: list[str], stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baicai_sdk.cli", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_real_subprocess_with_stdin(baicai_home: Path) -> None:
    env = {**os.environ}
    added = _baicai(["key", "add", "main", "--tier", "paid"], PAID + "\n", env)
    assert added.returncode == 0, added.stderr
    assert PAID not in added.stdout + added.stderr
    shown = _baicai(["key", "show", "main", "--json"], "", env)
    assert json.loads(shown.stdout)["masked"] == "baicai-…QRST"
    refused = _baicai(["key", "add", "other", FREE], "", env)
    assert refused.returncode == 2 and FREE not in refused.stdout + refused.stderr
    assert KeyStore().get("main").secret() == PAID


def test_a_key_typed_as_the_profile_name_is_refused_and_never_echoed(capsys) -> None:
    from baicai_sdk.cli import main

    key = "baicai-TYPEDASNAME000000000000000wxyz"
    assert main(["key", "add", key]) != 0
    out = capsys.readouterr()
    assert key not in out.out + out.err and "baicai-…wxyz" in out.out + out.err
    assert main(["key", "list"]) == 0
    assert key not in capsys.readouterr().out


@pytest.mark.parametrize("pasted", [f'"{FREE}"', f"  '{FREE}'  \n", f"“{FREE}”", f"\t{FREE} "])
def test_a_key_pasted_with_quotes_or_spaces_is_trimmed_with_a_note(pasted: str, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(monkeypatch, capsys, ["key", "add", "main"], stdin=pasted)
    assert code == 0, err
    assert KeyStore().get("main").secret() == FREE
    assert "removed the whitespace or quotes around the key" in err and FREE not in out + err


def test_a_piped_key_with_only_its_newline_gets_no_note(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(monkeypatch, capsys, ["key", "add", "main"], stdin=FREE + "\n")
    assert code == 0 and "removed" not in err


def test_a_quoted_key_in_the_environment_is_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    from baicai_sdk._keys import resolve_credentials

    monkeypatch.setenv("BAICAI_API_KEY", f"'{FREE}'")
    assert resolve_credentials(warn=False).key == FREE
