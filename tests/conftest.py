"""Test-wide isolation: every test gets its own BAICAI_HOME and never sees the developer's keys or env."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["baicai_sdk.testing.pytest_plugin", "pytester"]

# Some dev shells export PYTHONDONTWRITEBYTECODE=1: then every run compiles the project and pytest rewrites every
# test module again (~5 s of the quick run), and each child `baicai` process compiles what it imports (~0.1 s each).
# Compiled files go to the (git-ignored) __pycache__ folders; children still write none, but read these.
sys.dont_write_bytecode = False

_LEAKY_ENV = (
    "BAICAI_API_KEY",
    "BAICAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(scope="session")
def _baicai_homes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("baicai-homes")


@pytest.fixture(autouse=True)
def baicai_home(_baicai_homes: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty BAICAI_HOME for every test (kept with pytest's other temporary folders of the last runs).

    Not under ``tmp_path``: pytest numbers each ``tmp_path`` by listing every folder made so far in the run, which
    costs more with each test (~4 s over this suite); a test that needs ``tmp_path`` still asks for it.
    """
    home = Path(tempfile.mkdtemp(prefix="home-", dir=_baicai_homes))
    monkeypatch.setenv("BAICAI_HOME", str(home))
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    monkeypatch.setenv("BAICAI_LANG", "both")  # messages in both languages, whatever the developer's locale
    from baicai_sdk.integration import set_lang

    set_lang(None)  # and no language chosen in-process by an earlier test (the TUI's --lang, its language key)
    return home


# --- secret store (owned by the keys part): tests never touch the developer's OS keyring -----------------------


def in_memory_keyring():  # type: ignore[no-untyped-def]
    """A keyring backend holding secrets in a dict (``.secrets``), for tests of the keyring path."""
    import keyring.backend
    import keyring.errors

    class InMemoryKeyring(keyring.backend.KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.secrets: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.secrets.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.secrets[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if self.secrets.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError(username)

    return InMemoryKeyring()


@pytest.fixture(autouse=True)
def secret_store_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """New keys go to ``<BAICAI_HOME>/config/secrets.json`` (0600): the documented fallback, never the OS keyring."""
    monkeypatch.setenv("BAICAI_SECRET_STORE", "file")


@pytest.fixture
def fake_keyring(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An in-memory keyring installed as keyring's backend (and ``BAICAI_SECRET_STORE`` unset); restored after."""
    import keyring

    previous = keyring.get_keyring()
    backend = in_memory_keyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("BAICAI_SECRET_STORE", raising=False)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """keyring's ``fail`` backend, as on a headless machine (and ``BAICAI_SECRET_STORE`` unset); restored after."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.delenv("BAICAI_SECRET_STORE", raising=False)
    try:
        yield
    finally:
        keyring.set_keyring(previous)
