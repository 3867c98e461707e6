"""Layers import one way only: baicai_sdk <- baicai_sidecar <- baicai_tui.

Checked twice: statically (no module of a lower layer names a higher one, or a UI framework it must not
load) and at run time (importing a package in a fresh interpreter loads none of the forbidden modules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"baicai_sdk": ROOT / "baicai_sdk", "baicai_sidecar": ROOT / "baicai_sidecar", "baicai_tui": ROOT / "tui"}
FORBIDDEN = {
    "baicai_sdk": {"baicai_sidecar", "baicai_tui", "starlette", "textual", "uvicorn"},
    "baicai_sidecar": {"baicai_tui", "textual"},
    "baicai_tui": set(),
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FOLDERS))
def test_no_module_imports_upward(package: str) -> None:
    offenders = []
    for path in sorted(FOLDERS[package].rglob("*.py")):
        # The emulator (baicai_sdk.testing) and _serving run servers: they may use uvicorn (lazily), nothing above.
        forbidden = FORBIDDEN[package]
        if package == "baicai_sdk" and ("testing" in path.relative_to(FOLDERS[package]).parts or path.name == "_serving.py"):
            forbidden = forbidden - {"uvicorn"}
        bad = _imported_roots(path) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


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
