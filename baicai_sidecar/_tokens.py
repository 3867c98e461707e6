"""Local tokens: what a desktop app sends to the sidecar instead of the real ``baicai-…`` key.

Why tokens at all: a sidecar on 127.0.0.1 is reachable by every process and every web page on the machine;
a token makes "any local program may spend my balance" an explicit choice (``--open``). One token per app
also attributes usage to the app in the ledger and lets one app be cut off without touching the others.

Tokens look like ``sk-baicai-<32 alphanumerics>`` because several apps refuse a key that does not start with
``sk-``. They live in one JSON file in the config dir, mode 0600 (the sidecar must print the default token at
every start, so it cannot keep only a hash). They are worth far less than the real key: they only work on
this machine, through the sidecar, and can be revoked.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baicai_sdk.integration import FileWatch, Text, atomic_write, file_lock, stale_temps

__all__ = ["TokenStore", "LocalToken", "DEFAULT_APP", "mask_token", "InvalidAppName", "TokenFileDamaged"]

DEFAULT_APP = "default"
"""The per-install token printed by ``baicai sidecar``; apps without their own token use it."""

_PREFIX = "sk-baicai-"
_ALPHABET = string.ascii_letters + string.digits
_BODY_LEN = 32
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


class InvalidAppName(ValueError):
    """An app name that could not be shown safely in a ledger row or a table."""


class TokenFileDamaged(RuntimeError):
    """``sidecar-tokens.json`` cannot be read as tokens. The message (``Text``) says the fix."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.message = Text(
            f"sidecar 的本地令牌文件已损坏：{path}。请把它移走（里面没有你的真实密钥），再运行 `baicai sidecar` "
            "生成新的默认令牌，并对每个应用重新运行 `baicai apply 应用名 --target sidecar`。",
            f"the sidecar's local token file is damaged: {path}. Move it aside (your real key is not in it), run "
            "`baicai sidecar` to make a new default token, then `baicai apply APP --target sidecar` for each app.",
        )
        super().__init__(self.message)


def mask_token(token: str) -> str:
    """``sk-baicai-…abcd``: enough to tell tokens apart, never enough to use one."""
    if token.startswith(_PREFIX) and len(token) > len(_PREFIX) + 8:
        return f"{_PREFIX}…{token[-4:]}"
    return "…" + token[-4:] if len(token) > 8 else "…"


@dataclass(frozen=True)
class LocalToken:
    app: str
    token: str
    created: float

    @property
    def masked(self) -> str:
        return mask_token(self.token)

    def __repr__(self) -> str:  # never the token itself in a log or traceback
        return f"LocalToken(app={self.app!r}, token={self.masked!r}, created={self.created!r})"


def _new_token() -> str:
    return _PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LEN))


def _check_app(app: str) -> str:
    if not isinstance(app, str) or not _APP_NAME.match(app):
        raise InvalidAppName(
            f"应用名只能含字母、数字、点、下划线和短横线（1–40 个字符）：{app!r} / "
            f"an app name may only contain letters, digits, '.', '_' and '-' (1–40 characters): {app!r}"
        )
    return app


class TokenStore:
    """The sidecar's local tokens, one per app, in ``<config>/sidecar-tokens.json``.

    Safe to use from several processes (the CLI adds a token while the sidecar runs): every change is made under
    a cross-process file lock and replaces the file atomically, and ``verify`` reloads it whenever it changed
    (``FileWatch``: identity, size and times, and the content while the mtime is too recent to trust), so a
    revoked or rotated token stops working on the next request without a restart.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            from baicai_sdk.integration import config_dir

            path = config_dir() / "sidecar-tokens.json"
        self.path = Path(path)
        self._lock = threading.Lock()
        self._watch = FileWatch(self.path)
        self._cached: dict[str, LocalToken] = {}
        self._comparable: tuple[dict[str, LocalToken], tuple[tuple[bytes, str], ...]] = ({}, ())

    # -- file ------------------------------------------------------------------------------------
    def _load(self) -> dict[str, LocalToken]:
        """The tokens as the file holds them now; re-read only when ``FileWatch`` says it changed (one stat,
        plus a hash while the file's mtime is too recent to trust), so a rotation in another process is
        seen on the next request even where mtimes are coarse."""
        with self._lock:
            if not self._watch.changed():
                return self._cached
            try:
                data = self._watch.read()
                raw: Any = json.loads(data.decode("utf-8") or "{}") if data is not None else {}
                entries = raw.get("tokens") or {}
                if not isinstance(entries, dict):
                    raise ValueError("tokens is not an object")
            except (OSError, ValueError, AttributeError) as exc:
                self._watch = FileWatch(self.path)  # damaged: check again next time, do not cache
                raise TokenFileDamaged(self.path) from exc
            tokens: dict[str, LocalToken] = {}
            for app, entry in entries.items():
                if isinstance(entry, dict) and isinstance(entry.get("token"), str):
                    tokens[app] = LocalToken(app, entry["token"], float(entry.get("created") or 0.0))
            self._cached = tokens
            return tokens

    def _save(self, tokens: dict[str, LocalToken]) -> None:
        """Called under ``file_lock(self.path)``, so stale temp files (they may hold tokens) can be removed."""
        payload = {
            "version": 1,
            "tokens": {t.app: {"token": t.token, "created": t.created} for t in tokens.values()},
        }
        for stale in stale_temps(self.path):
            stale.unlink(missing_ok=True)
        atomic_write(self.path, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), secret=True)

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, LocalToken]]:
        """The current tokens to change, under the cross-process lock; saved when the block returns normally."""
        with file_lock(self.path):
            tokens = dict(self._load())
            before = dict(tokens)
            yield tokens
            if tokens != before:
                self._save(tokens)

    # -- API -------------------------------------------------------------------------------------
    def issue(self, app: str, *, rotate: bool = False) -> str:
        """The token for ``app``, made on first call.

        Idempotent on purpose: ``baicai apply`` may run again for an app it already configured, and must not
        silently invalidate the token that app (or another copy of its config) already uses. ``rotate=True``
        replaces it.
        """
        _check_app(app)
        if not rotate:
            # Already issued (every sidecar start after the first): read as ``get`` reads, without the
            # cross-process lock — the file is only ever replaced whole, so a read sees one version of it. Spares
            # `baicai sidecar` the filelock import (1 MB of its memory, bench/bench_memory.py).
            existing = self._load().get(app)
            if existing is not None:
                return existing.token
        with self._editing() as tokens:
            existing = tokens.get(app)
            if existing is not None and not rotate:
                return existing.token
            token = _new_token()
            tokens[app] = LocalToken(app, token, time.time())
        return token

    def default_token(self) -> str:
        """The per-install token printed by ``baicai sidecar`` (made on first start)."""
        return self.issue(DEFAULT_APP)

    def get(self, app: str) -> str | None:
        entry = self._load().get(app)
        return entry.token if entry else None

    def list(self) -> list[LocalToken]:
        """Every token, oldest first (show ``.masked``; the full token only when the user asks for one)."""
        return sorted(self._load().values(), key=lambda t: (t.created, t.app))

    def revoke(self, app: str) -> bool:
        """Cut ``app`` off; True when it had a token. Takes effect on the sidecar's next request."""
        with self._editing() as tokens:
            return tokens.pop(app, None) is not None

    def verify(self, token: str | None) -> str | None:
        """The app ``token`` belongs to, or None. Compares every entry in constant time."""
        if not token:
            return None
        candidate = token.encode("utf-8", "surrogateescape")
        found: str | None = None
        for known, app in self._encoded(self._load()):
            # no early exit: the time taken does not say which entry (or how much of one) matched
            if hmac.compare_digest(known, candidate):
                found = app
        return found

    def _encoded(self, tokens: dict[str, LocalToken]) -> tuple[tuple[bytes, str], ...]:
        """Each token's bytes with its app, encoded once per version of the file, not once per request."""
        seen, encoded = self._comparable
        if seen is not tokens:
            encoded = tuple((entry.token.encode("utf-8"), entry.app) for entry in tokens.values())
            self._comparable = (tokens, encoded)
        return encoded
