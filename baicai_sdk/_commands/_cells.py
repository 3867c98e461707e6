"""Padding by terminal cells, not characters: a Chinese character takes two columns, so ``f"{x:<10}"`` misaligns
any table with a Chinese header or name. (rich does this too, but it is not a core dependency.)"""

from __future__ import annotations

import unicodedata

__all__ = ["cells", "ljust", "rjust"]


def cells(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide and full-width characters 2, combining marks 0, others 1."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
               for ch in text)


def ljust(text: object, width: int) -> str:
    s = str(text)
    return s + " " * max(0, width - cells(s))


def rjust(text: object, width: int) -> str:
    s = str(text)
    return " " * max(0, width - cells(s)) + s
