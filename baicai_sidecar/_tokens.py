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

import hmac
import json
import os
import re
import secrets
import string
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TokenStore", "LocalToken", "DEFAULT_APP", "mask_token", "InvalidAppName"]

DEFAULT_APP = "default"
"""The per-install token printed by ``baicai sidecar``; apps without their own token use it."""

_PREFIX = "sk-baicai-"
_ALPHABET = string.ascii_letters + string.digits
_BODY_LEN = 32
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


class InvalidAppName(ValueError):
    """An app name that could not be shown safely in a ledger row or a table."""


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

    Safe to use from several processes (the CLI adds a token while the sidecar runs): every write replaces the
    file atomically, and ``verify`` reloads it when its mtime changes, so a revoked token stops working on the
    next request without a restart.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            from baicai_sdk._paths import config_dir

            path = config_dir() / "sidecar-tokens.json"
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cached: dict[str, LocalToken] = {}
        self._cached_stamp: tuple[int, int] | None = None

    # -- file ------------------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _load(self) -> dict[str, LocalToken]:
        stamp = self._stamp()
        if stamp is not None and stamp == self._cached_stamp:
            return self._cached
        tokens: dict[str, LocalToken] = {}
        if stamp is not None:
            try:
                raw: Any = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError) as exc:
                raise RuntimeError(
                    f"本地令牌文件损坏，请删除后重新生成：{self.path} / "
                    f"the local token file is damaged; delete it and issue tokens again: {self.path}"
                ) from exc
            for app, entry in (raw.get("tokens") or {}).items():
                if isinstance(entry, dict) and isinstance(entry.get("token"), str):
                    tokens[app] = LocalToken(app, entry["token"], float(entry.get("created") or 0.0))
        self._cached, self._cached_stamp = tokens, stamp
        return tokens

    def _save(self, tokens: dict[str, LocalToken]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": 1,
            "tokens": {t.app: {"token": t.token, "created": t.created} for t in tokens.values()},
        }
        # mkstemp creates the file 0600, and os.replace keeps that mode
        fd, tmp = tempfile.mkstemp(prefix=".sidecar-tokens.", dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=2, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._cached_stamp = None  # force a re-read (mtime resolution may hide our own write)

    # -- API -------------------------------------------------------------------------------------
    def issue(self, app: str, *, rotate: bool = False) -> str:
        """The token for ``app``, made on first call.

        Idempotent on purpose: ``baicai apply`` may run again for an app it already configured, and must not
        silently invalidate the token that app (or another copy of its config) already uses. ``rotate=True``
        replaces it.
        """
        _check_app(app)
        with self._lock:
            tokens = dict(self._load())
            existing = tokens.get(app)
            if existing is not None and not rotate:
                return existing.token
            token = _new_token()
            tokens[app] = LocalToken(app, token, time.time())
            self._save(tokens)
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
        with self._lock:
            tokens = dict(self._load())
            if tokens.pop(app, None) is None:
                return False
            self._save(tokens)
            return True

    def verify(self, token: str | None) -> str | None:
        """The app ``token`` belongs to, or None. Compares every entry in constant time."""
        if not token:
            return None
        candidate = token.encode("utf-8", "surrogateescape")
        found: str | None = None
        for entry in self._load().values():
            # no early exit: the time taken does not say which entry (or how much of one) matched
            if hmac.compare_digest(entry.token.encode("utf-8"), candidate):
                found = entry.app
        return found
