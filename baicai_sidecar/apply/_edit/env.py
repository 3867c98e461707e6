"""``.env`` files: line level; other lines (comments, blank lines, ``export``, odd spacing) stay as they are."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from baicai_sdk.integration import Text

from .._model import UnparseableFile
from ._common import _always, check_size

ENV_LIMIT = 2_000_000
"""Line-level parsing handles about half a megabyte a second on a busy machine; no real .env comes near this."""

_ASSIGN = re.compile(r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<value>.*?)(?P<nl>\r?\n)?$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@+,-]*$")
ENV_MARKER = "# added by `baicai apply` (BaicaiGPT)"


@dataclass
class _EnvEntry:
    start: int  # first line index
    end: int  # one past the last line
    key: str | None
    value: str | None
    lead: str = ""


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _parse_env(text: str, path: Path) -> tuple[list[str], list[_EnvEntry]]:
    check_size(text, path, ENV_LIMIT, ".env")
    lines = text.splitlines(keepends=True)
    entries: list[_EnvEntry] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            entries.append(_EnvEntry(i, i + 1, None, None))
            i += 1
            continue
        match = _ASSIGN.match(line)
        if match is None:
            raise UnparseableFile(path, Text(f"第 {i + 1} 行不是 KEY=VALUE", f"line {i + 1} is not KEY=VALUE"))
        value = match["value"]
        end = i + 1
        quote = value[:1]
        if quote in ("'", '"') and not _closes(value, quote):
            # a multi-line quoted value (python-dotenv allows them): runs until the closing quote
            while end < len(lines) and not _closes_line(lines[end].rstrip("\r\n"), quote):
                end += 1
            if end >= len(lines):
                raise UnparseableFile(path, Text(f"第 {i + 1} 行的引号没有闭合", f"unclosed quote on line {i + 1}"))
            end += 1
            value = "".join(lines[i:end])[len(match["lead"]) + len(match["key"]) :].split("=", 1)[1].rstrip("\r\n")
        entries.append(_EnvEntry(i, end, match["key"], _unquote(value), match["lead"]))
        i = end
    return lines, entries


def _closes(value: str, quote: str) -> bool:
    body = value[1:]
    body = re.split(r"\s+#", body, maxsplit=1)[0].rstrip() if quote == "'" else body.rstrip()
    return len(body) >= 1 and body.endswith(quote) and not body.endswith("\\" + quote)


def _closes_line(line: str, quote: str) -> bool:
    stripped = line.rstrip()
    return stripped.endswith(quote) and not stripped.endswith("\\" + quote)


def _render_env(lead: str, key: str, value: str) -> str:
    if _SAFE_VALUE.match(value):
        return f"{lead}{key}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{lead}{key}="{escaped}"'


def env_values(text: str, path: Path) -> dict[str, str]:
    """The last value of every key (what dotenv loaders see)."""
    _, entries = _parse_env(text, path)
    return {e.key: e.value or "" for e in entries if e.key is not None}


def env_set(old: str | None, values: Mapping[str, str], path: Path) -> str:
    """Set ``values``: existing lines are changed in place (keeping ``export``), missing keys are appended."""
    text = old or ""
    lines, entries = _parse_env(text, path)
    nl = _newline(text)
    out = list(lines)
    done: set[str] = set()
    for entry in reversed(entries):
        if entry.key is None or entry.key not in values:
            continue
        wanted = values[entry.key]
        done.add(entry.key)
        if entry.value == wanted:
            continue
        ending = nl if lines[entry.end - 1].endswith(("\n", "\r")) else ""
        out[entry.start : entry.end] = [_render_env(entry.lead, entry.key, wanted) + ending]
    missing = [k for k in values if k not in done]
    if missing:
        if out and not out[-1].endswith("\n"):
            out[-1] += nl
        out.append(ENV_MARKER + nl)
        out.extend(_render_env("", k, values[k]) + nl for k in missing)
    return "".join(out)


def env_remove(
    current: str, original: str | None, keys: tuple[str, ...], path: Path, ours: Callable[[str], bool] = _always
) -> str:
    """Take our keys out again; a key the original file had gets its original line back.

    A line for one of our keys that we did not write (``ours`` says no: the user changed it after us) stays.
    """
    lines, entries = _parse_env(current, path)
    orig_lines: dict[str, str] = {}
    if original:
        olines, oentries = _parse_env(original, path)
        for e in oentries:
            if e.key in keys:
                orig_lines[e.key] = "".join(olines[e.start : e.end])
    out = list(lines)
    restored: set[str] = set()
    # walk forwards to decide, then edit from the end so indices stay valid
    decisions: list[tuple[_EnvEntry, str]] = []
    for entry in entries:
        if entry.key in keys:
            if not ours("".join(lines[entry.start : entry.end])):
                continue
            if entry.key in orig_lines and entry.key not in restored:
                restored.add(entry.key)
                decisions.append((entry, orig_lines[entry.key]))
            else:
                decisions.append((entry, ""))
        elif entry.key is None and "".join(lines[entry.start : entry.end]).strip() == ENV_MARKER:
            decisions.append((entry, ""))
    for entry, replacement in reversed(decisions):
        if replacement and not replacement.endswith("\n") and entry.end < len(lines):
            replacement += _newline(current)
        out[entry.start : entry.end] = [replacement] if replacement else []
    return "".join(out)
