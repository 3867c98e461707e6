"""Where secrets live: the OS keyring (default) or the explicit 0600 file fallback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from .._text import Text, tr
from .configfile import _CONFIG_VERSION, _atomic_write_json, _locked, _read_json
from .errors import ConfigCorrupt, NoKeyringBackend

SERVICE_NAME = "baicai"
SECRET_STORE_ENV = "BAICAI_SECRET_STORE"
StoreKind = Literal["keyring", "file"]


def keyring_status() -> tuple[bool, str]:
    """(usable, description) of the OS keyring backend — imports keyring, so call it only when needed."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception as exc:  # pragma: no cover - keyring is a dependency, but a broken install happens
        return False, f"keyring cannot be imported: {type(exc).__name__}"  # named like a backend: one language
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if isinstance(backend, fail.Keyring):
        return False, name
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return False, name
    if type(backend).__module__ == "keyring.backends.null":
        return False, name
    return True, name


def keyring_in_words() -> tuple[bool, Text]:
    """(usable, the keyring in words) for people: a backend's class name (``keyring.backends.fail.Keyring``) means
    nothing to most users, so a working one is named by its short name and a missing one not at all."""
    usable, description = keyring_status()
    if usable:
        short = description.removeprefix("keyring.backends.").removesuffix(".Keyring")
        return True, Text(f"系统密钥环（{short}）", f"the OS keyring ({short})")
    return False, Text("本机没有可用的系统密钥环", "no OS keyring on this machine")


def _fallback_advice(path: Path) -> Text:
    return (
        Text(f"可改用文件存储：设置环境变量 {SECRET_STORE_ENV}=file，或运行 `baicai key add NAME --store file`；密钥将以明文保存在 {path}（权限 0600，仅本人可读）。也可安装系统密钥环（如 gnome-keyring、KWallet）。",
             f"To keep keys in a file instead, set {SECRET_STORE_ENV}=file or run `baicai key add NAME --store file`: the key is then stored in plain text in {path} (mode 0600, readable only by you). Or install an OS keyring (e.g. gnome-keyring, KWallet).")
    )


class _KeyringSecrets:
    kind: StoreKind = "keyring"

    def __init__(self, fallback_path: Path) -> None:
        self._fallback_path = fallback_path

    def _backend(self) -> Any:
        usable, _ = keyring_status()
        if not usable:
            raise NoKeyringBackend(
                # In words: keyring's class name (keyring.backends.fail.Keyring) tells a user nothing; doctor names it.
                Text("本机没有可用的系统密钥环。", "This machine has no usable OS keyring. ")
                + _fallback_advice(self._fallback_path)
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
                Text(f"系统密钥环出错（{type(exc).__name__}），可能被锁定或不可用。",
                     f"The OS keyring failed ({type(exc).__name__}); it may be locked or unavailable. ") + _fallback_advice(self._fallback_path)
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
        """In words, for people: a backend's Python class name (``keyring.backends.fail.Keyring``) means nothing
        to most users, so it is named only by its short name when it works, and not at all when it does not."""
        usable, words = keyring_in_words()
        if usable:
            return str(words)
        return tr(f"{words.zh}；可改存到文件 {self._fallback_path}（0600，仅本人可读）：设置 "
                  f"{SECRET_STORE_ENV}=file，或 baicai key add NAME --store file",
                  f"{words.en}; keys can be kept in the file {self._fallback_path} instead "
                  f"(mode 0600, readable only by you): set {SECRET_STORE_ENV}=file, or use "
                  "`baicai key add NAME --store file`")


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
                    Text(f"密钥文件 {self.path} 的权限是 {mode:o}，其他用户可读。请运行 chmod 600 {self.path}。",
                         f"The secrets file {self.path} has mode {mode:o} and others can read it; run chmod 600 {self.path}.")
                )
        data = _read_json(self.path, Text("密钥文件", "secrets file")) or {}
        secrets = data.get("secrets", {})
        if not isinstance(secrets, dict):
            raise ConfigCorrupt(
                Text(f"密钥文件 {self.path} 已损坏（secrets 不是对象）。",
                     f"The secrets file {self.path} is damaged ('secrets' is not an object).")
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
        return tr(f"文件 {self.path}（0600，仅本人可读）", f"the file {self.path} (mode 0600, readable only by you)")
