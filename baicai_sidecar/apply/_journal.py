"""``apply`` as one transaction across files: an intent journal makes a kill at any instant recoverable.

An app's config is often a pair (codex: ``config.toml`` + ``auth.json``), and the undo record is a third file.
Each is written atomically, but a process killed between two renames would leave half a configuration and no
record to undo it. So ``apply`` goes through these steps, every one of them durable (fsync) before the next:

1. **copies**: each file's current bytes go to ``<data>/apply/journal/`` (0600; they may hold the user's keys);
2. **intent**: ``journal/intent.json`` names every target, its copy, the SHA-256 before and after, its mode, and
   the temp file it will be written through (names chosen in advance), plus the app's previous record;
3. **temps**: the new contents are written to those temp files (0600 while written, fsync'd, then their mode);
4. **renames**: each temp is renamed over its target — right after checking the target still holds the bytes
   the plan was made from (compare-and-swap: a concurrent writer's change is never overwritten);
5. **record**: the new undo record is written;
6. **done**: the intent is deleted, then the copies.

Whoever takes the apply lock next (``apply``, ``--undo``, the TUI) first calls ``recover()``: if an intent is
there, the transaction died somewhere in 1–6 and is rolled back — every target that holds the "after" bytes gets
its "before" bytes back (mode included), targets still "before" are left alone, the temp files are removed (they
may hold a key), and the previous record is put back. A target that holds neither was changed by someone else
after the crash: it is left alone, and its pre-apply copy is kept in ``backups/`` and named in the outcome.
Recovery is idempotent, so a kill during recovery is recovered by the next run.

``BAICAI_APPLY_CRASH_AT=N`` ends the process (``os._exit``, no cleanup, like a kill) at the N-th such step; the
tests use it to kill ``apply`` at every step of every file-writing adapter and check ``--undo`` afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baicai_sdk import integration as sdk_files
from baicai_sdk.integration import Text, tr

from ._model import ApplyError, FileOutcome

__all__ = ["CRASH_ENV", "Transaction", "pending", "recover", "step", "reset_steps"]

CRASH_ENV = "BAICAI_APPLY_CRASH_AT"
_VERSION = 1
_steps = 0


def reset_steps() -> None:
    global _steps
    _steps = 0


def step(what: str) -> None:
    """A point where a kill could land; with ``BAICAI_APPLY_CRASH_AT=N`` the N-th one ends the process here."""
    global _steps
    at = os.environ.get(CRASH_ENV, "").strip()
    if not at:
        return
    _steps += 1
    if _steps == int(at):
        os._exit(86)  # like SIGKILL: no finally blocks, no atexit


def durable_write(path: Path, data: bytes, *, mode: int | None = None, secret: bool = False) -> None:
    """``atomic_write`` with a crash point between the fsync'd temp file and the rename, and after the rename."""
    temp, target = sdk_files.write_temp(path, data, mode=mode, secret=secret)
    step(f"temp {target.name}")
    sdk_files.commit_temp(temp, target)
    step(f"renamed {target.name}")


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _root(apply_root: Path) -> Path:
    return apply_root / "journal"


def _intent(apply_root: Path) -> Path:
    return _root(apply_root) / "intent.json"


@dataclass
class _File:
    target: Path  # the real path (symlinks resolved)
    before: bytes | None
    after: bytes
    mode: int | None  # the final mode of the written file
    secret: bool
    temp: Path
    copy: Path | None


class Transaction:
    """The files one ``apply`` writes, and the record written after them (see the module docstring)."""

    def __init__(self, apply_root: Path, app: str, record_path: Path) -> None:
        self.apply_root = apply_root
        self.app = app
        self.record_path = record_path
        self.tag = secrets.token_hex(6)
        self.files: list[_File] = []
        self._prepared = False

    def add(self, path: Path, before: bytes | None, after: bytes, *, mode: int | None, secret: bool) -> None:
        target = sdk_files.real_path(path)
        self.files.append(_File(target, before, after, mode, secret, sdk_files.temp_path(target, self.tag), None))

    # -- 1 + 2: copies and the intent ------------------------------------------------------------------------
    def prepare(self) -> None:
        folder = _root(self.apply_root)
        folder.mkdir(parents=True, exist_ok=True)
        for n, f in enumerate(self.files):
            if f.before is not None:
                f.copy = folder / f"{self.tag}-{n}-{f.target.name}"
                durable_write(f.copy, f.before, secret=True)
        record_before = _read(self.record_path)
        record_copy = None
        if record_before is not None:
            record_copy = folder / f"{self.tag}-record.json"
            durable_write(record_copy, record_before, secret=True)
        intent = {
            "version": _VERSION,
            "app": self.app,
            "started_at": time.time(),
            "record": {"path": str(self.record_path), "copy": str(record_copy) if record_copy else None},
            "files": [
                {
                    "path": str(f.target),
                    "existed": f.before is not None,
                    "copy": str(f.copy) if f.copy else None,
                    "mode": _mode_of(f.target) if f.before is not None else None,
                    "before_sha256": _sha256(f.before),
                    "after_sha256": _sha256(f.after),
                    "temp": str(f.temp),
                }
                for f in self.files
            ],
        }
        durable_write(_intent(self.apply_root), json.dumps(intent, indent=2).encode("utf-8"), secret=True)
        self._prepared = True

    # -- 3 + 4: temps, then compare-and-swap renames ---------------------------------------------------------
    def write_files(self) -> None:
        for f in self.files:
            sdk_files.write_temp(f.target, f.after, mode=f.mode, secret=f.secret, tag=self.tag)
            step(f"temp {f.target.name}")
        for f in self.files:
            if _sha256(_read(f.target)) != _sha256(f.before):
                raise ApplyError(
                    Text(f"{f.target} 在 baicai 写入时被另一个程序修改了；已撤回本次所有改动，请关闭该程序后重试。",
                         f"{f.target} was changed by another program while baicai was writing it; every change of this apply was rolled back — close that program and try again.")
                )
            step(f"checked {f.target.name}")
            os.replace(f.temp, f.target)
            step(f"renamed {f.target.name}")
            sdk_files.fsync_dir(f.target.parent)
            step(f"synced {f.target.parent.name}")

    # -- 6: done ---------------------------------------------------------------------------------------------
    def finish(self) -> None:
        _intent(self.apply_root).unlink()
        sdk_files.fsync_dir(_root(self.apply_root))
        step("intent removed")
        _clear(self.apply_root)

    def rollback(self) -> list[FileOutcome]:
        """Undo a failed transaction in this process (an exception, not a kill): the same path as ``recover``."""
        if not self._prepared:
            for f in self.files:
                f.temp.unlink(missing_ok=True)
            _clear(self.apply_root)
            return []
        return recover(self.apply_root)


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


def _clear(apply_root: Path) -> None:
    """Remove the journal's copies and any temp file our own writers left under the data dir (a kill mid-write)."""
    folder = _root(apply_root)
    if folder.exists():
        for leftover in folder.iterdir():
            if leftover.name != "intent.json":
                leftover.unlink(missing_ok=True)
    for leftover in apply_root.rglob(f"*{sdk_files.TEMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def pending(apply_root: Path) -> bool:
    """Is there an interrupted transaction that the next ``recover`` would roll back? (reads only)"""
    return _intent(apply_root).exists()


def recover(apply_root: Path) -> list[FileOutcome]:
    """Roll back a transaction a kill interrupted (call under the apply lock). ``[]`` when there was none."""
    intent_path = _intent(apply_root)
    try:
        raw: Any = json.loads(intent_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        _clear(apply_root)  # a kill before the intent was written: only copies and temps of ours to remove
        return []
    except ValueError as exc:
        raise ApplyError(
            Text(f"上次中断的 apply 的日志 {intent_path} 已损坏，无法自动恢复；原文件副本在 {_root(apply_root)}。",
                 f"the journal {intent_path} of an interrupted apply is damaged and cannot be replayed; copies of the original files are in {_root(apply_root)}.")
        ) from exc
    outcomes: list[FileOutcome] = []
    for entry in reversed(raw.get("files", [])):
        target = Path(entry["path"])
        Path(entry["temp"]).unlink(missing_ok=True)  # never leave a key in a temp file
        current = _sha256(_read(target))
        if current == entry["before_sha256"]:
            continue
        if current == entry["after_sha256"]:
            if entry["existed"]:
                data = Path(entry["copy"]).read_bytes()
                durable_write(target, data, mode=entry.get("mode"))
            else:
                target.unlink()
                sdk_files.fsync_dir(target.parent)
            outcomes.append(
                FileOutcome(
                    target,
                    "restored",
                    Text("中断的 apply 已撤回，已逐字节恢复", "an interrupted apply was rolled back: restored byte for byte"),
                )
            )
            continue
        kept = _keep_copy(apply_root, raw.get("app", "unknown"), entry)
        outcomes.append(
            FileOutcome(
                target,
                "error",
                Text(f"中断的 apply 之后该文件又被改动，已保留现状；原文件副本：{kept}",
                     f"the file changed after an interrupted apply and was left as it is; the pre-apply copy is {kept}"),
            )
        )
    record = raw.get("record") or {}
    if record.get("path"):
        record_path = Path(record["path"])
        if record.get("copy"):
            durable_write(record_path, Path(record["copy"]).read_bytes(), secret=True)
        else:
            record_path.unlink(missing_ok=True)
    intent_path.unlink()
    sdk_files.fsync_dir(intent_path.parent)
    _clear(apply_root)
    return outcomes


def _keep_copy(apply_root: Path, app: str, entry: dict[str, Any]) -> str:
    if not entry.get("copy"):
        return tr("（原本不存在）", "(did not exist)")
    folder = apply_root / "backups" / app
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-interrupted-{Path(entry['path']).name}"
    shutil.copy2(entry["copy"], kept)
    os.chmod(kept, 0o600)
    return str(kept)
