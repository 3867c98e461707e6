"""The local token store: issue / list / revoke / verify, across instances (the CLI and a running sidecar)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from baicai_sidecar._tokens import DEFAULT_APP, InvalidAppName, TokenStore, mask_token


def test_issue_is_idempotent_and_looks_like_an_openai_key(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    token = store.issue("lobechat")
    assert token.startswith("sk-baicai-") and len(token) == len("sk-baicai-") + 32
    assert token[len("sk-baicai-"):].isalnum()
    assert store.issue("lobechat") == token
    rotated = store.issue("lobechat", rotate=True)
    assert rotated != token
    assert store.verify(token) is None and store.verify(rotated) == "lobechat"


def test_verify_revoke_seen_by_another_instance(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    sidecar_view, cli_view = TokenStore(path), TokenStore(path)
    default = sidecar_view.default_token()
    chatbox = cli_view.issue("chatbox")
    assert sidecar_view.verify(chatbox) == "chatbox"
    assert sidecar_view.verify(default) == DEFAULT_APP
    assert cli_view.revoke("chatbox") is True
    assert cli_view.revoke("chatbox") is False
    assert sidecar_view.verify(chatbox) is None
    assert sidecar_view.verify(default) == DEFAULT_APP
    for bad in ("", None, "sk-baicai-", chatbox[:-1], default + "x"):
        assert sidecar_view.verify(bad) is None


def test_file_is_private_and_list_is_masked(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    token = store.issue("nextchat")
    assert stat.S_IMODE((tmp_path / "t.json").stat().st_mode) == 0o600
    [entry] = store.list()
    assert entry.app == "nextchat" and entry.masked == "sk-baicai-…" + token[-4:]
    assert token not in repr(entry) and token not in repr(store.list())
    assert mask_token(token) == entry.masked


def test_default_path_follows_baicai_home(baicai_home: Path) -> None:
    TokenStore().issue("x")
    assert (baicai_home / "config" / "sidecar-tokens.json").exists()


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 41, "名字"])
def test_app_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidAppName):
        TokenStore(tmp_path / "t.json").issue(name)


def test_a_token_file_damaged_while_the_sidecar_runs_is_said_to_the_app(sidecar, app_token: str, caplog) -> None:
    """Garbage written into sidecar-tokens.json under a running sidecar: the app used to get a plain-text
    "Internal Server Error" and the console a traceback. Now an OpenAI-shaped error that says what to do."""
    import httpx2

    TokenStore().path.write_text("garbage", encoding="utf-8")
    resp = httpx2.post(f"{sidecar.base_url}/chat/completions", headers={"Authorization": f"Bearer {app_token}"},
                       json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["code"] == "sidecar_token_file_damaged" and "sidecar-tokens.json" in error["message"]
    assert "Move it aside" in error["message"] and "移走" in error["message"]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(("lang", "shown", "not_shown"), [("en", "Move it aside", "移走"), ("zh", "移走", "Move it aside")])
def test_a_damaged_token_file_is_said_in_the_language_set(sidecar, app_token: str, caplog, monkeypatch,
                                                          lang: str, shown: str, not_shown: str) -> None:
    """One language set: the app reads the whole message in it (it was cut at " / ", so English was empty), and so
    does the person at the console."""
    import logging

    import httpx2

    monkeypatch.setenv("BAICAI_LANG", lang)
    TokenStore().path.write_text("garbage", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        resp = httpx2.post(f"{sidecar.base_url}/chat/completions", headers={"Authorization": f"Bearer {app_token}"},
                           json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]},
                           timeout=10)
    message = resp.json()["error"]["message"]
    assert resp.status_code == 500 and shown in message and not_shown not in message
    prefix = {"en": "refused POST", "zh": "已拒绝 POST"}[lang]
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]
    assert refused and "sidecar_token_file_damaged" in refused[-1] and shown in refused[-1]
    assert not_shown not in refused[-1]


def test_a_token_already_issued_is_read_without_the_cross_process_lock(tmp_path: Path) -> None:
    """`baicai sidecar` asks for the default token at every start: once it exists, the answer is read as ``get``
    reads it (the file is replaced whole), without importing filelock (1 MB of the sidecar's memory); a new or a
    rotated token is still made under the lock."""
    import json
    import subprocess
    import sys

    path = tmp_path / "sidecar-tokens.json"
    token = TokenStore(path).default_token()
    code = ("import json, sys; from baicai_sidecar._tokens import TokenStore; store = TokenStore(sys.argv[1]); "
            "same = store.default_token(); before = 'filelock' in sys.modules; new = store.issue('other'); "
            "print(json.dumps([same, before, 'filelock' in sys.modules, new]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    same, locked_for_existing, locked_for_new, new = json.loads(out)
    assert same == token and not locked_for_existing
    assert locked_for_new and new != token and TokenStore(path).get("other") == new
