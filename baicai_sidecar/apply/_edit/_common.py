"""What every format editor shares."""

from __future__ import annotations

from pathlib import Path

from baicai_sdk.integration import Text

from .._model import ApplyError, UnparseableFile


def _always(text: str) -> bool:
    """The default ``ours`` check: every entry under our key counts as ours."""
    return True


class TextShape:
    """A file's byte-order mark and line endings, taken off before an editor sees the text and put back after.

    Every editor then works on ``\\n`` text without a BOM — so a CRLF file never comes out with mixed endings and
    a UTF-8 BOM is handled the same way for every format (json refuses one; YAML and TOML would keep it as text).
    A file whose endings are mixed is passed through as it is: there is no single style to restore.
    """

    def __init__(self, text: str | None) -> None:
        text = text or ""
        self.bom = text.startswith("\ufeff")
        body = text[1:] if self.bom else text
        crlf = body.count("\r\n")
        self.crlf = crlf > 0 and crlf == body.count("\n") == body.count("\r")

    def strip(self, text: str | None) -> str | None:
        if text is None:
            return None
        if self.bom and text.startswith("\ufeff"):
            text = text[1:]
        return text.replace("\r\n", "\n") if self.crlf else text

    def restore(self, text: str) -> str:
        if self.crlf:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return "\ufeff" + text if self.bom and not text.startswith("\ufeff") else text


class FileTooLarge(UnparseableFile):
    """A file too large for its editor to round-trip quickly: refused at once instead of running for minutes."""

    def __init__(self, path: Path, size: int, limit: int, what: str) -> None:
        self.size, self.limit = size, limit
        ApplyError.__init__(
            self,
            Text(f"{path} 太大（{_human(size)}，{what} 文件上限 {_human(limit)}），无法快速安全地改写，文件未做任何改动；请手动添加 baicai 的条目，或把与 baicai 无关的内容移到别的文件。",
                 f"{path} is too large ({_human(size)}; the limit for {what} files is {_human(limit)}) to rewrite quickly and safely; it was left untouched — add the baicai entry by hand, or move what is unrelated to baicai into another file."),
        )
        self.path = Path(path)
        self.reason = f"too large: {size} > {limit} bytes"


def _human(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} KB"


def check_size(text: str | None, path: Path, limit: int, what: str) -> None:
    """Refuse at once a text its editor could not round-trip in a few seconds (limits measured per format)."""
    if not text or len(text) <= limit // 4:  # at most 4 bytes a character: surely under, no encoding needed
        return
    size = len(text.encode("utf-8"))
    if size > limit:
        raise FileTooLarge(path, size, limit, what)
