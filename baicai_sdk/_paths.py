"""Where baicai keeps its files.

One function per place so that every part (SDK, sidecar, TUI) agrees. ``BAICAI_HOME`` moves everything
(config and data) under one folder: tests use it, and so do portable installs.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "data_dir", "ledger_path", "home_override"]

_APP = "baicai"


def home_override() -> Path | None:
    """The folder named by ``BAICAI_HOME``, or None when unset."""
    value = os.environ.get("BAICAI_HOME", "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Profiles, sidecar tokens, user catalogue overrides. Created on first call."""
    home = home_override()
    if home is not None:
        path = home / "config"
    else:
        import platformdirs

        path = Path(platformdirs.user_config_dir(_APP, appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700 when we create it: other users need not see usage
    return path


def data_dir() -> Path:
    """The ledger, backups made by ``apply``, logs. Created on first call."""
    home = home_override()
    if home is not None:
        path = home / "data"
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(_APP, appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def ledger_path() -> Path:
    """The one SQLite ledger shared by every process on the machine."""
    return data_dir() / "ledger.sqlite3"
