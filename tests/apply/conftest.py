from __future__ import annotations

from pathlib import Path

import pytest

from baicai_sidecar.apply import Env, Target

KEY = "baicai-test0000000000000000key1234"


@pytest.fixture
def env(tmp_path: Path) -> Env:
    home = tmp_path / "home"
    project = tmp_path / "project"
    home.mkdir()
    project.mkdir()
    return Env(home=home, cwd=project, environ={}, platform="linux", which=lambda name: None)


@pytest.fixture
def target() -> Target:
    return Target("relay", "https://api.baicaigpt.com/v1", KEY, "relay (test)", "gpt-3.5-turbo")


@pytest.fixture
def sidecar_target() -> Target:
    return Target("sidecar", "http://127.0.0.1:8765/v1", "sk-baicai-" + "s" * 28 + "tok9", "sidecar (test)")
