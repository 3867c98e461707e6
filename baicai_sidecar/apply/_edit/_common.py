"""What every format editor shares."""

from __future__ import annotations


def _always(text: str) -> bool:
    """The default ``ours`` check: every entry under our key counts as ours."""
    return True
