"""YAML: ``ruamel.yaml`` round-trip (comments, quotes and the file's own indentation kept)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from .._model import UnparseableFile
from ._common import check_size

YAML_LIMIT = 64_000
"""ruamel's round-trip parser (comments kept) needs about 0.05–0.2 s per KB, and an edit parses the file up to
three times: 64 KB stays within seconds even on a busy machine (a 27 MB file ran past ten minutes)."""


class YamlDoc:
    """A YAML file loaded for a round trip: comments, quotes and the file's own indentation are kept."""

    def __init__(self, text: str | None, path: Path) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError
        from ruamel.yaml.util import load_yaml_guess_indent

        check_size(text, path, YAML_LIMIT, "YAML")
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
            raise UnparseableFile(path, Text(f"YAML 无法解析：{' '.join(first[-2:])}", f"invalid YAML: {' '.join(first[-2:])}")) from exc
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
            raise UnparseableFile(self.path, Text("顶层不是映射", "the top level is not a mapping"))
        return self.data

    def sequence(self) -> Any:
        from ruamel.yaml.comments import CommentedSeq

        if self.data is None:
            self.data = CommentedSeq()
            self.yaml.indent(mapping=2, sequence=2, offset=0)  # a new top-level list starts at column 0
        if not isinstance(self.data, list):
            raise UnparseableFile(self.path, Text("顶层不是列表", "the top level is not a list"))
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
        raise UnparseableFile(path, Text(f"`{key}` 不是列表", f"`{key}` is not a list"))
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
