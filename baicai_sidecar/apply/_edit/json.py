"""JSON: the file is validated with ``json``, then edited by byte spans found with the stdlib decoder, so the
rest of the file (key order, indentation, spacing) is untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from .._model import UnparseableFile
from ._common import _always, check_size

JSON_LIMIT = 8_000_000
"""The stdlib parser and our span scan handle about 3 MB a second on a busy machine."""

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
    check_size(text, path, JSON_LIMIT, "JSON")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UnparseableFile(path, Text(f"不是有效的 JSON：{exc}", f"not valid JSON: {exc}")) from exc
    if not isinstance(data, kind):
        want = Text("对象", "an object") if kind is dict else Text("数组", "an array")
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



def _nest(keys: tuple[str, ...], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def json_set_in(old: str | None, keys: tuple[str, ...], value: Any, path: Path) -> str:
    """Set a member nested in objects (``("provider", "baicai")``); only that member's bytes change.

    Missing (or empty) parent objects are created. A parent that is not an object is unparseable for us. The
    new member is indented in the file's own unit, one level deeper than its siblings.
    """
    if len(keys) == 1 or old is None or not old.strip():
        return json_set_member(old, keys[0], _nest(keys[1:], value), path)
    _, open_at, close_at, spans = _scan(old, path, dict)
    unit, _, _ = _layout(old, open_at, close_at, spans)
    return _set_in(old, 0, len(old), keys, value, path, unit)


def _set_in(text: str, lo: int, hi: int, keys: tuple[str, ...], value: Any, path: Path, unit: str | None) -> str:
    """``json_set_in`` on the object ``text[lo:hi]``, splicing the result back into ``text``."""
    inner = text[lo:hi]
    _, open_at, close_at, spans = _scan(inner, path, dict)
    head, rest = keys[0], keys[1:]
    span = next((s for s in spans if s.key == head), None)
    if rest and span is not None and span.value != {}:
        if not isinstance(span.value, dict):
            raise UnparseableFile(path, Text(f"“{head}” 不是对象", f"“{head}” is not an object"))
        return _set_in(text, lo + span.value_start, lo + span.value_end, rest, value, path, unit)
    value = _nest(rest, value)
    _, indent, _ = _layout(inner, open_at, close_at, spans)
    if spans and "\n" in inner:
        indent = _line_indent(text, lo + spans[0].start)
    elif unit is not None:
        indent = _line_indent(text, lo) + unit
    if span is not None:
        if span.value == value:
            return text
        new_inner = inner[: span.value_start] + _dump(value, indent, unit) + inner[span.value_end :]
    else:
        member = json.dumps(head, ensure_ascii=False) + ": " + _dump(value, indent, unit)
        new_inner = _insert(inner, open_at, close_at, spans, member)
        if not spans and unit is not None:  # an empty object: put its close brace back under its opening line
            outer = _line_indent(text, lo)
            nl = "\r\n" if "\r\n" in text else "\n"
            new_inner = "{" + nl + indent + member + nl + outer + "}"
    return text[:lo] + new_inner + text[hi:]


def json_remove_in(
    current: str, original: str | None, keys: tuple[str, ...], path: Path, ours: Callable[[str], bool] = _always
) -> str:
    """Take our nested member out (the original's value comes back); a parent we created goes too.

    ``ours`` judges the member's own lines, leaving out bare braces and lines the original file already had:
    a ``}`` or a ``"npm": …`` line shared with another entry has no fingerprint of ours, yet says nothing about
    who wrote the member. A member the user changed after us stays.
    """
    before: Any = json.loads(original) if original and original.strip() else None
    seen = {line.strip().rstrip(",") for line in (original or "").splitlines()}

    def judge(text: str) -> bool:
        lines = [line for line in text.splitlines() if line.strip().rstrip(",") not in seen | _BRACES]
        return True if not lines else ours("\n".join(lines))

    return _remove_in(current, before, keys, path, judge)


_BRACES = {"{", "}", "[", "]", "{}", "[]", ""}


def _remove_in(current: str, before: Any, keys: tuple[str, ...], path: Path, judge: Callable[[str], bool]) -> str:
    head, rest = keys[0], keys[1:]
    _, open_at, close_at, spans = _scan(current, path, dict)
    index, span = next(((i, s) for i, s in enumerate(spans) if s.key == head), (-1, None))
    if span is None:
        return current
    had = isinstance(before, dict) and head in before
    if not rest:
        if not judge(current[span.start : span.value_end]):
            return current
        if had:
            unit, indent, _ = _layout(current, open_at, close_at, spans)
            return current[: span.value_start] + _dump(before[head], indent, unit) + current[span.value_end :]
        return _delete(current, open_at, close_at, spans, index)
    if not isinstance(span.value, dict):
        return current
    inner = current[span.value_start : span.value_end]
    cut = _remove_in(inner, before[head] if had else None, rest, path, judge)
    if cut == inner:
        return current
    if not had and json.loads(cut) == {}:
        return _delete(current, open_at, close_at, spans, index)  # the parent was ours alone
    return current[: span.value_start] + cut + current[span.value_end :]
