"""Text-level editors that change one entry and leave every other byte of a file alone, one module per format.

Each editor turns "old text" into "new text" for a single entry (one key, one list item, one table) and can take
that entry out again. Parsers check the whole file first: anything they cannot read raises ``UnparseableFile``,
so a file we do not understand is never rewritten.

- ``env``:  ``.env`` files, line level; other lines (comments, blank lines, ``export``, odd spacing) stay as they are.
- ``json``: validated with ``json``, then edited by byte spans found with the stdlib decoder, so the rest of the
  file (key order, indentation, spacing) is untouched.
- ``yaml``: ``ruamel.yaml`` round-trip (comments, quotes and the file's own indentation kept).
- ``toml``: ``tomlkit`` (style-preserving by design).
"""

from __future__ import annotations

from ._common import FileTooLarge, TextShape
from .env import ENV_MARKER, env_remove, env_set, env_values
from .json import json_remove_in, json_remove_item, json_remove_member, json_set_in, json_set_member, json_upsert_item
from .toml import toml_load
from .yaml import YamlDoc, remove_items, upsert, yaml_list_in

__all__ = [
    "FileTooLarge",
    "TextShape",
    "ENV_MARKER",
    "env_set",
    "env_remove",
    "env_values",
    "json_set_member",
    "json_remove_member",
    "json_upsert_item",
    "json_remove_item",
    "json_set_in",
    "json_remove_in",
    "YamlDoc",
    "yaml_list_in",
    "upsert",
    "remove_items",
    "toml_load",
]
