"""`pip install baicai` without extras: every command either works or names the extra it needs, in one line.

The environment is a real venv whose site-packages holds only the core requirements' closure (linked from the
test venv, so nothing is downloaded): uvicorn, tomlkit, ruamel, textual and rich are absent exactly as
they are after a base install, while `baicai`'s own entry points (sidecar, apply, tui) are still registered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow

_EXTRAS_ONLY = ("uvicorn", "tomlkit", "ruamel", "textual", "rich")


def _installed(name: str) -> metadata.Distribution:
    """The distribution as installed in this venv's site-packages — not a ``baicai.egg-info`` that an editable
    install leaves in the source tree, which pytest's rootdir on ``sys.path`` would find first (and whose file list
    names ``tui/``, not the ``baicai_tui`` mapping the editable finder provides)."""
    site = sysconfig.get_paths()["purelib"]
    for dist in metadata.distributions(name=name, path=[site]):
        return dist
    return metadata.distribution(name)


def _core_closure() -> set[str]:
    """Distribution names `baicai` needs with no extra selected, transitively."""
    seen: set[str] = set()
    todo = ["baicai"]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        for line in _installed(name).requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.fixture(scope="module")
def base_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base-install")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for name in _core_closure():
        dist = _installed(name)
        base = Path(str(dist.locate_file("")))
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source, target = base / top, site / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
    return python


def _baicai(python: Path, home: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAICAI_", "PYTHON"))}
    env.update(BAICAI_HOME=str(home), HOME=str(home), BAICAI_SECRET_STORE="file", NO_COLOR="1",
               BAICAI_BASE_URL="http://127.0.0.1:9/v1")
    if key is not None:
        env["BAICAI_API_KEY"] = key
    code = "import sys; from baicai_sdk.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([str(python), "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_base_install_really_lacks_the_extras(base_python: Path) -> None:
    probe = "import importlib.util as u; print([m for m in %r if u.find_spec(m)])" % (_EXTRAS_ONLY,)
    out = subprocess.run([str(base_python), "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("argv, extra", [
    (("demo", "--no-tui"), "sidecar"),
    (("demo",), "sidecar"),
    (("apply", "codex", "--target", "sidecar", "--dry-run"), "sidecar"),
    (("apply", "continue", "--dry-run"), "sidecar"),
    (("sidecar", "--port", "0"), "sidecar"),
    (("tui",), "tui"),
])
def test_a_command_that_needs_an_extra_says_which_in_one_line(base_python: Path, tmp_path: Path,
                                                              argv: tuple[str, ...], extra: str) -> None:
    result = _baicai(base_python, tmp_path, *argv, key="baicai-baseinstall000000000000000abcd")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f'pip install "baicai[{extra}]"' in lines[0] or f"pip install 'baicai[{extra}]'" in lines[0]
    assert re.search(r"[\u4e00-\u9fff]", lines[0]), "Chinese first, then English"


def test_the_core_commands_work_on_a_base_install(base_python: Path, tmp_path: Path) -> None:
    for argv in (("--help",), ("usage",), ("usage", "windows"), ("apply", "--list"), ("key", "list")):
        result = _baicai(base_python, tmp_path, *argv)
        assert result.returncode == 0, (argv, result.stderr)
        assert "Traceback" not in result.stderr
