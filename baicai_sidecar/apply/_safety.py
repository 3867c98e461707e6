"""The one safety mechanism every file adapter goes through.

read → let the adapter change only its own entry → unified diff (``--dry-run`` stops here) → back up the original
once (timestamped, under ``<data dir>/apply/backups``) → write every file and the record as one transaction
(``_journal``) → ``undo`` puts the original back byte for byte when nobody touched the file since, and otherwise
asks the adapter to take out only its entry. Adapters never open files themselves, so none of them can skip a step.

Around each editor (``_edited``) a file's BOM and CRLF endings are taken off and put back, and a surprise from a
parser becomes ``UnparseableFile``. Read-only targets are refused unless forced; an ``OSError`` while writing is an
``ApplyError`` after everything was put back. Atomic writes, locks and temp-file names come from the SDK's one file
helper (``baicai_sdk.integration``: temp 0600 + fsync + rename + folder fsync); symlinked dotfiles are written
through the link, so the link survives. One apply/undo runs at a time on the machine (a cross-process lock).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baicai_sdk import integration as sdk_files
from baicai_sdk.integration import Text

from . import _journal
from ._edit import FileTooLarge, TextShape
from ._model import (
    ApplyError,
    FileChange,
    FileEdit,
    FileOutcome,
    Plan,
    Record,
    UndoResult,
    UnparseableFile,
)

__all__ = [
    "read_text",
    "make_change",
    "unified_diff",
    "atomic_write",
    "write_plan",
    "undo_record",
    "load_record",
    "apply_root",
]

_RECORD_VERSION = 1


def apply_root() -> Path:
    from baicai_sdk.integration import data_dir

    root = data_dir() / "apply"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _real(path: Path) -> Path:
    """The file a (possibly symlinked) path really names; a missing file resolves to itself."""
    return Path(os.path.realpath(path))


def read_bytes(path: Path) -> bytes | None:
    try:
        return _real(path).read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise UnparseableFile(path, Text("这是一个目录", "it is a directory")) from exc


def read_text(path: Path) -> str | None:
    """The file as text, None when absent. Not UTF-8 → unparseable (we never rewrite what we cannot read)."""
    return _decode(path, read_bytes(path))


def _decode(path: Path, data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnparseableFile(path, Text("不是 UTF-8 文本", "not UTF-8 text")) from exc


def unified_diff(path: Path, old: str | None, new: str | None, mask: Callable[[str], str]) -> str:
    """The diff a person reads: ``old``/``new`` None means the file does not exist (before) or is deleted (after).

    Secret values in it are masked (``_mask.mask_secrets``: other providers' keys the user already had, too), then
    ``mask`` (the plan's own key) runs on the whole text.
    """
    from ._mask import mask_secrets

    old_lines = (old or "").splitlines(keepends=True)
    new_lines = (new or "").splitlines(keepends=True)
    label = str(path)
    lines = difflib.unified_diff(
        old_lines,
        new_lines,
        fromfile=label if old is not None else "/dev/null",
        tofile=label if new is not None else "/dev/null",
    )
    out = []
    for n, line in enumerate(lines):
        if n >= 2 and not line.startswith("@@"):  # the two header lines are paths, not content
            line = mask_secrets(line)
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return mask("".join(out))


def _norm(line: str) -> str:
    return line.strip().rstrip(",").strip()


def line_prints(old: str | None, new: str) -> list[str]:
    """Fingerprints (SHA-256, never the text: a line may hold a key) of the lines our edit added."""
    before = {_norm(line) for line in (old or "").splitlines()}
    added = {_norm(line) for line in new.splitlines()} - before
    return sorted(hashlib.sha256(line.encode("utf-8")).hexdigest() for line in added if line)


def _ours_checker(prints: list[str] | None) -> Callable[[str], bool]:
    if prints is None:  # a record from before fingerprints: trust it is ours
        return lambda text: True
    known = set(prints)

    def ours(text: str) -> bool:
        lines = [_norm(line) for line in text.splitlines() if _norm(line)]
        return bool(lines) and all(hashlib.sha256(line.encode("utf-8")).hexdigest() in known for line in lines)

    return ours


_ANY_FILE_LIMIT = 32_000_000
"""No app config comes near this; reading a larger file into memory to look for our entry is not worth it."""


def _edited(path: Path, text: str | None, edit: Callable[[str | None], str]) -> str:
    """``edit`` run on ``text`` without its BOM and CRLF endings, which are put back on the result.

    An editor that fails in a way it did not foresee (a layout no adapter was written for) is a refusal, never a
    traceback: the file is left untouched and the message names it.
    """
    shape = TextShape(text)
    try:
        return shape.restore(edit(shape.strip(text)))
    except (ApplyError, ImportError):
        raise  # a missing extra (tomlkit, ruamel.yaml) is named by the CLI with the install command, not blamed on the file
    except Exception as exc:  # noqa: BLE001 - any surprise from a third-party parser: refuse, write nothing
        raise UnparseableFile(
            path, Text(f"baicai 无法安全地编辑这种写法（{type(exc).__name__}）",
                       f"a layout baicai cannot edit safely ({type(exc).__name__})")
        ) from exc


def make_change(edit: FileEdit, mask: Callable[[str], str]) -> FileChange:
    """Run the adapter's ``add`` on the current text; nothing is written here."""
    try:
        size = _real(edit.path).stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        size = 0
    if size > _ANY_FILE_LIMIT:
        raise FileTooLarge(edit.path, size, _ANY_FILE_LIMIT, "config")
    old = read_text(edit.path)
    new = _edited(edit.path, old, edit.add)
    diff = unified_diff(edit.path, old, new, mask) if new != old else ""
    return FileChange(edit.path, edit.part, old, new, diff, edit.secret)


# -- atomic write ------------------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, secret: bool = False) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file (the SDK's ``atomic_write``).

    ``mode``: the permission bits to give the file (the original's, by default); ``secret`` caps them at 0600.
    """
    sdk_files.atomic_write(path, data, mode=mode, secret=secret)


def _encode(text: str) -> bytes:
    return text.encode("utf-8")


# -- records -----------------------------------------------------------------------------------------------------


def _record_path(app: str, *, create: bool = True) -> Path:
    folder = apply_root() / "records"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{app}.json"


def load_record(app: str) -> dict[str, Any] | None:
    path = _record_path(app, create=False)  # reading makes no folder: ``--undo --dry-run`` changes nothing
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ApplyError(
            Text(f"记录文件损坏：{path}；无法自动撤销，可从 {apply_root() / 'backups'} 手动恢复。",
                 f"the record {path} is damaged; undo cannot run — restore by hand from {apply_root() / 'backups'}.")
        ) from exc
    return raw if isinstance(raw, dict) else None


def _save_record(app: str, record: dict[str, Any]) -> None:
    _journal.durable_write(
        _record_path(app), _encode(json.dumps(record, indent=2, ensure_ascii=False) + "\n"), secret=True
    )


def _backup(app: str, path: Path, data: bytes) -> Path:
    """Keep the pre-baicai original, 0600 (it may hold the user's other keys)."""
    folder = apply_root() / "backups" / app
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = folder / f"{stamp}-{path.name}"
    n = 1
    while backup.exists():
        n += 1
        backup = folder / f"{stamp}-{n}-{path.name}"
    _journal.durable_write(backup, data, secret=True)
    return backup


_LOCK_TIMEOUT = 30.0


def _locked() -> contextlib.AbstractContextManager[None]:
    """One apply/undo at a time on this machine (the CLI and the TUI may run together), on every OS."""
    return sdk_files.file_lock(apply_root() / "apply", timeout=_LOCK_TIMEOUT, error=ApplyError)


def recover_interrupted() -> list[FileOutcome]:
    """Roll back an apply a kill interrupted (see ``_journal``); what was restored, ``[]`` when nothing was."""
    with _locked():
        return _journal.recover(apply_root())


def write_plan(plan: Plan, *, force: bool = False) -> Record:
    """``force``: also write files that are read-only (they keep their read-only mode)."""
    with _locked():
        return _write_plan(plan, force)


def _refuse_read_only(path: Path) -> None:
    target = _real(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o222 and os.access(target, os.W_OK):
        return
    raise ApplyError(
        Text(f"{path} 是只读文件（权限 {mode:04o}），未写入任何文件；确认要改写请加 --force（改写后仍保持只读）。",
             f"{path} is read-only (mode {mode:04o}); nothing was written — add --force to write it anyway (it stays read-only).")
    )


def _write_plan(plan: Plan, force: bool = False) -> Record:
    """Carry out ``plan``: back up, write every changed file, record it — one transaction (``_journal``).

    An apply a kill interrupted earlier is rolled back first. The files are re-read: if one changed since the
    plan was made, nothing is written (the diff the user saw would be a lie). Any failure part-way (a full disk,
    a concurrent writer caught by the compare-and-swap) puts every file and the record back as they were.
    """
    _journal.reset_steps()
    recovered = _journal.recover(apply_root())
    record = Record(plan.app, plan.target.kind, str(plan.target.label))
    record.outcomes.extend(recovered)
    before: dict[Path, bytes | None] = {}
    for change in plan.changes:
        for stale in sdk_files.stale_temps(change.path):  # a killed undo's temp file (it may hold a key)
            stale.unlink(missing_ok=True)
        data = read_bytes(change.path)
        if _decode(change.path, data) != change.old:
            raise ApplyError(
                Text(f"{change.path} 在预览之后被修改，未写入任何文件；请重新运行。",
                     f"{change.path} changed after the preview; nothing was written — run the command again.")
            )
        before[change.path] = data
    if not plan.changed:
        record.outcomes += [FileOutcome(c.path, "unchanged", Text("已是目标配置", "already configured")) for c in plan.changes]
        return record

    if not force:
        for change in plan.changes:
            if change.changed:
                _refuse_read_only(change.path)
    previous = load_record(plan.app) or {}
    known = {entry["path"]: entry for entry in previous.get("files", []) if isinstance(entry, dict)}
    entries: list[dict[str, Any]] = []
    tx = _journal.Transaction(apply_root(), plan.app, _record_path(plan.app))
    try:  # backups too: a full disk is a clear refusal with everything put back, never a traceback
        for change in plan.changes:
            key = str(change.path)
            entry = dict(known.get(key) or {})
            old_bytes = before[change.path]
            if not entry:  # first time we touch this file: back up the true original, once
                entry = {
                    "path": key,
                    "part": change.part,
                    "existed": old_bytes is not None,
                    "backup": str(_backup(plan.app, change.path, old_bytes)) if old_bytes is not None else None,
                    "mode": stat.S_IMODE(_real(change.path).stat().st_mode) if old_bytes is not None else None,
                    "created_dirs": [str(d) for d in _missing_folders(change.path)] if old_bytes is None else [],
                }
            entry["secret"] = change.secret
            if change.changed:
                new_bytes = _encode(change.new)
                tx.add(change.path, old_bytes, new_bytes, mode=None, secret=change.secret)
                entry["written_sha256"] = _sha256(new_bytes)
                entry["line_sha256"] = sorted(set(entry.get("line_sha256", [])) | set(line_prints(change.old, change.new)))
                record.outcomes.append(FileOutcome(change.path, "written"))
            else:
                entry.setdefault("written_sha256", _sha256(old_bytes))
                record.outcomes.append(FileOutcome(change.path, "unchanged"))
            entries.append(entry)
        # files recorded earlier but not in this plan stay recorded, so undo still covers them
        paths = {e["path"] for e in entries}
        entries.extend(e for p, e in known.items() if p not in paths)
        tx.prepare()
        tx.write_files()
        _save_record(
            plan.app,
            {
                "version": _RECORD_VERSION,
                "app": plan.app,
                "target_kind": plan.target.kind,
                "target_label": str(plan.target.label),
                "applied_at": time.time(),
                "files": entries,
            },
        )
    except OSError as exc:
        tx.rollback()
        where = f"{exc.filename}：" if exc.filename else ""
        raise ApplyError(
            f"写入失败：{where}{exc.strerror or exc}；本次所有改动已撤回，原文件未变。 / "
            f"writing failed: {exc.filename or ''} {exc.strerror or exc}; every change of this apply was rolled "
            "back and the files are as they were."
        ) from exc
    except BaseException:
        tx.rollback()
        raise
    tx.finish()
    return record


def _missing_folders(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet (the write will create them), deepest first."""
    missing = []
    for folder in path.parents:
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    return missing


def _remove_empty_folders(folders: list[str]) -> None:
    """Remove the folders apply created for a file undo just deleted, deepest first — only while each is empty:
    anything the app or the user put there since keeps its folder (and the folders above it)."""
    for folder in folders:
        try:
            Path(folder).rmdir()
        except OSError:  # not empty (or gone already): leave it and everything above it
            return


RemoverFor = Callable[[str, Path], "Callable[[str, str | None, Callable[[str], bool]], str] | None"]


def undo_record(app: str, remover_for: RemoverFor, *, dry_run: bool = False) -> UndoResult:
    with _locked():
        return _undo_record(app, remover_for, dry_run)


def _undo_record(app: str, remover_for: RemoverFor, dry_run: bool = False) -> UndoResult:
    """Undo what ``apply`` recorded for ``app``.

    An apply a kill interrupted is rolled back first (its outcomes come first). Then: byte-for-byte restore when
    the file is exactly what we wrote; otherwise ``remover_for(part, path)`` takes out only our entry, and the
    outcome says so. A file that cannot be parsed any more is left alone (outcome ``error``).

    ``dry_run``: the same decisions, each outcome with the diff it would make, and nothing touched — no file, no
    record, no journal recovery (an interrupted apply is only named), no temp file removed.
    """
    result = UndoResult(app, dry_run=dry_run)
    if dry_run:
        if _journal.pending(apply_root()):
            result.notes.append(
                Text("上次 apply 被中断：真正撤销时会先把它撤回。", "an earlier apply was interrupted: a real undo rolls it back first.")
            )
    else:
        result.outcomes.extend(_journal.recover(apply_root()))
    record = load_record(app)
    if record is None:
        if result.outcomes or result.notes:
            return result
        raise ApplyError(
            Text(f"没有 {app} 的应用记录，无需撤销。", f"nothing was applied for {app}; there is nothing to undo.")
        )
    failed = any(o.action == "error" for o in result.outcomes)
    if not dry_run:
        for entry in record.get("files", []):
            for stale in sdk_files.stale_temps(entry["path"]):  # a killed undo's temp file (it may hold a key)
                stale.unlink(missing_ok=True)

    def diff(path: Path, current: bytes, after: str | None) -> str:
        return unified_diff(path, current.decode("utf-8", "replace"), after, lambda text: text)

    for entry in reversed(record.get("files", [])):
        path = Path(entry["path"])
        original: bytes | None = None
        if entry.get("existed"):
            backup = entry.get("backup")
            try:
                original = Path(backup).read_bytes() if backup else None
            except FileNotFoundError:
                original = None
            if original is None:
                result.outcomes.append(
                    FileOutcome(path, "error", Text(f"备份缺失：{backup}", f"the backup is missing: {backup}"))
                )
                failed = True
                continue
        current = read_bytes(path)
        if current is not None and _sha256(current) == entry.get("written_sha256"):
            if original is None:
                if not dry_run:
                    _real(path).unlink()
                    _remove_empty_folders(entry.get("created_dirs") or [])
                result.outcomes.append(FileOutcome(path, "deleted", Text("由 baicai 创建", "created by baicai") if dry_run
                                                   else Text("由 baicai 创建，已删除", "created by baicai, removed"),
                                                   diff(path, current, None) if dry_run else ""))
            else:
                if not dry_run:
                    atomic_write(path, original, mode=entry.get("mode"))
                result.outcomes.append(FileOutcome(path, "restored",
                                                   Text("逐字节恢复为应用前的文件", "back to the file before apply, byte for byte")
                                                   if dry_run else Text("已逐字节恢复", "restored byte for byte"),
                                                   diff(path, current, original.decode("utf-8", "replace"))
                                                   if dry_run else ""))
            continue
        if current is None:
            result.outcomes.append(
                FileOutcome(path, "nothing-to-do", Text("文件已不存在，未做改动", "the file is gone; nothing to do"))
            )
            continue
        if current == original:
            result.outcomes.append(FileOutcome(path, "nothing-to-do", Text("已是原样", "already as it was")))
            continue
        remover = remover_for(entry.get("part", ""), path)
        try:
            if remover is None:
                raise ApplyError(Text(f"未知的文件类型 {entry.get('part')}", f"unknown file part {entry.get('part')}"))
            current_text = current.decode("utf-8")
            raw_original = original.decode("utf-8") if original is not None else None
            original_text = TextShape(raw_original).strip(raw_original)
            ours = _ours_checker(entry.get("line_sha256"))
            new_text = _edited(path, current_text, lambda text: remover(text or "", original_text, ours))  # noqa: B023 - called before the loop moves on
        except (UnicodeDecodeError, ApplyError) as exc:
            result.outcomes.append(FileOutcome(path, "error", str(exc)))
            failed = True
            continue
        if new_text == current_text:
            result.outcomes.append(
                FileOutcome(path, "nothing-to-do", Text("文件中已没有 baicai 的条目", "no baicai entry left in the file"))
            )
            continue
        if not dry_run:
            atomic_write(path, _encode(new_text), secret=bool(entry.get("secret")))
        result.outcomes.append(
            FileOutcome(
                path,
                "entry-removed",
                Text("文件在应用后被改动过：只移除 baicai 的条目，其他改动保留",
                     "the file changed since apply: only the baicai entry goes, other edits stay")
                if dry_run else
                Text("文件在应用后被改动过：只移除了 baicai 的条目，其他改动保留",
                     "the file changed since apply: only the baicai entry was removed, other edits kept"),
                diff(path, current, new_text) if dry_run else "",
            )
        )
    if not failed and not dry_run:
        _record_path(app).unlink(missing_ok=True)
    return result


def stale_temp_files(folder: Path) -> Sequence[Path]:
    """Temp files a killed writer left behind next to its target (the target itself is always intact)."""
    return sorted(folder.glob(f".*{sdk_files.TEMP_SUFFIX}"))
