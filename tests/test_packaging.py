"""pyproject lists packages by hand (``tui/`` installs as ``baicai_tui``): every package folder must be in it."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import baicai_sdk

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"])
    found = set()
    for top, folder in {"baicai_sdk": "baicai_sdk", "baicai_sidecar": "baicai_sidecar", "baicai_tui": "tui"}.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((top, *rel)))
    assert found == listed, f"missing from pyproject: {sorted(found - listed)}; listed but absent: {sorted(listed - found)}"


def test_the_version_is_written_once() -> None:
    """pyproject reads the version from ``baicai_sdk.__version__``; the installed metadata agrees with it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "baicai_sdk.__version__"}
    assert version("baicai") == baicai_sdk.__version__


def test_ruff_check_passes() -> None:
    """`ruff check .` (rules in pyproject) — it takes well under a second, so the test run catches it too, not only
    .ci/run. (mypy, 20 s to 2 min, runs as its own .ci/run step and as `.venv/bin/mypy` locally.)"""
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    assert ruff.exists(), "ruff is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
