"""Keys: named profiles, where their secrets live, and which key and base URL a client ends up using.

Two files and one secret store:

* ``<config_dir>/profiles.json`` — the non-secret half of every profile (name, tier, base URL, masked key,
  fingerprint, which store holds the secret) and the active profile's name. Written atomically (temp file, fsync,
  rename) so a killed process never leaves half a file; a damaged file is reported, never silently replaced.
* the secret itself — in the OS keyring (service ``baicai``, user = profile name) by default. Headless Linux and CI
  machines often have no keyring backend; then we say so and name the explicit fallback,
  ``BAICAI_SECRET_STORE=file`` (or ``baicai key add --store file``): ``<config_dir>/secrets.json``, mode 0600.
  We never fall back to plain text on our own.

``resolve_credentials`` picks the key (argument > ``BAICAI_API_KEY`` > profile) and the base URL
(argument > ``BAICAI_BASE_URL`` > profile > default) and records where each came from, for ``baicai doctor`` and
for error messages. It touches the keyring only when the key has to come from a profile (keyring imports slowly
and may prompt for an unlock).

No full key ever leaves this module except through ``Profile.secret()`` and ``Credentials.key``: reprs, errors and
warnings use ``mask_key``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from . import _files, _paths
from ._catalog import Tier
from ._urls import DEFAULT_BASE_URL, format_changes, is_openai_url, normalise_base_url

__all__ = [
    "BaicaiConfigWarning",
    "ConfigCorrupt",
    "Credentials",
    "KeyStore",
    "KeyStoreError",
    "MissingKeyError",
    "NoKeyringBackend",
    "Profile",
    "ProfileNotFound",
    "SECRET_STORE_ENV",
    "SERVICE_NAME",
    "TIERS",
    "key_fingerprint",
    "key_warnings",
    "keyring_status",
    "mask_key",
    "resolve_credentials",
]

SERVICE_NAME = "baicai"
SECRET_STORE_ENV = "BAICAI_SECRET_STORE"
TIERS: tuple[Tier, ...] = ("free", "paid", "unknown")
StoreKind = Literal["keyring", "file"]

_CONFIG_VERSION = 1
_NAME_RE = re.compile(r"^\w[\w.-]{0,63}$")
_KNOWN_PREFIXES = ("sk-baicai-", "baicai-", "sk-proj-", "sk-")


# ---------------------------------------------------------------------------------------------------- errors


class BaicaiConfigWarning(UserWarning):
    """Something in the configuration is probably wrong but baicai can carry on (a repaired URL, an odd key)."""


# Configuration warnings are about the machine, not the call site: say each one once per process, however many
# clients are made (appended, so a user's own -W or filterwarnings still wins).
warnings.filterwarnings("once", category=BaicaiConfigWarning, append=True)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line, past baicai's and openai's own frames.

    (``Baicai()`` reaches ``resolve_credentials`` through a varying number of frames — direct, ``copy()``,
    ``with_options`` — so a fixed number would point into ``_client.py``.)
    """
    import sys

    inside = tuple(os.path.dirname(m.__file__) + os.sep for m in _library_modules())
    frame = sys._getframe(1)  # resolve_credentials: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _library_modules() -> list[Any]:
    import sys

    return [m for m in (sys.modules.get("baicai_sdk"), sys.modules.get("openai")) if m is not None
            and getattr(m, "__file__", None)]


class KeyStoreError(RuntimeError):
    """Root of the key-store errors. Messages are bilingual (中文 / English) and say what to do."""


class MissingKeyError(KeyStoreError):
    """No key in any of the three places we look."""


class NoKeyringBackend(KeyStoreError):
    """The machine has no usable OS keyring, and the file fallback was not chosen explicitly."""


class ProfileNotFound(KeyStoreError, LookupError):
    """No profile of that name."""


class ConfigCorrupt(KeyStoreError):
    """``profiles.json`` or ``secrets.json`` cannot be read; we refuse to overwrite it."""


# ---------------------------------------------------------------------------------------------------- helpers


def mask_key(key: str) -> str:
    """``baicai-…abcd``: the known prefix and the last four characters, enough to tell keys apart.

    Short strings show less (a 6-character tail of a 10-character secret would give most of it away).
    """
    key = key.strip()
    prefix = next((p for p in _KNOWN_PREFIXES if key.startswith(p)), "")
    rest = key[len(prefix):]
    tail = rest[-4:] if len(rest) >= 16 else rest[-2:] if len(rest) >= 8 else ""
    return f"{prefix}…{tail}"


def key_fingerprint(key: str) -> str:
    """A stable, non-reversible id for a key (first 16 hex digits of SHA-256): what the ledger stores."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()[:16]


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def key_warnings(key: str, base_url: str | None = None) -> list[str]:
    """Warnings about the shape of ``key`` (never a refusal: the relay may issue new prefixes)."""
    masked = mask_key(key)
    if key.startswith("baicai-"):
        return []
    if key.startswith("sk-baicai-"):
        if base_url is None or _is_loopback(base_url):
            return []  # a sidecar token, used against the local sidecar
        return [
            f"{masked} 是本机 sidecar 的令牌，只能发给本机 sidecar，不能直接发给中转站。 / "
            f"{masked} is a local sidecar token: use it against the sidecar on 127.0.0.1, not the relay."
        ]
    if key.startswith("sk-"):
        return [
            f"{masked} 看起来是 OpenAI 官方的 sk- 密钥，白菜GPT 中转站只接受 baicai-… 密钥；请到 "
            "https://shop.baicaigpt.com 的「我的KEY」复制。 / "
            f"{masked} looks like an OpenAI sk- key; the relay only accepts baicai-… keys (copy yours from "
            "the shop's 'My KEY' page)."
        ]
    return [
        f"密钥 {masked} 不是以 baicai- 开头，可能不是白菜GPT 的密钥。 / "
        f"the key {masked} does not start with baicai-; it may not be a BaicaiGPT key."
    ]


def _clean_key(key: str) -> str:
    """The key as typed or piped, trimmed; refuses what could never be sent in an HTTP header."""
    cleaned = key.strip()
    if not cleaned:
        raise KeyStoreError("密钥为空。 / The key is empty.")
    if any(ch.isspace() for ch in cleaned) or not cleaned.isascii() or not cleaned.isprintable():
        raise KeyStoreError(
            f"密钥 {mask_key(cleaned)} 含有空白或非 ASCII 字符，请重新复制。 / "
            f"The key {mask_key(cleaned)} contains spaces or non-ASCII characters; copy it again."
        )
    return cleaned


def _check_name(name: str) -> str:
    if name.lower().startswith(("baicai-", "sk-")) and len(name) > 16:
        # Almost certainly the key itself, typed where the name goes: never echo it, never store it as a name.
        raise KeyStoreError(
            f"配置名 {mask_key(name)} 看起来是密钥本身：名称请用 main、work 这类词，密钥会在提示时输入。 / "
            f"the profile name {mask_key(name)} looks like the key itself: use a name such as main or work; "
            "the key is asked for at the prompt."
        )
    if not _NAME_RE.match(name):
        raise KeyStoreError(
            f"配置名 {name!r} 无效：请用字母、数字、. _ -，最长 64 个字符。 / "
            f"invalid profile name {name!r}: use letters, digits, '.', '_' or '-', at most 64 characters."
        )
    return name


def _check_tier(tier: str) -> Tier:
    if tier not in TIERS:
        raise KeyStoreError(
            f"会员等级只能是 free、paid 或 unknown，而不是 {tier!r}。 / tier must be free, paid or unknown, not {tier!r}."
        )
    return tier


def _locked(path: Path) -> contextlib.AbstractContextManager[None]:
    """A cross-process lock beside ``path`` so two processes editing profiles do not lose each other's change."""
    return _files.file_lock(path)


def _atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    Mode 0600 (``secret``): right for secrets, harmless for profiles (they hold nothing secret, but nobody else
    needs them either). Callers hold ``_locked(path)``, so temp files a killed writer left are removed here.
    """
    for stale in _files.stale_temps(path):
        stale.unlink(missing_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _files.atomic_write(path, text.encode("utf-8"), secret=True)


def _read_json(path: Path, what_zh: str, what_en: str) -> dict[str, Any] | None:
    """The file's JSON object, None when it does not exist, ``ConfigCorrupt`` when it is damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigCorrupt(
            f"无法读取{what_zh} {path}：{exc.strerror}。请检查文件权限。 / "
            f"cannot read the {what_en} {path}: {exc.strerror}. Check its permissions."
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        data, reason = None, f"JSON: {exc}"
    else:
        reason = "" if isinstance(data, dict) else "not a JSON object"
    if not isinstance(data, dict):
        raise ConfigCorrupt(
            f"{what_zh} {path} 已损坏（{reason}）。baicai 不会覆盖它：请修复该文件，或把它移走后重新运行 "
            f"`baicai key add`。 / The {what_en} {path} is damaged ({reason}). baicai will not overwrite it: "
            "fix the file, or move it aside and run `baicai key add` again."
        )
    return data


# ---------------------------------------------------------------------------------------------------- secret stores


def keyring_status() -> tuple[bool, str]:
    """(usable, description) of the OS keyring backend — imports keyring, so call it only when needed."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception as exc:  # pragma: no cover - keyring is a dependency, but a broken install happens
        return False, f"keyring 无法导入 / keyring cannot be imported: {type(exc).__name__}"
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if isinstance(backend, fail.Keyring):
        return False, name
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return False, name
    if type(backend).__module__ == "keyring.backends.null":
        return False, name
    return True, name


def _fallback_advice(path: Path) -> str:
    return (
        f"可改用文件存储：设置环境变量 {SECRET_STORE_ENV}=file，或运行 `baicai key add NAME --store file`；"
        f"密钥将以明文保存在 {path}（权限 0600，仅本人可读）。也可安装系统密钥环（如 gnome-keyring、KWallet）。 / "
        f"To keep keys in a file instead, set {SECRET_STORE_ENV}=file or run `baicai key add NAME --store file`: "
        f"the key is then stored in plain text in {path} (mode 0600, readable only by you). "
        "Or install an OS keyring (e.g. gnome-keyring, KWallet)."
    )


class _KeyringSecrets:
    kind: StoreKind = "keyring"

    def __init__(self, fallback_path: Path) -> None:
        self._fallback_path = fallback_path

    def _backend(self) -> Any:
        usable, description = keyring_status()
        if not usable:
            raise NoKeyringBackend(
                f"本机没有可用的系统密钥环（{description}）。 / This machine has no usable OS keyring "
                f"({description}). " + _fallback_advice(self._fallback_path)
            )
        import keyring

        return keyring

    def _call(self, action: Callable[[Any], Any]) -> Any:
        keyring = self._backend()
        from keyring.errors import KeyringError

        try:
            return action(keyring)
        except KeyringError as exc:
            raise NoKeyringBackend(
                f"系统密钥环出错（{type(exc).__name__}），可能被锁定或不可用。 / The OS keyring failed "
                f"({type(exc).__name__}); it may be locked or unavailable. " + _fallback_advice(self._fallback_path)
            ) from None

    def get(self, name: str) -> str | None:
        return cast("str | None", self._call(lambda kr: kr.get_password(SERVICE_NAME, name)))

    def set(self, name: str, key: str) -> None:
        self._call(lambda kr: kr.set_password(SERVICE_NAME, name, key))

    def delete(self, name: str) -> None:
        from keyring.errors import PasswordDeleteError

        def delete(kr: Any) -> None:
            with contextlib.suppress(PasswordDeleteError):
                kr.delete_password(SERVICE_NAME, name)

        self._call(delete)

    def ensure_usable(self) -> None:
        self._backend()

    def describe(self) -> str:
        usable, description = keyring_status()
        return f"keyring: {description}" if usable else f"keyring 不可用 / unavailable: {description}"


class _FileSecrets:
    """The explicit plain-text fallback: one JSON file, mode 0600, refused if others can read it."""

    kind: StoreKind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, str]:
        if sys.platform != "win32" and self.path.exists():
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                raise ConfigCorrupt(
                    f"密钥文件 {self.path} 的权限是 {mode:o}，其他用户可读。请运行 chmod 600 {self.path}。 / "
                    f"The secrets file {self.path} has mode {mode:o} and others can read it; run chmod 600 {self.path}."
                )
        data = _read_json(self.path, "密钥文件", "secrets file") or {}
        secrets = data.get("secrets", {})
        if not isinstance(secrets, dict):
            raise ConfigCorrupt(
                f"密钥文件 {self.path} 已损坏（secrets 不是对象）。 / The secrets file {self.path} is damaged "
                "('secrets' is not an object)."
            )
        return {str(k): str(v) for k, v in secrets.items()}

    def _save(self, secrets: dict[str, str]) -> None:
        _atomic_write_json(self.path, {"version": _CONFIG_VERSION, "secrets": secrets})

    def get(self, name: str) -> str | None:
        return self._load().get(name)

    def set(self, name: str, key: str) -> None:
        with _locked(self.path):
            secrets = self._load()
            secrets[name] = key
            self._save(secrets)

    def delete(self, name: str) -> None:
        with _locked(self.path):
            secrets = self._load()
            if secrets.pop(name, None) is not None:
                self._save(secrets)

    def ensure_usable(self) -> None:
        self._load()  # a world-readable or damaged file is reported before a new key is written to it

    def describe(self) -> str:
        return f"file: {self.path} (0600)"


# ---------------------------------------------------------------------------------------------------- profiles


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
            raise KeyStoreError(f"配置 {self.name!r} 没有关联密钥库 / profile {self.name!r} has no key store")
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
                f"{SECRET_STORE_ENV} 只能是 keyring 或 file，而不是 {chosen!r}。 / "
                f"{SECRET_STORE_ENV} must be keyring or file, not {chosen!r}."
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
        data = _read_json(self.path, "配置文件", "profiles file")
        if data is None:
            return {"version": _CONFIG_VERSION, "active": None, "profiles": {}}
        profiles = data.get("profiles")
        if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
            raise ConfigCorrupt(
                f"配置文件 {self.path} 已损坏（profiles 格式不对）。baicai 不会覆盖它：请修复或移走该文件。 / "
                f"The profiles file {self.path} is damaged ('profiles' has the wrong shape). baicai will not "
                "overwrite it: fix it or move it aside."
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
            where = "系统密钥环 / the OS keyring" if store == "keyring" else str(self.secrets_path)
            raise KeyStoreError(
                f"配置 {name!r} 的密钥在 {where} 中找不到（可能已被删除）。请运行 `baicai key add {name}` 重新添加。 / "
                f"The key of profile {name!r} is missing from {where}; run `baicai key add {name}` to add it again."
            )
        return key

    def _not_found(self, name: str, data: dict[str, Any]) -> ProfileNotFound:
        names = ", ".join(sorted(data["profiles"])) or "（无 / none）"
        return ProfileNotFound(
            f"没有名为 {name!r} 的配置；现有：{names}。用 `baicai key add {name}` 添加。 / "
            f"no profile named {name!r}; existing: {names}. Add it with `baicai key add {name}`."
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
            raise KeyStoreError(f"--store 只能是 keyring 或 file / --store must be keyring or file, not {kind!r}")
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
            raise KeyStoreError(f"--store 只能是 keyring 或 file / --store must be keyring or file, not {kind!r}")
        self._stores[kind].ensure_usable()

    @property
    def backend_description(self) -> str:
        """Where new secrets go, in words (imports keyring when that is the store)."""
        return self._stores[self.secret_store].describe()


# ---------------------------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Credentials:
    """What a client will use, and where each value came from. ``repr`` shows the key masked."""

    key: str = field(repr=False)
    key_source: str  # "argument" | "BAICAI_API_KEY" | "profile:NAME"
    base_url: str
    base_url_source: str  # "argument" | "BAICAI_BASE_URL" | "profile:NAME" | "default"
    tier: Tier = "unknown"
    profile: str | None = None
    raw_base_url: str = ""
    base_url_changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def masked(self) -> str:
        return mask_key(self.key)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)

    def __repr__(self) -> str:
        return (
            f"Credentials(key={self.masked!r}, key_source={self.key_source!r}, base_url={self.base_url!r}, "
            f"base_url_source={self.base_url_source!r}, tier={self.tier!r}, profile={self.profile!r})"
        )


def missing_key_message() -> str:
    """The error when no key is found: the three places, and what to do."""
    lines = [
        "找不到白菜GPT 的 API 密钥。已依次查找：1) 参数 api_key=；2) 环境变量 BAICAI_API_KEY；"
        "3) 当前配置（baicai key use）。请运行 `baicai key add NAME` 保存密钥，或设置 BAICAI_API_KEY；"
        "没有密钥时可用 `baicai demo` 离线体验。",
        "No BaicaiGPT API key found. Looked in: 1) the api_key= argument; 2) the BAICAI_API_KEY environment variable; "
        "3) the active profile (baicai key use). Run `baicai key add NAME` to save a key, or set BAICAI_API_KEY; "
        "without a key, `baicai demo` runs offline.",
    ]
    if os.environ.get("OPENAI_API_KEY", "").strip():
        lines.append(
            "注意：已设置 OPENAI_API_KEY，但 baicai 不读取它（以免把 OpenAI 密钥发给中转站）。 / "
            "Note: OPENAI_API_KEY is set, but baicai does not read it (so an OpenAI key is never sent to the relay)."
        )
    return " / ".join(lines[:2]) + ("\n" + lines[2] if len(lines) > 2 else "")


def _env_tier() -> Tier:
    """``$BAICAI_TIER`` (free|paid) for a key that has no profile, e.g. one given in ``BAICAI_API_KEY``."""
    value = os.environ.get("BAICAI_TIER", "").strip().lower()
    return cast(Tier, value) if value in ("free", "paid") else "unknown"


def resolve_credentials(
    api_key: str | None = None,
    base_url: str | None = None,
    profile: str | None = None,
    *,
    store: KeyStore | None = None,
    warn: bool = True,
) -> Credentials:
    """Pick key and base URL, record their sources, and collect warnings (emitted as ``BaicaiConfigWarning``
    unless ``warn=False``; they are also in ``Credentials.warnings`` for ``doctor``).

    Key: ``api_key`` > ``$BAICAI_API_KEY`` > profile ``profile`` (else the active one). Base URL: ``base_url`` >
    ``$BAICAI_BASE_URL`` > the profile's > the relay's default. The profile in play is ``profile`` when named,
    else the one whose fingerprint matches the key, else (key from a profile) the active one: a profile's base URL
    and tier describe *its* key, so they are not applied to a different key.
    """
    found: list[str] = []
    key_source: str
    chosen: Profile | None = None
    keystore = store

    def keys() -> KeyStore:
        nonlocal keystore
        if keystore is None:
            keystore = KeyStore()
        return keystore

    env_key = os.environ.get("BAICAI_API_KEY", "").strip()
    if api_key is not None and api_key.strip():
        key, key_source = _clean_key(api_key), "argument"
    elif env_key:
        key, key_source = _clean_key(env_key), "BAICAI_API_KEY"
    else:
        chosen = keys().get(profile) if profile else keys().active()
        if chosen is None:
            raise MissingKeyError(missing_key_message())
        key, key_source = chosen.secret(), f"profile:{chosen.name}"

    if chosen is None:
        try:
            chosen = keys().get(profile) if profile else keys().find_fingerprint(key_fingerprint(key))
        except ConfigCorrupt:
            if profile:
                raise
            chosen = None  # the key was given outright; a damaged config only costs us the tier

    env_base = os.environ.get("BAICAI_BASE_URL", "").strip()
    if base_url is not None and base_url.strip():
        raw, base_source = base_url, "argument"
    elif env_base:
        raw, base_source = env_base, "BAICAI_BASE_URL"
    elif chosen is not None and chosen.base_url:
        raw, base_source = chosen.base_url, f"profile:{chosen.name}"
    else:
        raw, base_source = DEFAULT_BASE_URL, "default"
    try:
        normalised, changes = normalise_base_url(raw)
    except ValueError as exc:
        raise KeyStoreError(f"{exc}（来源 / from: {base_source}）") from None
    if changes:
        found.append(format_changes(raw, normalised, changes))

    openai_base = os.environ.get("OPENAI_BASE_URL", "").strip() or os.environ.get("OPENAI_API_BASE", "").strip()
    if openai_base:
        try:
            other = normalise_base_url(openai_base)[0]
        except ValueError:
            other = openai_base
        if other != normalised:
            found.append(
                f"环境变量 OPENAI_BASE_URL={openai_base} 与 baicai 使用的 {normalised} 不同；baicai 不采用它。"
                "其他读取 OPENAI_BASE_URL 的工具会连到那里。 / "
                f"OPENAI_BASE_URL={openai_base} differs from the base URL baicai uses ({normalised}); baicai ignores it, "
                "but other tools that read it will go there."
            )
    if is_openai_url(normalised):
        found.append(
            f"API_BASE 指向 OpenAI 官方 ({normalised})：白菜GPT 的 baicai- 密钥在那里无效。请改为 {DEFAULT_BASE_URL}。 / "
            f"the base URL points at OpenAI ({normalised}); a baicai- key is not valid there. Use {DEFAULT_BASE_URL}."
        )
    found.extend(key_warnings(key, normalised))

    if warn:
        level = _user_stacklevel()
        for message in found:
            warnings.warn(message, BaicaiConfigWarning, stacklevel=level)
    return Credentials(
        key=key,
        key_source=key_source,
        base_url=normalised,
        base_url_source=base_source,
        tier=chosen.tier if chosen is not None and chosen.tier != "unknown" else _env_tier(),
        profile=chosen.name if chosen is not None else None,
        raw_base_url=raw,
        base_url_changes=tuple(changes),
        warnings=tuple(found),
    )
