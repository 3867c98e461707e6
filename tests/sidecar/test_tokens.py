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
