"""TOML: ``tomlkit`` (style-preserving by design)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from .._model import UnparseableFile
from ._common import check_size

TOML_LIMIT = 256_000
"""tomlkit (style-preserving) parses about 100 KB a second on a busy machine; 256 KB stays within seconds."""


def toml_load(text: str | None, path: Path) -> Any:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    check_size(text, path, TOML_LIMIT, "TOML")
    try:
        return tomlkit.parse(text or "")
    except TOMLKitError as exc:
        raise UnparseableFile(path, Text(f"TOML 无法解析：{exc}", f"invalid TOML: {exc}")) from exc
