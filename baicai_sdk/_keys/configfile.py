"""Reading and writing the JSON files in the config dir: locked, atomic, a damaged file reported, never replaced."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from .. import _files
from .._text import Text
from .errors import ConfigCorrupt, KeyStoreError

_CONFIG_VERSION = 1


def _locked(path: Path) -> contextlib.AbstractContextManager[None]:
    """A cross-process lock beside ``path`` so two processes editing profiles do not lose each other's change."""
    return _files.file_lock(path, error=KeyStoreError)


def _atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    Mode 0600 (``secret``): right for secrets, harmless for profiles (they hold nothing secret, but nobody else
    needs them either). Callers hold ``_locked(path)``, so temp files a killed writer left are removed here.
    """
    for stale in _files.stale_temps(path):
        stale.unlink(missing_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _files.atomic_write(path, text.encode("utf-8"), secret=True)


def _read_json(path: Path, what: Text) -> dict[str, Any] | None:
    """The file's JSON object, None when it does not exist, ``ConfigCorrupt`` when it is damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigCorrupt(
            Text(f"无法读取{what.zh} {path}：{exc.strerror}。请检查文件权限。",
                 f"cannot read the {what.en} {path}: {exc.strerror}. Check its permissions.")
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        data, reason = None, f"JSON: {exc}"
    else:
        reason = "" if isinstance(data, dict) else "not a JSON object"
    if not isinstance(data, dict):
        raise ConfigCorrupt(
            Text(f"{what.zh} {path} 已损坏（{reason}）。baicai 不会覆盖它：请修复该文件，或把它移走后重新运行 `baicai key add`。",
                 f"The {what.en} {path} is damaged ({reason}). baicai will not overwrite it: fix the file, or move it "
                 "aside and run `baicai key add` again.")
        )
    return data
