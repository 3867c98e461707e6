"""Secrets in a line of an app's config, masked for the diffs ``apply`` shows (and ``--undo --dry-run``).

A diff shows the user's own file, and that file often holds keys that are not ours: llm's ``keys.json`` with
``"openai": "sk-…"``, a ``.env`` with ``ANTHROPIC_API_KEY=…``, aider's ``openai-api-key:``. Someone sharing a
screen should not show them. Two rules, for JSON, YAML, TOML and env lines alike (a diff line is one line of any
of them):

* by name: the value of a setting whose name ends in key / token / secret / password (``OPENAI_API_KEY``,
  ``apiKey``, ``openai-api-key``, ``experimental_bearer_token``; not ``max_tokens`` or ``api_key_name``);
* by shape: anything that looks like a key wherever it stands (``sk-…``, ``baicai-`` + 16 or more characters),
  because a key map like ``keys.json`` names its entries after providers (``"openai": "sk-…"``).

Masking is ``mask_secret`` (``sk-…123``): recognisable, not usable. References to a key (``$VAR``, ``${VAR}``,
``{env:VAR}``, ``os.environ/VAR``) are shown as they are: they hold no secret.
"""

from __future__ import annotations

import re

from ._model import mask_secret

__all__ = ["mask_secrets"]

_SECRET_LAST_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential", "credentials"}
)
_KEY_SHAPED = re.compile(r"(?<![\w\-…])(?:sk-[A-Za-z0-9_\-]{3,}|baicai-[A-Za-z0-9]{16,})")
_PAIR = re.compile(
    r"""(?P<name>"[^"\n]*"|'[^'\n]*'|[A-Za-z_][\w.\-]*)"""
    r"""(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,#}\]"']+)"""
)
_REFERENCE = re.compile(r"^(?:\$|\{env:|\{\{|os\.environ)")
_PLAIN = re.compile(r"^(?:-?\d+(?:\.\d+)?|true|false|null|none|yes|no|~)$", re.IGNORECASE)


def _secret_name(name: str) -> bool:
    name = name.strip("\"'")
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    last = re.split(r"[_\-.\s]+", words.strip("_-. "))[-1]
    return last in _SECRET_LAST_WORDS


def _mask_value(value: str) -> str:
    quote = value[0] if value[:1] in ("'", '"') and len(value) >= 2 else ""
    inner = value[1:-1] if quote else value
    if not inner or "…" in inner or _REFERENCE.match(inner) or _PLAIN.match(inner) or any(c.isspace() for c in inner):
        return value
    return f"{quote}{mask_secret(inner)}{quote}"


def mask_secrets(line: str) -> str:
    """``line`` with every secret value in it masked; everything else as it was."""
    line = _KEY_SHAPED.sub(lambda m: mask_secret(m.group(0)), line)

    def pair(m: re.Match[str]) -> str:
        if not _secret_name(m.group("name")):
            return m.group(0)
        return m.group("name") + m.group("sep") + _mask_value(m.group("value"))

    return _PAIR.sub(pair, line)
