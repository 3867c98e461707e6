"""py.typed is a promise: a user's code that uses the SDK passes `mypy --strict`.

(mypy on the project itself — baicai_sdk, baicai_sidecar, tui — is its own step in .ci/run, and `.venv/bin/mypy`
locally: inside pytest it cost 90 s cold on every run.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


USER_FILE = """\
from baicai_sdk import Baicai, QuotaExceeded

def ask(client: Baicai) -> str | None:
    try:
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).id
    except QuotaExceeded:
        return None
"""


@pytest.mark.slow
@pytest.mark.timeout(300)  # a cold mypy run on a busy machine
def test_a_user_file_importing_the_sdk_passes_mypy_strict(tmp_path: Path) -> None:
    """What a user's project sees: the names in ``__all__`` are exported (a computed ``__all__`` made mypy say
    'Module "baicai_sdk" does not explicitly export attribute "QuotaExceeded"')."""
    (tmp_path / "user.py").write_text(USER_FILE, "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "user.py"],
        # MYPYPATH: the editable install is an import hook mypy cannot follow; an installed wheel is found as-is
        cwd=tmp_path, env={**os.environ, "MYPYPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
