"""Which key and base URL a client ends up using, and where each came from."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import cast

from .._catalog import Tier
from .._text import Text
from .._urls import DEFAULT_BASE_URL, format_changes, is_openai_url, normalise_base_url
from .errors import BaicaiConfigWarning, ConfigCorrupt, KeyStoreError, MissingKeyError, _user_stacklevel
from .masking import _clean_key, key_fingerprint, key_warnings, mask_key
from .profiles import KeyStore, Profile


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
    base_url_changes: tuple[Text, ...] = ()
    warnings: tuple[Text, ...] = ()

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


def missing_key_message(key_argument: str | None = "api_key=") -> Text:
    """The error when no key is found: the places looked in, and what to do. ``key_argument`` is how the caller
    takes a key outright, listed first; None for a caller that takes none (``baicai sidecar`` has no key option:
    naming the SDK's ``api_key=`` there sent people looking for one)."""
    places = [Text("环境变量 BAICAI_API_KEY", "the BAICAI_API_KEY environment variable"),
              Text("当前配置（baicai key use）", "the active profile (baicai key use)")]
    if key_argument:
        places.insert(0, Text(f"参数 {key_argument}", f"the {key_argument} argument"))
    message = Text(
        "找不到白菜GPT 的 API 密钥。已依次查找：" + "；".join(f"{i}) {p.zh}" for i, p in enumerate(places, 1))
        + "。请运行 `baicai key add NAME` 保存密钥，或设置 BAICAI_API_KEY；没有密钥时可用 `baicai demo` 离线体验。",
        "No BaicaiGPT API key found. Looked in: " + "; ".join(f"{i}) {p.en}" for i, p in enumerate(places, 1))
        + ". Run `baicai key add NAME` to save a key, or set BAICAI_API_KEY; without a key, `baicai demo` runs "
        "offline.",
    )
    if os.environ.get("OPENAI_API_KEY", "").strip():
        message += Text("\n注意：已设置 OPENAI_API_KEY，但 baicai 不读取它（以免把 OpenAI 密钥发给中转站）。",
                        "\nNote: OPENAI_API_KEY is set, but baicai does not read it (so an OpenAI key is never sent to "
                        "the relay).")
    return message


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
    key_argument: str | None = "api_key=",
) -> Credentials:
    """Pick key and base URL, record their sources, and collect warnings (emitted as ``BaicaiConfigWarning``
    unless ``warn=False``; they are also in ``Credentials.warnings`` for ``doctor``).

    Key: ``api_key`` > ``$BAICAI_API_KEY`` > profile ``profile`` (else the active one). Base URL: ``base_url`` >
    ``$BAICAI_BASE_URL`` > the profile's > the relay's default. The profile in play is ``profile`` when named,
    else the one whose fingerprint matches the key, else (key from a profile) the active one: a profile's base URL
    and tier describe *its* key, so they are not applied to a different key.

    ``key_argument``: how the caller's user passes ``api_key`` (a command's option), named in the error when no
    key is found; None when they cannot (a command with no key option).
    """
    found: list[Text] = []
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
            raise MissingKeyError(missing_key_message(key_argument))
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
        reason = exc.args[0] if isinstance(exc.args[0], Text) else Text(str(exc), str(exc))
        raise KeyStoreError(Text(f"{reason.zh}（来源：{base_source}）", f"{reason.en} (from: {base_source})")) from None
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
                Text(f"环境变量 OPENAI_BASE_URL={openai_base} 与 baicai 使用的 {normalised} 不同；baicai 不采用它。其他读取 OPENAI_BASE_URL 的工具会连到那里。",
                     f"OPENAI_BASE_URL={openai_base} differs from the base URL baicai uses ({normalised}); baicai ignores it, but other tools that read it will go there.")
            )
    if is_openai_url(normalised):
        found.append(
            Text(f"API_BASE 指向 OpenAI 官方 ({normalised})：白菜GPT 的 baicai- 密钥在那里无效。请改为 {DEFAULT_BASE_URL}。",
                 f"the base URL points at OpenAI ({normalised}); a baicai- key is not valid there. Use {DEFAULT_BASE_URL}.")
        )
    found.extend(key_warnings(key, normalised))

    if warn:
        level = _user_stacklevel()
        for message in found:
            warnings.warn(str(message), BaicaiConfigWarning, stacklevel=level)
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
