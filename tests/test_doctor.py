"""``baicai doctor`` (issue 2) against the running emulator, a closed port, and the common mistakes."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from baicai_sdk import cli
from baicai_sdk._keys import KeyStore


def doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``baicai doctor --json`` and the plain report; both must agree on the exit status."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = cli.main(["doctor", "--json", "--timeout", "2", *args])
    report = json.loads(capsys.readouterr().out)
    text_code = cli.main(["doctor", "--timeout", "2", *args])
    out, err = capsys.readouterr()
    assert text_code == code
    assert "Traceback" not in out + err
    return code, report, out


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recorded_paths(emulator: Any, want: int) -> list[str]:
    """The paths the emulator saw; it records after answering, so give its thread a moment to catch up."""
    return [r.path for r in emulator.wait_for_requests(want)]


def add_profile(key: str, base_url: str | None = None, tier: str = "unknown") -> None:
    KeyStore().add("main", key, tier=tier, base_url=base_url)


def test_healthy_setup(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    add_profile(emulator.free_key, emulator.base_url, tier="free")
    code, report, text = doctor(monkeypatch, capsys)
    assert code == 0 and report["ok"] is True
    cfg = report["config"]
    assert cfg["key_source"] == "profile:main" and cfg["base_url_source"] == "profile:main"
    assert cfg["base_url"] == emulator.base_url and cfg["tier"] == "free"
    assert cfg["secret_store"] == "file"
    by_name = checks(report)
    assert by_name["relay"]["status"] == "ok"
    assert by_name["tokenizer:cl100k_base"]["status"] == "ok"
    assert by_name["tokenizer:o200k_base"]["status"] == "ok"
    assert not [c for c in report["checks"] if c["status"] == "problem"]
    assert "Everything looks fine" in text
    # it really asked the relay, with the key
    assert recorded_paths(emulator, 2) == ["/v1/models", "/v1/models"]
    assert emulator.free_key not in json.dumps(report) + text


def test_profiles_kept_in_the_file_store_need_no_keyring(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    """`key add --store file` without BAICAI_SECRET_STORE: the keyring is never used, so it is nothing to fix."""
    KeyStore().add("main", emulator.free_key, tier="free", base_url=emulator.base_url, store="file")
    monkeypatch.delenv("BAICAI_SECRET_STORE", raising=False)
    code, report, _ = doctor(monkeypatch, capsys)
    assert code == 0 and "keyring" not in checks(report)


def test_no_key_offline_explains_demo_and_key_add(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, report, text = doctor(monkeypatch, capsys, "--offline")
    assert code == 1
    key = checks(report)["key"]
    assert key["status"] == "problem"
    assert "baicai demo" in key["fix"] and "baicai key add" in key["fix"]
    assert key["fix"].index("运行") < key["fix"].index("Run")
    assert checks(report)["relay"]["status"] == "info"  # not contacted
    assert "baicai demo" in text and "1 problem" in text


def test_unreachable_relay_is_a_problem_with_advice(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-free-0123456789abcdef")
    monkeypatch.setenv("BAICAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    started = time.monotonic()
    code, report, text = doctor(monkeypatch, capsys)
    assert time.monotonic() - started < 20
    assert code == 1
    relay = checks(report)["relay"]
    assert relay["status"] == "problem" and "cannot reach the relay" in relay["summary"]
    assert "proxy" in relay["fix"].lower() and "base URL" in relay["fix"]
    assert report["config"]["base_url_source"] == "BAICAI_BASE_URL"
    assert "baicai-free-0123456789abcdef" not in text


def test_double_v1_is_explained_with_the_relays_48004(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.paid_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url + "/v1")
    code, report, text = doctor(monkeypatch, capsys)
    assert code == 1
    by_name = checks(report)
    assert by_name["relay"]["status"] == "ok", "baicai itself uses the repaired URL"
    fixed = by_name["base_url_fixed"]
    assert fixed["status"] == "warn" and "48004" in fixed["fix"]
    as_configured = by_name["relay_as_configured"]
    assert as_configured["status"] == "problem" and "48004" in as_configured["summary"]
    assert f"BAICAI_BASE_URL to {emulator.base_url}" in as_configured["fix"]
    assert "/v1/v1/models" in recorded_paths(emulator, 4)
    assert report["config"]["raw_base_url"] == emulator.base_url + "/v1"


def test_missing_v1_is_repaired_and_explained(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.paid_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url.removesuffix("/v1"))
    code, report, _ = doctor(monkeypatch, capsys)
    by_name = checks(report)
    assert by_name["relay"]["status"] == "ok"
    assert "added /v1" in by_name["relay_as_configured"]["fix"]
    assert code == 1


def test_trailing_slash_is_only_a_warning(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.paid_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url + "/")
    code, report, _ = doctor(monkeypatch, capsys)
    assert code == 0
    assert checks(report)["base_url_fixed"]["status"] == "warn"
    assert "relay_as_configured" not in checks(report)


def test_sk_key_against_the_relay(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                  emulator: Any) -> None:
    sk = "sk-proj-abcdefghijklmnopqrstuvwxyz12"
    add_profile(sk, emulator.base_url)
    code, report, text = doctor(monkeypatch, capsys)
    assert code == 1
    by_name = checks(report)
    assert by_name["key_shape"]["status"] == "problem" and "baicai-" in by_name["key_shape"]["fix"]
    relay = by_name["relay"]
    assert relay["status"] == "problem" and "40001" in relay["summary"] and "sk-" in relay["fix"]
    assert sk not in text + json.dumps(report)


def test_relay_errors_sent_with_status_200_are_recognised(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    emulator.configure(error_style="errcode", error_status="200")
    add_profile(emulator.frozen_key, emulator.base_url)
    code, report, _ = doctor(monkeypatch, capsys)
    relay = checks(report)["relay"]
    assert code == 1 and relay["status"] == "problem" and "40243" in relay["summary"]
    assert "support" in relay["fix"]


def test_key_changed_but_base_url_still_openais(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "baicai-paid-0123456789abcdef")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    code, report, _ = doctor(monkeypatch, capsys, "--offline")
    warning = checks(report)["openai_base_url"]
    assert warning["status"] == "warn" and "OpenAI" in warning["fix"] and "api.baicaigpt.com" in warning["fix"]
    assert code == 0  # baicai itself is fine; other tools are warned about

    monkeypatch.setenv("BAICAI_BASE_URL", "https://api.openai.com/v1")
    code, report, _ = doctor(monkeypatch, capsys, "--offline")
    assert code == 1
    assert checks(report)["base_url_openai"]["status"] == "problem"


def test_proxy_settings_are_shown_without_passwords_and_no_proxy_is_honoured(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:s3cretpw@10.255.255.1:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://alice:s3cretpw@10.255.255.1:3128")
    monkeypatch.setenv("BAICAI_API_KEY", emulator.free_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    code, report, text = doctor(monkeypatch, capsys)
    proxy = checks(report)["proxy"]
    assert "alice:***@10.255.255.1:3128" in proxy["summary"]
    assert "s3cretpw" not in text + json.dumps(report)
    assert "NO_PROXY" in proxy["summary"] and "direct" in proxy["summary"]
    assert code == 0 and checks(report)["relay"]["status"] == "ok"


def test_proxy_in_the_way_is_reported(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      emulator: Any) -> None:
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("BAICAI_API_KEY", emulator.free_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    code, report, _ = doctor(monkeypatch, capsys)
    relay = checks(report)["relay"]
    assert code == 1 and relay["status"] == "problem"
    assert "HTTP_PROXY" in relay["fix"] and "NO_PROXY" in relay["fix"]


def test_damaged_profiles_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               baicai_home: Path) -> None:
    path = baicai_home / "config" / "profiles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{broken")
    code, report, _ = doctor(monkeypatch, capsys, "--offline")
    assert code == 1
    assert checks(report)["profiles"]["status"] == "problem"
    assert str(path) in checks(report)["profiles"]["fix"]
    assert path.read_text() == "{broken"


def test_no_keyring_backend_with_keyring_profiles(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], baicai_home: Path,
                                                  no_keyring: None) -> None:
    config = baicai_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "profiles.json").write_text(json.dumps({"version": 1, "active": "main", "profiles": {
        "main": {"tier": "free", "base_url": None, "masked": "baicai-…abcd", "fingerprint": "0" * 16,
                 "store": "keyring"}}}))
    code, report, _ = doctor(monkeypatch, capsys, "--offline")
    assert code == 1
    keyring_check = checks(report)["keyring"]
    assert keyring_check["status"] == "problem" and "BAICAI_SECRET_STORE=file" in keyring_check["fix"]
    assert checks(report)["key"]["status"] == "problem"
    # In words, as `key add` says it: keyring's class name means nothing to a user.
    _, _, out = doctor(monkeypatch, capsys, "--offline")
    assert "no OS keyring on this machine" in out and "本机没有可用的系统密钥环" in out
    assert "keyring.backends" not in out and "fail.Keyring" not in out and "keyring.backends" not in keyring_check["summary"]


def test_a_working_keyring_is_named_in_words(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             baicai_home: Path, fake_keyring: Any) -> None:
    _, report, out = doctor(monkeypatch, capsys, "--offline")
    assert checks(report)["keyring"]["status"] == "ok" and "keys are kept in the OS keyring (" in out
    assert "keyring.backends" not in out


def test_places_and_ledger_are_listed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      baicai_home: Path) -> None:
    _, report, _ = doctor(monkeypatch, capsys, "--offline")
    cfg = report["config"]
    assert cfg["config_dir"] == str(baicai_home / "config")
    assert cfg["data_dir"] == str(baicai_home / "data")
    assert cfg["ledger"] == str(baicai_home / "data" / "ledger.sqlite3") and cfg["ledger_exists"] is False


@pytest.mark.slow  # runs `baicai doctor` in a subprocess
def test_as_a_real_command(baicai_home: Path, emulator: Any) -> None:
    env = {**os.environ, "BAICAI_API_KEY": emulator.free_key, "BAICAI_BASE_URL": emulator.base_url}
    done = subprocess.run([sys.executable, "-m", "baicai_sdk.cli", "doctor", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["config"]["key_source"] == "BAICAI_API_KEY"
    assert emulator.free_key not in done.stdout + done.stderr


def test_named_profile(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    add_profile(emulator.free_key, emulator.base_url)
    KeyStore().add("frozen", emulator.frozen_key, base_url=emulator.base_url)
    code, report, _ = doctor(monkeypatch, capsys, "--profile", "frozen")
    assert code == 1 and report["config"]["key_source"] == "profile:frozen"
    assert "40243" in checks(report)["relay"]["summary"]
    code, report, _ = doctor(monkeypatch, capsys, "--profile", "nope", "--offline")
    assert code == 1 and "nope" in checks(report)["key"]["fix"]


def test_doctor_routes_by_the_transports_own_proxy_rules(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """What doctor says is what the transport does (``env_proxy_for``): an HTTP_PROXY does not carry https traffic,
    NO_PROXY's suffix rule bypasses, and otherwise HTTPS_PROXY is used."""
    from baicai_sdk._transport import env_proxy_for

    monkeypatch.setenv("BAICAI_API_KEY", "baicai-" + "d" * 32)
    monkeypatch.setenv("BAICAI_BASE_URL", "https://api.baicaigpt.com/v1")
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    _, report, _ = doctor(monkeypatch, capsys, "--offline")
    assert env_proxy_for("https://api.baicaigpt.com/v1") is None
    assert "direct (no proxy variable applies to https)" in checks(report)["proxy"]["summary"]

    monkeypatch.setenv("HTTPS_PROXY", "http://bob:pw123456@10.255.255.2:3128")
    _, report, text = doctor(monkeypatch, capsys, "--offline")
    assert "via the proxy http://bob:***@10.255.255.2:3128" in checks(report)["proxy"]["summary"]
    assert "pw123456" not in text

    monkeypatch.setenv("NO_PROXY", "localhost,.baicaigpt.com")
    _, report, _ = doctor(monkeypatch, capsys, "--offline")
    assert env_proxy_for("https://api.baicaigpt.com/v1") is None
    assert "direct (NO_PROXY)" in checks(report)["proxy"]["summary"]


def test_a_proxy_variable_httpx2_cannot_use_is_a_problem_line_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.free_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "ftp://carol:pw7654321@10.255.255.3:21")
    code, report, text = doctor(monkeypatch, capsys)
    relay = checks(report)["relay"]
    assert relay["status"] == "problem" and "the proxy setting cannot be used" in relay["summary"]
    assert "http://" in relay["fix"] and "pw7654321" not in text + json.dumps(report)
    assert code != 0
