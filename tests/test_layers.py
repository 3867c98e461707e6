"""Layers import one way only: baicai_sdk <- baicai_sidecar <- baicai_tui.

Checked twice: statically by import-linter (the contracts in pyproject.toml; `lint-imports` also runs on its own in
.ci/run), and at run time (importing a package in a fresh interpreter loads none of the forbidden modules).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    """The static half: `lint-imports` with the contracts in pyproject.toml ([tool.importlinter]): the layers, no
    private SDK module imported from above, no server or UI framework in the SDK, no UI framework in the sidecar."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is a dev dependency: pip install -e '.[dev]' (or pip install import-linter)"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_private_module_contract_names_every_private_module() -> None:
    """import-linter's wildcards match whole names only, so the contract lists the SDK's `_` modules by name: a new
    private module must be added there, or the sidecar could import it unnoticed."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["importlinter"]["contracts"]
    (private,) = [c for c in contracts if c["type"] == "forbidden" and "baicai_sidecar" in c["source_modules"]
                  and any(m.startswith("baicai_sdk._") for m in c["forbidden_modules"])]
    found = set()
    for package in (ROOT / "baicai_sdk", ROOT / "baicai_sdk" / "testing"):
        dotted = ".".join(package.relative_to(ROOT).parts)
        for path in package.iterdir():
            is_module = path.suffix == ".py" or (path / "__init__.py").exists()
            if is_module and path.name.startswith("_") and path.stem != "__init__":
                found.add(f"{dotted}.{path.stem}")
    assert found == set(private["forbidden_modules"])


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("baicai_sdk", {"starlette", "textual", "uvicorn", "baicai_sidecar", "baicai_tui", "tiktoken", "sqlite3", "keyring"}),
        ("baicai_sdk.cli", {"starlette", "textual", "uvicorn", "baicai_tui"}),
        ("baicai_sidecar", {"textual", "baicai_tui"}),
    ],
)
def test_import_loads_nothing_forbidden(module: str, must_not_load: set[str]) -> None:
    code = (
        f"import sys, {module}\n"
        f"loaded = {{m.split('.')[0] for m in sys.modules}}\n"
        f"print(sorted(loaded & set({sorted(must_not_load)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import {module} loaded {out}"
