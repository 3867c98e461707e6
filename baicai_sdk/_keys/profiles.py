"""Named profiles in ``profiles.json``: the non-secret half of each key, and which one is active."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .. import _paths
from .._catalog import Tier
from .._text import Text
from .._urls import normalise_base_url
from .configfile import _CONFIG_VERSION, _atomic_write_json, _locked, _read_json
from .errors import ConfigCorrupt, KeyStoreError, ProfileNotFound
from .masking import _clean_key, key_fingerprint, mask_key
from .stores import SECRET_STORE_ENV, StoreKind, _FileSecrets, _KeyringSecrets

TIERS: tuple[Tier, ...] = ("free", "paid", "unknown")
_NAME_RE = re.compile(r"^\w[\w.-]{0,63}$")


def _check_name(name: str) -> str:
    if name.lower().startswith(("baicai-", "sk-")) and len(name) > 16:
        # Almost certainly the key itself, typed where the name goes: never echo it, never store it as a name.
        raise KeyStoreError(
            Text(f"配置名 {mask_key(name)} 看起来是密钥本身：名称请用 main、work 这类词，密钥会在提示时输入。",
                 f"the profile name {mask_key(name)} looks like the key itself: use a name such as main or work; the key is asked for at the prompt.")
        )
    if not _NAME_RE.match(name):
        raise KeyStoreError(
            Text(f"配置名 {name!r} 无效：请用字母、数字、. _ -，最长 64 个字符。",
                 f"invalid profile name {name!r}: use letters, digits, '.', '_' or '-', at most 64 characters.")
        )
    return name


def _check_tier(tier: str) -> Tier:
    if tier not in TIERS:
        raise KeyStoreError(
            Text(f"会员等级只能是 free、paid 或 unknown，而不是 {tier!r}。", f"tier must be free, paid or unknown, not {tier!r}.")
        )
    return tier


@dataclass(frozen=True)
class Profile:
    """One named key. Holds no secret: ``secret()`` fetches it from the store it was saved in."""

    name: str
    tier: Tier
    base_url: str | None
    masked: str
    fingerprint: str
    store: StoreKind
    active: bool = False
    _fetch: Callable[[], str] | None = field(repr=False, compare=False, default=None)

    def secret(self) -> str:
        """The full key. Reads the keyring (or the 0600 file) on every call; never cached here."""
        if self._fetch is None:
            raise KeyStoreError(Text(f"配置 {self.name!r} 没有关联密钥库", f"profile {self.name!r} has no key store"))
        return self._fetch()

    def as_dict(self) -> dict[str, Any]:
        """Non-secret fields, for ``--json`` output and the TUI."""
        return {
            "name": self.name,
            "tier": self.tier,
            "base_url": self.base_url,
            "masked": self.masked,
            "fingerprint": self.fingerprint,
            "store": self.store,
            "active": self.active,
        }


class KeyStore:
    """Profiles in ``<config_dir>/profiles.json`` with their secrets in the keyring or the 0600 file.

    ``secret_store`` (``"keyring"`` or ``"file"``; default ``$BAICAI_SECRET_STORE``, else keyring) only decides where
    *new* secrets go: each profile remembers its store, so reading never depends on the environment.
    """

    def __init__(self, config_dir: Path | None = None, *, secret_store: str | None = None) -> None:
        self.config_dir = Path(config_dir) if config_dir is not None else _paths.config_dir()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.config_dir / "profiles.json"
        self.secrets_path = self.config_dir / "secrets.json"
        chosen = (secret_store or os.environ.get(SECRET_STORE_ENV, "") or "keyring").strip().lower()
        if chosen not in ("keyring", "file"):
            raise KeyStoreError(
                Text(f"{SECRET_STORE_ENV} 只能是 keyring 或 file，而不是 {chosen!r}。",
                     f"{SECRET_STORE_ENV} must be keyring or file, not {chosen!r}.")
            )
        self.secret_store: StoreKind = cast(StoreKind, chosen)
        self._stores: dict[StoreKind, _KeyringSecrets | _FileSecrets] = {
            "keyring": _KeyringSecrets(self.secrets_path),
            "file": _FileSecrets(self.secrets_path),
        }

    def __repr__(self) -> str:
        return f"KeyStore({str(self.config_dir)!r}, secret_store={self.secret_store!r})"

    # -- the config file

    def _load(self) -> dict[str, Any]:
        data = _read_json(self.path, Text("配置文件", "profiles file"))
        if data is None:
            return {"version": _CONFIG_VERSION, "active": None, "profiles": {}}
        profiles = data.get("profiles")
        if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
            raise ConfigCorrupt(
                Text(f"配置文件 {self.path} 已损坏（profiles 格式不对）。baicai 不会覆盖它：请修复或移走该文件。",
                     f"The profiles file {self.path} is damaged ('profiles' has the wrong shape). baicai will not overwrite it: fix it or move it aside.")
            )
        return data

    def _save(self, data: dict[str, Any]) -> None:
        data["version"] = _CONFIG_VERSION
        _atomic_write_json(self.path, data)

    def _profile(self, name: str, entry: dict[str, Any], active: str | None) -> Profile:
        store = cast(StoreKind, entry.get("store", "keyring") if entry.get("store") in ("keyring", "file") else "keyring")
        tier = entry.get("tier", "unknown")
        return Profile(
            name=name,
            tier=cast(Tier, tier if tier in TIERS else "unknown"),
            base_url=entry.get("base_url") or None,
            masked=str(entry.get("masked", "…")),
            fingerprint=str(entry.get("fingerprint", "")),
            store=store,
            active=name == active,
            _fetch=lambda: self._secret(name, store),
        )

    def _secret(self, name: str, store: StoreKind) -> str:
        key = self._stores[store].get(name)
        if key is None:
            where = Text("系统密钥环", "the OS keyring") if store == "keyring" else Text(*[str(self.secrets_path)] * 2)
            raise KeyStoreError(
                Text(f"配置 {name!r} 的密钥在 {where.zh} 中找不到（可能已被删除）。请运行 `baicai key add {name}` 重新添加。",
                     f"The key of profile {name!r} is missing from {where.en}; run `baicai key add {name}` to add it again.")
            )
        return key

    def _not_found(self, name: str, data: dict[str, Any]) -> ProfileNotFound:
        names = ", ".join(sorted(data["profiles"]))
        return ProfileNotFound(
            Text(f"没有名为 {name!r} 的配置；现有：{names or '无'}。用 `baicai key add {name}` 添加。",
                 f"no profile named {name!r}; existing: {names or 'none'}. Add it with `baicai key add {name}`.")
        )

    # -- public API

    def add(
        self,
        name: str,
        key: str,
        *,
        tier: str = "unknown",
        base_url: str | None = None,
        store: str | None = None,
    ) -> Profile:
        """Save (or replace) profile ``name``. The first profile becomes the active one."""
        _check_name(name)
        key = _clean_key(key)
        checked_tier = _check_tier(tier)
        if base_url is not None:
            base_url = normalise_base_url(base_url)[0]
        kind = cast(StoreKind, (store or self.secret_store).strip().lower())
        if kind not in self._stores:
            raise KeyStoreError(Text(f"--store 只能是 keyring 或 file，而不是 {kind!r}", f"--store must be keyring or file, not {kind!r}"))
        with _locked(self.path):
            data = self._load()  # before touching the secret store: a damaged config stops us early
            previous = data["profiles"].get(name)
            self._stores[kind].set(name, key)
            if previous and previous.get("store") in self._stores and previous.get("store") != kind:
                with contextlib.suppress(KeyStoreError):
                    self._stores[cast(StoreKind, previous["store"])].delete(name)
            data["profiles"][name] = {
                "tier": checked_tier,
                "base_url": base_url,
                "masked": mask_key(key),
                "fingerprint": key_fingerprint(key),
                "store": kind,
                "added_at": int(time.time()),
            }
            if not data.get("active") or data["active"] not in data["profiles"]:
                data["active"] = name
            self._save(data)
            return self._profile(name, data["profiles"][name], data["active"])

    def get(self, name: str) -> Profile:
        data = self._load()
        entry = data["profiles"].get(name)
        if entry is None:
            raise self._not_found(name, data)
        return self._profile(name, entry, data.get("active"))

    def list(self) -> list[Profile]:
        data = self._load()
        return [self._profile(n, e, data.get("active")) for n, e in sorted(data["profiles"].items())]

    def use(self, name: str) -> Profile:
        with _locked(self.path):
            data = self._load()
            if name not in data["profiles"]:
                raise self._not_found(name, data)
            data["active"] = name
            self._save(data)
            return self._profile(name, data["profiles"][name], name)

    def remove(self, name: str) -> None:
        """Delete the profile and its secret. Removing the active profile leaves none active."""
        with _locked(self.path):
            data = self._load()
            entry = data["profiles"].get(name)
            if entry is None:
                raise self._not_found(name, data)
            store = cast(StoreKind, entry.get("store", "keyring"))
            if store in self._stores:
                self._stores[store].delete(name)
            del data["profiles"][name]
            if data.get("active") == name:
                data["active"] = None
            self._save(data)

    def active(self) -> Profile | None:
        data = self._load()
        name = data.get("active")
        entry = data["profiles"].get(name) if isinstance(name, str) else None
        return self._profile(name, entry, name) if entry is not None and isinstance(name, str) else None

    def set_tier(self, name: str, tier: str) -> Profile:
        checked = _check_tier(tier)
        with _locked(self.path):
            data = self._load()
            entry = data["profiles"].get(name)
            if entry is None:
                raise self._not_found(name, data)
            entry["tier"] = checked
            self._save(data)
            return self._profile(name, entry, data.get("active"))

    def find_fingerprint(self, fingerprint: str) -> Profile | None:
        """The profile holding the key with this fingerprint (no secret is read)."""
        data = self._load()
        for name, entry in sorted(data["profiles"].items()):
            if entry.get("fingerprint") == fingerprint:
                return self._profile(name, entry, data.get("active"))
        return None

    def ensure_usable(self, store: str | None = None) -> None:
        """Raise ``NoKeyringBackend`` (naming the file fallback) or ``ConfigCorrupt`` before asking for a key."""
        kind = (store or self.secret_store).strip().lower()
        if kind not in self._stores:
            raise KeyStoreError(Text(f"--store 只能是 keyring 或 file，而不是 {kind!r}", f"--store must be keyring or file, not {kind!r}"))
        self._stores[kind].ensure_usable()

    @property
    def backend_description(self) -> str:
        """Where new secrets go, in words (imports keyring when that is the store)."""
        return self._stores[self.secret_store].describe()
