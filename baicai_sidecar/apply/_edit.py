"""Text-level editors that change one entry and leave every other byte of a file alone.

Each editor turns "old text" into "new text" for a single entry (one key, one list item, one table) and can take
that entry out again. Parsers check the whole file first: anything they cannot read raises ``UnparseableFile``,
so a file we do not understand is never rewritten.

- ``.env`` files: line level; other lines (comments, blank lines, ``export``, odd spacing) stay as they are.
- JSON: the file is validated with ``json``, then edited by byte spans found with the stdlib decoder, so the
  rest of the file (key order, indentation, spacing) is untouched.
- YAML: ``ruamel.yaml`` round-trip (comments, quotes and the file's own indentation kept).
- TOML: ``tomlkit`` (style-preserving by design).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._model import UnparseableFile

__all__ = [
    "env_set",
    "env_remove",
    "env_values",
    "json_set_member",
    "json_remove_member",
    "json_upsert_item",
    "json_remove_item",
    "YamlDoc",
    "toml_load",
]

# -- .env ------------------------------------------------------------------------------------------------------

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
            raise UnparseableFile(path, f"第 {i + 1} 行不是 KEY=VALUE / line {i + 1} is not KEY=VALUE")
        value = match["value"]
        end = i + 1
        quote = value[:1]
        if quote in ("'", '"') and not _closes(value, quote):
            # a multi-line quoted value (python-dotenv allows them): runs until the closing quote
            while end < len(lines) and not _closes_line(lines[end].rstrip("\r\n"), quote):
                end += 1
            if end >= len(lines):
                raise UnparseableFile(path, f"第 {i + 1} 行的引号没有闭合 / unclosed quote on line {i + 1}")
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


def _always(line: str) -> bool:
    return True


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


# -- JSON (span editing) ---------------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass
class _Span:
    key: str | None
    start: int  # where the member starts (the key, or the value for arrays)
    value_start: int
    value_end: int
    value: Any


def _skip(text: str, i: int) -> int:
    m = _WS.match(text, i)
    return m.end() if m else i


def _scan(text: str, path: Path, kind: type) -> tuple[Any, int, int, list[_Span]]:
    """Validate ``text`` and find the top-level members: (data, open index, close index, spans)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UnparseableFile(path, f"不是有效的 JSON：{exc} / not valid JSON: {exc}") from exc
    if not isinstance(data, kind):
        want = "对象 / an object" if kind is dict else "数组 / an array"
        raise UnparseableFile(path, f"顶层应为{want}")
    i = _skip(text, 0)
    open_at = i
    i += 1
    spans: list[_Span] = []
    while True:
        i = _skip(text, i)
        if text[i] in "]}":
            return data, open_at, i, spans
        if text[i] == ",":
            i = _skip(text, i + 1)
        start = i
        key = None
        if kind is dict:
            key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
            i = _skip(text, i)
            i = _skip(text, i + 1)  # the colon
        value, end = _DECODER.raw_decode(text, i)
        spans.append(_Span(key, start, i, end, value))
        i = end


def _line_indent(text: str, at: int) -> str:
    line_start = text.rfind("\n", 0, at) + 1
    lead = text[line_start:at]
    return lead if lead.strip() == "" else ""


def _dump(value: Any, indent: str, unit: str | None) -> str:
    if unit is None:
        return json.dumps(value, ensure_ascii=False)
    body = json.dumps(value, ensure_ascii=False, indent=len(unit.expandtabs(4)) if unit != "\t" else "\t")
    return body.replace("\n", "\n" + indent)


def _layout(text: str, open_at: int, close_at: int, spans: list[_Span]) -> tuple[str | None, str, str]:
    """(indent unit or None for one-line files, member indent, newline)."""
    nl = "\r\n" if "\r\n" in text else "\n"
    if spans:
        between = text[open_at + 1 : spans[0].start]
        if "\n" not in between:
            return None, "", nl
        indent = _line_indent(text, spans[0].start)
        return indent or "  ", indent, nl
    if "\n" in text[open_at:close_at] or close_at - open_at <= 1:
        outer = _line_indent(text, open_at)
        return "  ", outer + "  ", nl
    return None, "", nl


def _insert(text: str, open_at: int, close_at: int, spans: list[_Span], member: str) -> str:
    unit, indent, nl = _layout(text, open_at, close_at, spans)
    if spans:
        last = spans[-1]
        sep = f",{nl}{indent}" if unit is not None else ", "
        return text[: last.value_end] + sep + member + text[last.value_end :]
    if unit is None:
        return text[: open_at + 1] + member + text[close_at:]
    outer = _line_indent(text, open_at)
    return text[: open_at + 1] + nl + indent + member + nl + outer + text[close_at:]


def _delete(text: str, open_at: int, close_at: int, spans: list[_Span], index: int) -> str:
    if len(spans) == 1:
        return text[: open_at + 1] + text[close_at:]
    if index > 0:
        return text[: spans[index - 1].value_end] + text[spans[index].value_end :]
    return text[: spans[0].start] + text[spans[1].start :]


def _new_document(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"


def json_set_member(old: str | None, key: str, value: Any, path: Path) -> str:
    """Set one top-level member of a JSON object; nothing else in the file moves."""
    if old is None or not old.strip():
        return _new_document({key: value})
    _, open_at, close_at, spans = _scan(old, path, dict)
    unit, indent, _ = _layout(old, open_at, close_at, spans)
    for span in spans:
        if span.key == key:
            if span.value == value:
                return old
            return old[: span.value_start] + _dump(value, indent, unit) + old[span.value_end :]
    member = json.dumps(key, ensure_ascii=False) + ": " + _dump(value, indent, unit)
    return _insert(old, open_at, close_at, spans, member)


def json_remove_member(
    current: str, original: str | None, key: str, path: Path, ours: Callable[[str], bool] = _always
) -> str:
    """Take our member out; if the original file had that key, its original value comes back.

    A member whose text we did not write (the user changed it after us) stays as it is.
    """
    _, open_at, close_at, spans = _scan(current, path, dict)
    for span in spans:
        if span.key == key and not ours(current[span.start : span.value_end]):
            return current
    if original:
        orig = json.loads(original) if original.strip() else {}
        if isinstance(orig, dict) and key in orig:
            return json_set_member(current, key, orig[key], path)
    for index, span in enumerate(spans):
        if span.key == key:
            return _delete(current, open_at, close_at, spans, index)
    return current


def json_upsert_item(old: str | None, item: Any, is_ours: Callable[[Any], bool], path: Path) -> str:
    """Put ``item`` in a top-level JSON array, replacing our earlier item (found by ``is_ours``)."""
    if old is None or not old.strip():
        return _new_document([item])
    _, open_at, close_at, spans = _scan(old, path, list)
    unit, indent, _ = _layout(old, open_at, close_at, spans)
    for span in spans:
        if is_ours(span.value):
            if span.value == item:
                return old
            return old[: span.value_start] + _dump(item, indent, unit) + old[span.value_end :]
    return _insert(old, open_at, close_at, spans, _dump(item, indent, unit))


def json_remove_item(current: str, is_ours: Callable[[Any], bool], path: Path) -> str:
    _, open_at, close_at, spans = _scan(current, path, list)
    for index in range(len(spans) - 1, -1, -1):
        if is_ours(spans[index].value):
            current = _delete(current, open_at, close_at, spans, index)
            _, open_at, close_at, spans = _scan(current, path, list)
    return current


# -- YAML ------------------------------------------------------------------------------------------------------


class YamlDoc:
    """A YAML file loaded for a round trip: comments, quotes and the file's own indentation are kept."""

    def __init__(self, text: str | None, path: Path) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError
        from ruamel.yaml.util import load_yaml_guess_indent

        self.path = path
        self.yaml = YAML(typ="rt")
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096  # never re-wrap a user's long line
        text = text or ""
        try:
            if text.strip():
                _, ind, bsi = load_yaml_guess_indent(text)
                ind = ind or 2
                bsi = bsi or 0
                self.yaml.indent(mapping=ind if bsi == 0 else max(ind - bsi, 2), sequence=ind, offset=bsi)
                self.yaml.explicit_start = text.lstrip().startswith("---")
            else:
                self.yaml.indent(mapping=2, sequence=4, offset=2)
            self.data: Any = self.yaml.load(text) if text.strip() else None
            self._baseline: str | None = self._dump_raw() if self.data is not None else None
        except YAMLError as exc:
            first = str(exc).strip().splitlines()
            raise UnparseableFile(path, f"YAML 无法解析 / invalid YAML: {' '.join(first[-2:])}") from exc
        self.text = text

    def _dump_raw(self) -> str:
        buffer = io.StringIO()
        self.yaml.dump(self.data, buffer)
        return buffer.getvalue()

    def dump(self) -> str:
        """The edited document, with the user's own lines exactly as they were.

        ruamel re-indents some constructs (a nested list written differently from the rest of the file). So we
        dump the untouched document too, and when that is not byte-identical to the file, we move only the
        lines our edit changed (the diff between the two dumps) onto the original text, then check the result
        parses to the same data; if anything is off, ruamel's own dump is used.
        """
        if self.data is None:
            return self.text
        edited = self._dump_raw()
        if self._baseline is None or self._baseline == self.text:
            return edited
        transplanted = _transplant(self.text, self._baseline, edited)
        if transplanted is not None:
            try:
                if _plain(YamlDoc(transplanted, self.path).data) == _plain(self.data):
                    return transplanted
            except Exception:  # noqa: BLE001 - any doubt: ruamel's own output is still correct YAML
                pass
        return edited

    def without(self, seq: Any, is_ours: Callable[[Any], bool]) -> str | None:
        """The text with our items cut out line by line (comments around them kept); None if nothing to cut.

        ruamel attaches a comment that follows a list's last item to that item, so deleting the item through
        ruamel would delete the user's comment too. We cut our item's own lines instead, then check that the
        result parses to exactly the data ruamel would produce, else fall back to ruamel's dump.
        """
        spans = [(seq.lc.item(i)[0], _last_line(item)) for i, item in enumerate(seq) if isinstance(item, dict) and is_ours(item)]
        if not spans:
            return None
        remove_items(seq, is_ours)
        expected = _plain(self.data)
        lines = self.text.splitlines(keepends=True)
        for first, last in reversed(spans):
            del lines[first : last + 1]
        text = "".join(lines)
        try:
            if _plain(YamlDoc(text, self.path).data) == expected:
                return text
        except Exception:  # noqa: BLE001 - any doubt: use ruamel's own output
            pass
        return self.dump()

    def mapping(self) -> Any:
        """The top-level mapping, made when the file is empty; anything else is unparseable for us."""
        from ruamel.yaml.comments import CommentedMap

        if self.data is None:
            self.data = CommentedMap()
        if not isinstance(self.data, dict):
            raise UnparseableFile(self.path, "顶层不是映射 / the top level is not a mapping")
        return self.data

    def sequence(self) -> Any:
        from ruamel.yaml.comments import CommentedSeq

        if self.data is None:
            self.data = CommentedSeq()
            self.yaml.indent(mapping=2, sequence=2, offset=0)  # a new top-level list starts at column 0
        if not isinstance(self.data, list):
            raise UnparseableFile(self.path, "顶层不是列表 / the top level is not a list")
        return self.data


def _transplant(original: str, baseline: str, edited: str) -> str | None:
    """Apply the line changes baseline→edited to ``original`` (same document, other formatting), or None."""
    import difflib

    orig_lines = original.splitlines(keepends=True)
    base_lines = baseline.splitlines(keepends=True)
    if len(orig_lines) != len(base_lines):
        return None  # lines do not correspond one to one; let the caller fall back
    new_lines = edited.splitlines(keepends=True)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=base_lines, b=new_lines, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            out.extend(orig_lines[a0:a1])
        else:
            out.extend(new_lines[b0:b1])
    return "".join(out)


def yaml_list_in(mapping: Any, key: str, path: Path) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    value = mapping.get(key)
    if value is None:
        value = CommentedSeq()
        mapping[key] = value
    if not isinstance(value, list):
        raise UnparseableFile(path, f"`{key}` 不是列表 / `{key}` is not a list")
    return value


def upsert(seq: Any, item: Mapping[str, Any], is_ours: Callable[[Any], bool]) -> bool:
    """Replace our item in ``seq`` (keeping its position and the user's comments around it) or append it.

    Returns True when something changed. An existing item is updated key by key, so a comment the user wrote
    inside our entry survives a re-apply.
    """
    from ruamel.yaml.comments import CommentedMap

    for existing in seq:
        if isinstance(existing, dict) and is_ours(existing):
            changed = False
            for k, v in item.items():
                if _plain(existing.get(k)) != _plain(v):
                    existing[k] = v
                    changed = True
            return changed
    new = CommentedMap()
    for k, v in item.items():
        new[k] = v
    seq.append(new)
    return True


def remove_items(seq: Any, is_ours: Callable[[Any], bool]) -> bool:
    before = len(seq)
    for index in range(len(seq) - 1, -1, -1):
        if isinstance(seq[index], dict) and is_ours(seq[index]):
            del seq[index]
    return len(seq) != before


def _last_line(node: Any) -> int:
    """The last line (0-based) holding part of ``node``, from ruamel's line/column data."""
    lc: Any = node.lc
    last = int(lc.line)
    if isinstance(node, dict):
        for key, value in node.items():
            last = max(last, int(lc.value(key)[0]) if key in lc.data else last)
            if isinstance(value, (dict, list)) and hasattr(value, "lc"):
                last = max(last, _last_line(value))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            last = max(last, int(lc.item(index)[0]))
            if isinstance(value, (dict, list)) and hasattr(value, "lc"):
                last = max(last, _last_line(value))
    return last


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


# -- TOML ------------------------------------------------------------------------------------------------------


def toml_load(text: str | None, path: Path) -> Any:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        return tomlkit.parse(text or "")
    except TOMLKitError as exc:
        raise UnparseableFile(path, f"TOML 无法解析 / invalid TOML: {exc}") from exc
