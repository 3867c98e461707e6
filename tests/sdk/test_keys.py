"""Profiles, secret stores and credential resolution (issue 3)."""

from __future__ import annotations

import json
import os
import stat
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from baicai_sdk._keys import (
    BaicaiConfigWarning,
    ConfigCorrupt,
    Credentials,
    KeyStore,
    KeyStoreError,
    MissingKeyError,
    NoKeyringBackend,
    ProfileNotFound,
    key_fingerprint,
    key_warnings,
    keyring_status,
    mask_key,
    resolve_credentials,
)

FREE = "baicai-free-0123456789abcdefWXYZ"
PAID = "baicai-paid-9876543210fedcbaQRST"
OPENAI = "sk-proj-abcdefghijklmnopqrstuvwxyz12"


def _no_full_key(text: str, *keys: str) -> None:
    for key in keys or (FREE, PAID, OPENAI):
        assert key not in text


# ---------------------------------------------------------------------------------------- masking


def test_mask_key_shows_prefix_and_last_four() -> None:
    assert mask_key(FREE) == "baicai-…WXYZ"
    assert mask_key("sk-baicai-0123456789abcdef0123") == "sk-baicai-…0123"
    assert mask_key(OPENAI) == "sk-proj-…yz12"
    assert mask_key("  " + FREE + "\n") == "baicai-…WXYZ"


def test_mask_key_gives_away_less_of_short_secrets() -> None:
    assert mask_key("baicai-abc") == "baicai-…"
    assert mask_key("baicai-abcdefghij") == "baicai-…ij"
    assert mask_key("x") == "…"
    assert mask_key("") == "…"


def test_fingerprint_is_stable_short_and_not_the_key() -> None:
    fp = key_fingerprint(FREE)
    assert fp == key_fingerprint(FREE + "\n")
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp != key_fingerprint(PAID)
    assert FREE[-8:] not in fp


def test_key_warnings() -> None:
    assert key_warnings(FREE) == []
    (sk,) = map(str, key_warnings(OPENAI))  # as shown (BAICAI_LANG=both under the tests)
    assert sk.index("sk-") < sk.index(" / ") and "baicai-" in sk
    _no_full_key(sk)
    assert key_warnings("sk-baicai-0123456789abcdef", "http://127.0.0.1:8765/v1") == []
    assert key_warnings("sk-baicai-0123456789abcdef", "https://api.baicaigpt.com/v1")
    # loopback by address, not by spelling (one rule with the sidecar's --host check), and no DNS for a warning
    for local in ("http://[::1]:8765/v1", "http://127.8.9.10:1/v1", "http://localhost:8765/v1",
                  "http://app.localhost:8765/v1", "http://[::ffff:127.0.0.1]:8765/v1"):
        assert key_warnings("sk-baicai-0123456789abcdef", local) == [], local
    for remote in ("http://127.evil.example/v1", "http://localhost.evil.example/v1", "http://10.0.0.2:8765/v1",
                   "http://0.0.0.0:8765/v1", "sidecar:8765"):
        assert key_warnings("sk-baicai-0123456789abcdef", remote), remote
    (odd,) = map(str, key_warnings("weird-0123456789abcdef"))
    assert "baicai-" in odd


# ---------------------------------------------------------------------------------------- file store


def test_add_get_list_use_remove(baicai_home: Path) -> None:
    store = KeyStore()
    first = store.add("main", FREE, tier="free")
    assert first.active and first.masked == "baicai-…WXYZ" and first.store == "file"
    second = store.add("work", PAID, tier="paid", base_url="https://api.baicaigpt.com/v1/v1/")
    assert not second.active, "only the first profile becomes active on its own"
    assert second.base_url == "https://api.baicaigpt.com/v1"

    assert [p.name for p in store.list()] == ["main", "work"]
    assert store.get("work").secret() == PAID
    assert store.active() is not None and store.active().name == "main"  # type: ignore[union-attr]
    assert store.use("work").active
    assert store.active().secret() == PAID  # type: ignore[union-attr]

    store.remove("work")
    assert store.active() is None
    assert [p.name for p in store.list()] == ["main"]
    secrets = json.loads((baicai_home / "config" / "secrets.json").read_text())
    assert secrets["secrets"] == {"main": FREE}


def test_add_replaces_a_profile_and_keeps_files_free_of_secrets(baicai_home: Path) -> None:
    store = KeyStore()
    store.add("main", FREE)
    store.add("main", PAID, tier="paid")
    assert store.get("main").secret() == PAID
    profiles_text = (baicai_home / "config" / "profiles.json").read_text()
    _no_full_key(profiles_text)
    data = json.loads(profiles_text)
    assert data["active"] == "main"
    assert data["profiles"]["main"]["masked"] == mask_key(PAID)
    assert data["profiles"]["main"]["fingerprint"] == key_fingerprint(PAID)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_secrets_file_is_0600_and_refused_when_others_can_read(baicai_home: Path) -> None:
    store = KeyStore()
    store.add("main", FREE)
    path = baicai_home / "config" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(ConfigCorrupt, match="chmod 600") as info:
        store.get("main").secret()
    _no_full_key(str(info.value))


def test_set_tier(baicai_home: Path) -> None:
    store = KeyStore()
    store.add("main", FREE)
    assert store.get("main").tier == "unknown"
    assert store.set_tier("main", "paid").tier == "paid"
    assert store.get("main").tier == "paid"
    with pytest.raises(KeyStoreError, match="free, paid or unknown"):
        store.set_tier("main", "gold")


def test_errors_are_bilingual_and_name_what_exists(baicai_home: Path) -> None:
    store = KeyStore()
    store.add("main", FREE)
    with pytest.raises(ProfileNotFound) as info:
        store.get("nope")
    message = str(info.value)
    assert message.index("没有名为") < message.index("no profile named")
    assert "main" in message and "baicai key add nope" in message
    for bad in ("", "a b", "../x", "x" * 65):
        with pytest.raises(KeyStoreError):
            store.add(bad, FREE)


@pytest.mark.parametrize("bad_key", ["", "   ", "baicai-abc def", "baicai-密钥"])
def test_unusable_keys_are_refused_without_echoing_them(baicai_home: Path, bad_key: str) -> None:
    with pytest.raises(KeyStoreError) as info:
        KeyStore().add("main", bad_key)
    if bad_key.strip():
        assert bad_key not in str(info.value)


def test_corrupt_profiles_file_is_reported_and_never_overwritten(baicai_home: Path) -> None:
    path = baicai_home / "config" / "profiles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"profiles": {"main": ')
    store = KeyStore()
    for action in (store.list, store.active, lambda: store.add("x", FREE), lambda: store.use("main")):
        with pytest.raises(ConfigCorrupt) as info:
            action()
        message = str(info.value)
        assert str(path) in message and message.index("已损坏") < message.index("damaged")
    assert path.read_text() == '{"profiles": {"main": '
    assert not (baicai_home / "config" / "secrets.json").exists(), "no secret written when the config is damaged"


def test_wrong_shape_is_corrupt_too(baicai_home: Path) -> None:
    path = baicai_home / "config" / "profiles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('["not", "an", "object"]')
    with pytest.raises(ConfigCorrupt):
        KeyStore().list()
    path.write_text('{"profiles": []}')
    with pytest.raises(ConfigCorrupt):
        KeyStore().list()


def test_atomic_write_leaves_no_temp_files(baicai_home: Path) -> None:
    store = KeyStore()
    for i in range(5):
        store.add(f"k{i}", FREE)
    names = sorted(p.name for p in (baicai_home / "config").iterdir() if not p.name.endswith(".lock"))
    assert names == ["profiles.json", "secrets.json"]


def test_a_killed_write_leaves_the_old_file(baicai_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore()
    store.add("main", FREE)
    path = baicai_home / "config" / "profiles.json"
    before = path.read_text()

    def crash(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.set_tier("main", "paid")
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_repr_never_holds_the_key(baicai_home: Path) -> None:
    profile = KeyStore().add("main", FREE)
    _no_full_key(repr(profile))
    _no_full_key(repr(KeyStore()))
    creds = resolve_credentials(warn=False)
    _no_full_key(repr(creds))
    assert "baicai-…WXYZ" in repr(creds)


def test_missing_secret_says_how_to_fix(baicai_home: Path) -> None:
    store = KeyStore()
    store.add("main", FREE)
    (baicai_home / "config" / "secrets.json").write_text('{"secrets": {}}')
    with pytest.raises(KeyStoreError, match="baicai key add main"):
        store.get("main").secret()


def test_bad_secret_store_value() -> None:
    with pytest.raises(KeyStoreError, match="keyring or file"):
        KeyStore(secret_store="plaintext")


# ---------------------------------------------------------------------------------------- keyring backends


def test_keyring_path_with_an_in_memory_backend(baicai_home: Path, fake_keyring: Any) -> None:
    store = KeyStore()
    assert store.secret_store == "keyring"
    assert keyring_status()[0]
    profile = store.add("main", FREE, tier="free")
    assert profile.store == "keyring"
    assert fake_keyring.secrets == {("baicai", "main"): FREE}
    assert not (baicai_home / "config" / "secrets.json").exists()
    assert store.get("main").secret() == FREE
    assert "keyring" in store.backend_description
    store.remove("main")
    assert fake_keyring.secrets == {}


def test_profile_remembers_its_store(baicai_home: Path, fake_keyring: Any) -> None:
    store = KeyStore()
    store.add("kr", FREE)
    store.add("f", PAID, store="file")
    # Reading does not depend on where *new* secrets go.
    other = KeyStore(secret_store="file")
    assert other.get("kr").secret() == FREE
    assert other.get("f").secret() == PAID
    # Moving a profile to the other store removes the secret from the first.
    store.add("kr", FREE, store="file")
    assert ("baicai", "kr") not in fake_keyring.secrets


def test_no_keyring_backend_names_the_fallback(baicai_home: Path, no_keyring: None) -> None:
    store = KeyStore()
    assert keyring_status()[0] is False
    with pytest.raises(NoKeyringBackend) as info:
        store.add("main", FREE)
    message = str(info.value)
    assert message.index("没有可用的系统密钥环") < message.index("no usable OS keyring")
    assert "keyring.backends" not in message  # a class name means nothing to the person reading it
    assert "BAICAI_SECRET_STORE=file" in message and "--store file" in message
    assert str(baicai_home / "config" / "secrets.json") in message and "0600" in message
    _no_full_key(message)
    # Nothing was written anywhere: no silent plain-text fallback.
    assert not (baicai_home / "config" / "secrets.json").exists()
    assert store.list() == []
    with pytest.raises(NoKeyringBackend):
        store.ensure_usable()
    store.ensure_usable("file")  # the explicit fallback is fine
    # The Keys tab shows where keys go: in words, with the way out, never keyring's class name.
    where = store.backend_description
    assert "no OS keyring on this machine" in where and "没有可用的系统密钥环" in where
    assert str(baicai_home / "config" / "secrets.json") in where and "BAICAI_SECRET_STORE=file" in where
    assert "keyring.backends" not in where and "fail.Keyring" not in where
    assert "0600" in KeyStore(secret_store="file").backend_description


# ---------------------------------------------------------------------------------------- resolution


def _resolve(**kwargs: Any) -> Credentials:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return resolve_credentials(**kwargs)


def test_precedence_argument_env_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore()
    store.add("main", FREE, tier="free", base_url="http://127.0.0.1:9/v1")

    creds = _resolve()
    assert (creds.key, creds.key_source, creds.tier, creds.profile) == (FREE, "profile:main", "free", "main")
    assert (creds.base_url, creds.base_url_source) == ("http://127.0.0.1:9/v1", "profile:main")

    monkeypatch.setenv("BAICAI_API_KEY", PAID)
    monkeypatch.setenv("BAICAI_BASE_URL", "https://api.baicaigpt.com/v1")
    creds = _resolve()
    assert (creds.key, creds.key_source, creds.tier, creds.profile) == (PAID, "BAICAI_API_KEY", "unknown", None)
    assert (creds.base_url, creds.base_url_source) == ("https://api.baicaigpt.com/v1", "BAICAI_BASE_URL")

    creds = _resolve(api_key=FREE, base_url="http://127.0.0.1:7/v1")
    assert (creds.key_source, creds.base_url_source) == ("argument", "argument")
    assert creds.tier == "free" and creds.profile == "main", "tier found by fingerprint, no secret read"


def test_default_base_url_and_named_profile() -> None:
    store = KeyStore()
    store.add("main", FREE)
    store.add("work", PAID, tier="paid")
    creds = _resolve(profile="work")
    assert (creds.key, creds.key_source, creds.tier) == (PAID, "profile:work", "paid")
    assert (creds.base_url, creds.base_url_source) == ("https://api.baicaigpt.com/v1", "default")
    with pytest.raises(ProfileNotFound):
        resolve_credentials(profile="nope")


def test_env_key_does_not_read_any_secret(baicai_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    KeyStore().add("main", FREE)
    (baicai_home / "config" / "secrets.json").unlink()  # any secret read would now fail
    monkeypatch.setenv("BAICAI_API_KEY", PAID)
    assert _resolve().key == PAID
    assert _resolve(api_key=FREE).tier == "unknown"


def test_env_key_does_not_import_keyring(baicai_home: Path) -> None:
    import subprocess

    code = (
        "import sys; from baicai_sdk._keys import resolve_credentials; "
        "c = resolve_credentials(); assert c.key_source == 'BAICAI_API_KEY'; "
        "print('keyring' in sys.modules)"
    )
    env = {**os.environ, "BAICAI_API_KEY": FREE}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_key_names_the_three_places(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingKeyError) as info:
        resolve_credentials()
    message = str(info.value)
    assert message.index("找不到") < message.index("No BaicaiGPT API key")
    for place in ("api_key=", "BAICAI_API_KEY", "baicai key use", "baicai key add", "baicai demo"):
        assert place in message
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    with pytest.raises(MissingKeyError) as info:
        resolve_credentials()
    assert "OPENAI_API_KEY" in str(info.value)
    _no_full_key(str(info.value))


def test_blank_env_values_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", "  ")
    monkeypatch.setenv("BAICAI_BASE_URL", "")
    with pytest.raises(MissingKeyError):
        resolve_credentials()
    creds = _resolve(api_key=FREE)
    assert creds.base_url_source == "default"


def test_warnings_for_repaired_url_openai_base_and_sk_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAICAI_BASE_URL", "https://api.baicaigpt.com/v1/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    with pytest.warns(BaicaiConfigWarning) as record:
        creds = resolve_credentials(api_key=OPENAI)
    messages = [str(w.message) for w in record]
    assert creds.base_url == "https://api.baicaigpt.com/v1"
    assert creds.raw_base_url == "https://api.baicaigpt.com/v1/v1"
    assert [str(c) for c in creds.base_url_changes] == ["去掉重复的 /v1 / removed a repeated /v1"]
    assert [str(w) for w in creds.warnings] == messages and len(messages) == 3
    assert any("/v1" in m and "\n" not in m for m in messages)
    assert any("OPENAI_BASE_URL" in m for m in messages)
    assert any("sk-" in m for m in messages)
    for message in messages:
        _no_full_key(message)
        assert message.index(" / ") > 0


def test_openai_base_url_equal_to_ours_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.baicaigpt.com/v1/")
    assert _resolve(api_key=FREE).warnings == ()


def test_base_url_pointing_at_openai_warns() -> None:
    creds = resolve_credentials(api_key=FREE, base_url="https://api.openai.com/v1", warn=False)
    assert creds.base_url == "https://api.openai.com/v1"
    assert any("api.baicaigpt.com" in str(w) for w in creds.warnings)


def test_corrupt_config_does_not_block_an_explicit_key(baicai_home: Path) -> None:
    path = baicai_home / "config" / "profiles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{")
    assert _resolve(api_key=FREE).tier == "unknown"
    with pytest.raises(ConfigCorrupt):
        resolve_credentials()


def test_bad_base_url_is_a_clear_error() -> None:
    with pytest.raises(KeyStoreError, match="BAICAI_BASE_URL|argument"):
        resolve_credentials(api_key=FREE, base_url="ftp://x")


@pytest.mark.slow  # four processes
def test_concurrent_writers_lose_nothing(baicai_home: Path) -> None:
    """Four processes adding profiles at once: the lock around read-modify-write keeps every one of them."""
    import subprocess

    code = (
        "import sys; from baicai_sdk._keys import KeyStore; s = KeyStore(); w = sys.argv[1]\n"
        "for i in range(5): s.add(f'{w}-{i}', f'baicai-{w}-{i}-0123456789abcdef')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, f"w{n}"], env=dict(os.environ)) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    store = KeyStore()
    names = [p.name for p in store.list()]
    assert names == sorted(f"w{n}-{i}" for n in range(4) for i in range(5))
    assert all(store.get(n).secret() == f"baicai-{n.split('-')[0]}-{n.split('-')[1]}-0123456789abcdef" for n in names)
