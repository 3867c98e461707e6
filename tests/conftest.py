"""Test-wide isolation: every test gets its own BAICAI_HOME and never sees the developer's keys or env."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["baicai_sdk.testing.pytest_plugin"]

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


@pytest.fixture(autouse=True)
def baicai_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "baicai-home"
    home.mkdir()
    monkeypatch.setenv("BAICAI_HOME", str(home))
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    return home
