"""Where the running sidecar listens: one small state file, so ``apply`` and the TUI never assume a port.

``baicai sidecar`` writes ``<data dir>/sidecar.json`` (port, host, pid, start time) once its socket is bound and
removes it when it stops; ``apply --target sidecar`` and the TUI read it (``current_port``). When no sidecar is
running — or the file names a process that is gone (a kill leaves the file behind) — they fall back to
:data:`DEFAULT_PORT`, the one place the default port is written. No starlette here: the readers stay light.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_PORT", "SidecarState", "state_path", "write_state", "clear_state", "read_state",
           "current_port", "current_url"]

DEFAULT_PORT = 8765
"""The port ``baicai sidecar`` listens on unless told otherwise."""


@dataclass(frozen=True)
class SidecarState:
    port: int
    host: str
    pid: int
    started: float


def state_path() -> Path:
    from baicai_sdk.integration import data_dir

    return data_dir() / "sidecar.json"


def write_state(port: int, host: str = "127.0.0.1") -> SidecarState:
    from baicai_sdk.integration import atomic_write

    state = SidecarState(port=port, host=host, pid=os.getpid(), started=time.time())
    atomic_write(state_path(), json.dumps(state.__dict__).encode("utf-8"))
    return state


def clear_state() -> None:
    """Remove the state file if it is this process's (a second sidecar's file is left alone)."""
    state = read_state(check_alive=False)
    if state is not None and state.pid == os.getpid():
        try:
            state_path().unlink()
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    if sys.platform.startswith("win"):
        return True  # os.kill(pid, 0) would terminate the process there: trust the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def read_state(*, check_alive: bool = True) -> SidecarState | None:
    """The running sidecar's state, or None (no file, a damaged one, or its process gone)."""
    try:
        data = json.loads(state_path().read_text("utf-8"))
        state = SidecarState(port=int(data["port"]), host=str(data.get("host") or "127.0.0.1"),
                             pid=int(data["pid"]), started=float(data.get("started") or 0.0))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not _alive(state.pid):
        return None
    return state


def current_port() -> int:
    """``BAICAI_SIDECAR_PORT`` > the running sidecar's port > :data:`DEFAULT_PORT`."""
    env = os.environ.get("BAICAI_SIDECAR_PORT", "").strip()
    if env.isdigit():
        return int(env)
    state = read_state()
    return state.port if state is not None else DEFAULT_PORT


def current_url() -> str:
    """The running sidecar's origin (no ``/v1``), as apps on this machine reach it."""
    state = read_state()
    env = os.environ.get("BAICAI_SIDECAR_PORT", "").strip()
    if state is not None and not env.isdigit():
        host = state.host if state.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{state.port}"
    return f"http://127.0.0.1:{current_port()}"
