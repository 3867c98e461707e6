"""What a quick command loads before it answers (issue 16: `baicai usage balance` ≤ 0.3 s plus the network).

Timings live in bench/bench_cli.py; these tests pin the causes, which do not depend on the machine's load: the
command word builds only its own parser, and a plain-HTTP billing call never reads the CA bundle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

_LOADED = """
import json, sys
from baicai_sdk.cli import main
try:
    main(sys.argv[1:])
except SystemExit:  # --help
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {{'baicai_sidecar', 'baicai_tui', 'openai'}}
                        or m in {{'importlib.metadata', {extra!r}}})))
"""


def _loaded(argv: list[str], env: dict[str, str], extra: str = "") -> list[str]:
    out = subprocess.run([sys.executable, "-c", _LOADED.format(extra=extra), *argv], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.slow
def test_core_commands_build_only_their_own_parser(emulator: Any, baicai_home: Path) -> None:
    env = {**os.environ, "BAICAI_API_KEY": emulator.paid_key, "BAICAI_BASE_URL": emulator.base_url,
           "BAICAI_HOME": str(baicai_home)}
    # No entry points read, no sidecar or TUI registrar imported, no openai; the metered pipeline stays unloaded.
    assert _loaded(["usage"], env, "baicai_sdk._transport._metered") == []
    # The billing call is two small JSON reads: the standard library's client, not httpx2 (most of the start-up).
    assert _loaded(["usage", "balance"], env, "httpx2") == []
    assert _loaded(["key", "list"], env) == []
    # A plugin command loads only its own registrar; `--help` lists every command, so it reads them all.
    assert "baicai_tui._cli" not in _loaded(["apply", "--list"], env)
    assert {"baicai_sidecar._cli", "baicai_tui._cli"} <= set(_loaded(["--help"], env))


def _exit_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    from baicai_sdk.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_help_lists_every_command_and_a_typo_names_them(baicai_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In this process: the text comes from the parser (what a fresh interpreter loads for it is pinned above)."""
    code, helped, _ = _exit_of(["--help"], capsys)
    assert code == 0
    for name in ("demo", "emulator", "doctor", "key", "usage", "estimate", "apply", "sidecar", "tui"):
        assert f"    {name} " in helped, name
    code, _, typo = _exit_of(["usag"], capsys)
    assert code == 2
    assert "invalid choice: 'usag'" in typo and "'usage'" in typo and "'sidecar'" in typo
    code, sub, _ = _exit_of(["sidecar", "--help"], capsys)
    assert code == 0 and sub.startswith("usage: baicai sidecar")


def _ca_count(transport: httpx2.HTTPTransport) -> int:
    context = transport._pool._ssl_context  # what httpcore2 would wrap a TLS socket with
    return int(context.cert_store_stats()["x509_ca"])


def test_plain_http_routes_never_load_the_ca_bundle(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx2 loads the CA bundle (~50 ms) for every transport it builds; ours builds the TLS one only for https."""
    from baicai_sdk._transport._proxies import _EnvProxyTransport

    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    transport = _EnvProxyTransport()
    with httpx2.Client(transport=transport) as client:
        assert client.get(f"{emulator.base_url}/models").status_code in (200, 401)
        assert list(transport._by_route) == [(None, False)]
        assert _ca_count(transport._by_route[(None, False)]) == 0  # fails closed were it ever asked for TLS
        with pytest.raises(httpx2.ConnectError):  # nothing listens on port 1; the route is built all the same
            client.get("https://127.0.0.1:1/v1/models")
    tls = transport._by_route[(None, True)]
    assert _ca_count(tls) > 0 and tls._pool._ssl_context.check_hostname


def test_a_tunnel_to_https_or_an_https_proxy_keeps_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    from baicai_sdk._transport._proxies import _route

    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.setenv("HTTP_PROXY", "https://proxy.example:3129")
    monkeypatch.setenv("NO_PROXY", "")
    assert _route(httpx2.URL("https://api.baicaigpt.com/v1")) == ("socks5://127.0.0.1:1080", True)
    assert _route(httpx2.URL("http://relay.example/v1")) == ("https://proxy.example:3129", True)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _route(httpx2.URL("http://relay.example/v1")) == ("http://proxy.example:3128", False)


def test_a_closed_pipe_ends_the_command_quietly(baicai_home: Path) -> None:
    """`baicai apply --list | head -3` printed a BrokenPipeError traceback once head had left."""
    code = ("import os, sys\n"
            "read, write = os.pipe(); os.close(read); os.dup2(write, 1)\n"  # stdout: a pipe nobody reads any more
            "from baicai_sdk.cli import main\n"
            "sys.exit(main(['apply', '--list']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
