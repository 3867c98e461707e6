"""``baicai sidecar`` argument rules and ``baicai sidecar token add|list|revoke``."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from baicai_sdk.cli import main
from baicai_sidecar._tokens import TokenStore
from baicai_sidecar.app import SidecarConfig


def test_token_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sidecar", "token", "add", "lobechat"]) == 0
    token = TokenStore().get("lobechat")
    assert token and token in capsys.readouterr().out
    assert main(["sidecar", "token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["app"] for t in listed] == ["lobechat"] and token not in json.dumps(listed)
    assert main(["sidecar", "token", "revoke", "lobechat"]) == 0
    assert TokenStore().verify(token) is None
    assert main(["sidecar", "token", "revoke", "lobechat"]) == 1
    assert main(["sidecar", "token", "add", "bad name"]) == 2


def test_remote_bind_needs_a_flag_and_never_open() -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        SidecarConfig(upstream="http://x/v1", api_key="baicai-k", host="0.0.0.0")
    with pytest.raises(ValueError, match="--open"):
        SidecarConfig(upstream="http://x/v1", api_key="baicai-k", host="0.0.0.0", allow_remote=True,
                      open_access=True)
    SidecarConfig(upstream="http://x/v1", api_key="baicai-k", host="0.0.0.0", allow_remote=True)


def test_remote_bind_refused_on_the_command_line(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "k" * 40)
    assert main(["sidecar", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "k" * 20 not in err


def test_a_busy_port_is_said_before_any_banner(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "k" * 40)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["sidecar", "--port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert "Base URL" not in out and "Ctrl-C" not in out  # nothing that looks like a start
    assert f"127.0.0.1:{port}" in err and "--port" in err and "端口" in err
    assert "another program holds the port" in err and "curl" not in err  # a hint that answered 401
    assert "k" * 20 not in out + err


def test_a_port_taken_by_a_sidecar_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           sidecar: Any) -> None:
    """The port is checked for the user: a running sidecar is named (with its pid when its state file says so),
    instead of a `curl …/sidecar/status` to try that answered 401 without the token."""
    from baicai_sidecar._state import clear_state, write_state

    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "k" * 40)
    port = int(sidecar.origin.rsplit(":", 1)[1])  # in this process, as `baicai tui` runs one: no state file
    assert main(["sidecar", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"a baicai sidecar is already running on port {port} (perhaps inside baicai tui)" in err, err
    write_state(port)  # as `baicai sidecar` leaves it while it runs
    try:
        assert main(["sidecar", "--port", str(port)]) == 1
    finally:
        clear_state()
    err = capsys.readouterr().err
    assert f"already running on port {port} (pid {os.getpid()})" in err and "Ctrl-C" in err, err


def test_no_key_lists_only_where_the_command_looks(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAICAI_API_KEY", raising=False)
    assert main(["sidecar", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "Looked in: 1) the BAICAI_API_KEY environment variable; 2) the active profile" in err, err
    assert "api_key=" not in err and "baicai key add" in err


def test_sidecar_command_imports_no_server_until_run() -> None:
    import subprocess
    import sys

    code = ("import sys; from baicai_sdk.cli import build_parser; build_parser(); "
            "print('starlette' in sys.modules, 'uvicorn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_package_exports_load_lazily() -> None:
    import subprocess
    import sys

    code = ("import sys, baicai_sidecar; assert 'starlette' not in sys.modules; "
            "from baicai_sidecar import SidecarServer, SidecarConfig, create_app, TokenStore; "
            "print('baicai_sidecar._server' in sys.modules, 'baicai_sidecar.app' in sys.modules, "
            "'starlette' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Starlette is not used at all (the status page is a plain JSON answer): never imported.
    assert out.split() == ["True", "True", "False"]


def test_a_relay_that_cannot_be_used_is_said_at_start(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    import socket

    from baicai_sidecar._cli import _check_relay

    _check_relay(emulator.base_url, emulator.paid_key)
    assert capsys.readouterr().err == ""  # a usable relay: nothing to say
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    _check_relay(f"http://127.0.0.1:{dead}/v1", emulator.paid_key)
    err = capsys.readouterr().err
    assert "无法连接中转站" in err and "cannot reach the relay" in err and emulator.paid_key not in err


@pytest.mark.parametrize("argv", [
    ["sidecar", "token", "list"], ["sidecar", "token", "add", "lobechat"], ["sidecar", "--port", "0"],
    ["apply", "llm", "--target", "sidecar", "--dry-run"],
])
def test_a_damaged_token_file_is_one_line_with_the_fix(argv: list[str], capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "k" * 40)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    store = TokenStore()
    store.issue("default")
    store.path.write_text('{"version": 1, "tokens": {"default": {"tok', "utf-8")  # cut off mid-write
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "sidecar-tokens.json" in err[0] and "damaged" in err[0] and "已损坏" in err[0]
    assert "baicai sidecar" in err[0] and "Traceback" not in err[0]


def test_loopback_is_decided_by_the_resolved_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name is judged by what it resolves to: "127.evil.example" resolving to a LAN address is not loopback, and
    with --open it is refused even with --allow-remote (issue 14, item 6)."""
    import socket

    from baicai_sidecar._guard import is_loopback_host

    real = socket.getaddrinfo
    lan = {"127.evil.example": "192.168.1.20", "lan-box": "10.0.0.5"}

    def resolve(host: str, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host in lan:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (lan[host], 0))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert is_loopback_host("127.0.0.1") and is_loopback_host("127.8.9.10") and is_loopback_host("::1")
    assert is_loopback_host("[::1]") and is_loopback_host("localhost")
    assert not is_loopback_host("127.evil.example") and not is_loopback_host("lan-box")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("no-such-name.invalid")
    for host in ("127.evil.example", "lan-box"):
        with pytest.raises(ValueError, match="--allow-remote"):
            SidecarConfig(upstream="http://x/v1", api_key="baicai-k", host=host, open_access=True)
        with pytest.raises(ValueError, match="--open"):
            SidecarConfig(upstream="http://x/v1", api_key="baicai-k", host=host, open_access=True,
                          allow_remote=True)
    SidecarConfig(upstream="http://x/v1", api_key="baicai-k", host="localhost", open_access=True)


def test_a_damaged_tokenizer_is_one_line_with_the_fix_before_any_banner(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundled tokenizer file that fails its checksum (a damaged install): `baicai sidecar` printed a traceback
    ending in the message. Now it is the message alone, before anything that looks like a start."""
    from baicai_sdk import _tokens

    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "k" * 40)
    monkeypatch.setattr(_tokens, "_cache", {})  # not the copy other tests loaded
    monkeypatch.setitem(_tokens._KNOWN_SHA256, "cl100k_base", "0" * 64)  # what a damaged file's digest looks like
    assert main(["sidecar", "--port", "0"]) == 1
    out, err = capsys.readouterr()
    assert "Base URL" not in out and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "reinstall baicai" in err and "重新安装" in err and "k" * 20 not in out + err


def test_token_list_has_a_header_and_token_help_a_clean_usage(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_LANG", "both")
    token = TokenStore().issue("lobechat")
    assert main(["sidecar", "token", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["应用", "app", "lobechat"], lines  # Chinese header over English
    assert lines[1].index("token") == lines[2].index("sk-baicai-…") and token not in "\n".join(lines)
    with pytest.raises(SystemExit):
        main(["sidecar", "token", "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert usage == "usage: baicai sidecar token [-h] ACTION ...", usage  # not the sidecar's whole usage first
