"""TOML: ``tomlkit`` (style-preserving by design)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._model import UnparseableFile


def toml_load(text: str | None, path: Path) -> Any:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        return tomlkit.parse(text or "")
    except TOMLKitError as exc:
        raise UnparseableFile(path, f"TOML 无法解析 / invalid TOML: {exc}") from exc
