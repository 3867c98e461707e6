"""Models, families, tier availability, per-tier hourly limits and CNY prices: one place.

The data ships in ``data/catalog.json`` (from RELAY.md). When the relay changes prices or adds a model, users
drop a ``catalog.json`` of the same shape in the config dir; its entries override or extend the shipped ones,
key by key, without a new release.

A model the catalogue does not know is never priced at 0: its price is ``None`` and callers show "unknown".
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Catalog",
    "ChatModel",
    "ImageModel",
    "Limits",
    "Tier",
    "load_catalog",
    "family_of",
    "encoding_name_for",
]

Tier = Literal["free", "paid", "unknown"]


@dataclass(frozen=True)
class Limits:
    """Hourly budget of one family on one tier. ``None`` means no cap."""

    requests_per_hour: int | None
    tokens_per_hour: int | None


@dataclass(frozen=True)
class ChatModel:
    name: str
    family: str
    prompt_per_1k: float
    completion_per_1k: float
    free: bool
    context: int | None
    encoding: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """CNY for a request, unrounded (round only for display: sums must stay exact to the fen)."""
        return (prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k) / 1000.0


@dataclass(frozen=True)
class ImageModel:
    name: str
    family: str
    free: bool
    prices: dict[str, dict[str, float]]
    """quality -> size -> CNY per image. dall-e-2 has one quality, ``standard``."""

    def price(self, size: str | None = None, quality: str | None = None) -> float | None:
        size = size or "1024x1024"
        table = self.prices.get(quality or "standard") or self.prices.get("standard") or {}
        return table.get(size.replace("×", "x"))


_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


def family_of(model: str) -> str | None:
    """The quota family of a model name, also for models the catalogue does not list (newer gpt-4o…)."""
    m = model.lower()
    if m.startswith("gpt-3.5"):
        return "gpt-3.5"
    if m.startswith(("gpt-4", "chatgpt-4", "gpt-5", "o1", "o3", "o4")):
        return "gpt-4"
    if m.startswith("dall-e-3"):
        return "dall-e-3"
    if m.startswith("dall-e-2"):
        return "dall-e-2"
    return None


def encoding_name_for(model: str) -> str:
    """tiktoken encoding for a model: o200k for gpt-4o and later, else cl100k (every model the relay lists)."""
    return "o200k_base" if model.lower().startswith(_O200K_PREFIXES) else "cl100k_base"


@dataclass(frozen=True)
class Catalog:
    chat_models: dict[str, ChatModel]
    image_models: dict[str, ImageModel]
    limits: dict[str, dict[str, Limits | None]]
    """family -> tier ("free"/"paid") -> limits; ``None`` where the tier may not use the family at all."""
    unsupported: frozenset[str]
    default_max_tokens: int
    overridden_from: Path | None = None

    def chat(self, model: str) -> ChatModel | None:
        return self.chat_models.get(model)

    def image(self, model: str) -> ImageModel | None:
        return self.image_models.get(model)

    def family(self, model: str) -> str | None:
        known = self.chat_models.get(model) or self.image_models.get(model)
        return known.family if known else family_of(model)

    def limits_for(self, family: str, tier: Tier) -> Limits | None:
        """The hourly limits of ``family`` on ``tier``; an unknown tier is treated as free (the stricter one)."""
        per_tier = self.limits.get(family, {})
        return per_tier.get("free" if tier == "unknown" else tier)

    def allowed_on_free(self, model: str) -> bool | None:
        known = self.chat_models.get(model) or self.image_models.get(model)
        return known.free if known else None

    def is_image(self, model: str) -> bool:
        return model in self.image_models or (model not in self.chat_models
                                              and (family_of(model) or "").startswith("dall-e"))

    def free_alternatives(self, model: str) -> tuple[tuple[str, ...], bool]:
        """What a free key may use instead of ``model``, and whether those are of its own family.

        Its family's free models first (free gpt-4 means gpt-4-0125-preview…, not gpt-4), else free models of the
        same kind (chat for chat, images for images); none when the free tier has no model of that kind (DALL·E).
        Read from the catalogue, so a user's ``catalog.json`` changes the suggestions too."""
        family = self.family(model)
        pool: list[ChatModel | ImageModel] = [
            *(self.image_models.values() if self.is_image(model) else self.chat_models.values())]
        usable = [m for m in pool if m.free and m.name != model and self.limits_for(m.family, "free") is not None]
        same = tuple(m.name for m in usable if m.family == family)
        if same:
            return same, True
        return tuple(m.name for m in usable), False

    def free_models(self, family: str) -> tuple[str, ...] | None:
        """The models of ``family`` a free key may use, or None when the free tier may use all of them (or none)."""
        every: list[ChatModel | ImageModel] = [*self.chat_models.values(), *self.image_models.values()]
        members = [m for m in every if m.family == family]
        free = tuple(m.name for m in members if m.free)
        if not free or len(free) == len(members) or self.limits_for(family, "free") is None:
            return None
        return free


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse(raw: dict[str, Any], source: Path | None) -> Catalog:
    chat = {
        name: ChatModel(
            name=name,
            family=spec["family"],
            prompt_per_1k=float(spec["prompt"]),
            completion_per_1k=float(spec["completion"]),
            free=bool(spec.get("free", False)),
            context=spec.get("context"),
            encoding=spec.get("encoding") or encoding_name_for(name),
        )
        for name, spec in raw.get("chat_models", {}).items()
    }
    images = {
        name: ImageModel(name=name, family=spec["family"], free=bool(spec.get("free", False)), prices=spec["prices"])
        for name, spec in raw.get("image_models", {}).items()
    }
    limits: dict[str, dict[str, Limits | None]] = {}
    for family, spec in raw.get("families", {}).items():
        limits[family] = {
            tier: (Limits(v.get("requests_per_hour"), v.get("tokens_per_hour")) if v is not None else None)
            for tier, v in spec.get("limits", {}).items()
        }
    return Catalog(
        chat_models=chat,
        image_models=images,
        limits=limits,
        unsupported=frozenset(raw.get("unsupported_models", [])),
        default_max_tokens=int(raw.get("default_max_tokens", 1024)),
        overridden_from=source,
    )


class CatalogError(ValueError):
    pass


@lru_cache(maxsize=8)
def _load(override: Path | None, mtime: float | None) -> Catalog:
    shipped = json.loads(resources.files("baicai_sdk").joinpath("data/catalog.json").read_text("utf-8"))
    if override is None:
        return _parse(shipped, None)
    try:
        extra = json.loads(override.read_text("utf-8"))
        return _parse(_merge(shipped, extra), override)
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(
            f"价目表覆盖文件无法读取：{override}（{exc}）。请修正或删除它。 / "
            f"The catalogue override {override} cannot be read ({exc}); fix or remove it."
        ) from exc


_recent: tuple[float, str, Catalog] | None = None
_RECHECK_SECONDS = 1.0


def load_catalog(*, fresh: bool = False) -> Catalog:
    """The shipped catalogue with the user's ``catalog.json`` (config dir) applied, cached until that file changes.

    Called for every metered request: the override file is looked at no more than once a second, unless ``fresh``.
    """
    global _recent
    from ._paths import config_dir

    now = time.monotonic()
    home = os.environ.get("BAICAI_HOME", "")
    recent = _recent
    if not fresh and recent is not None and recent[1] == home and now - recent[0] < _RECHECK_SECONDS:
        return recent[2]
    override = config_dir() / "catalog.json"
    try:
        catalog = _load(override, override.stat().st_mtime)
    except FileNotFoundError:
        catalog = _load(None, None)
    _recent = (now, home, catalog)
    return catalog
