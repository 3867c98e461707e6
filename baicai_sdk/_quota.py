"""The quota predictor: may this request be sent now, later, or never?

Pure logic, no I/O: :class:`~baicai_sdk._meter.Meter` reads the window from the ledger and calls :func:`decide`
inside the same SQLite transaction that records the reservation, so concurrent processes cannot both take the
last slot.

The relay's hourly limits are per key *and* per IP (RELAY.md), and the README does not say whether the hour is
sliding or fixed. We treat it as a sliding 3600 s window — the stricter reading — as the emulator documents it: a
request is admitted when both the requesting key's own window and the IP's window (every local key's requests in
the family) are below the limits of *the requesting key's tier*. So a paid key is judged against 1,000 gpt-3.5
requests however many a free key on the same machine sent, and a free key against 60 whatever a paid key sent.

Requests in flight count with their estimate (prompt + expected completion) until they settle. When a token
window is full only because of such estimates, the decision is a short wait (they settle in seconds), not an hour.

A relay code that says a window is full (40020…) teaches about the key that received it and its tier only: until
an hour has passed, that key's window holds no more than it did then. It never lowers another key's or another
tier's limit (another key learns from its own answer; a refusal costs no quota).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._catalog import Catalog, Limits, Tier, load_catalog
from ._text import Text

QuotaMode = Literal["wait", "raise", "off"]
"""What happens when a request would exceed an hourly limit: wait for the window, raise, or only record (the one
definition: the meter, the metered transport and the clients use it)."""

__all__ = [
    "WINDOW_SECONDS",
    "Decision",
    "DecisionKind",
    "RequestInfo",
    "TierSource",
    "Window",
    "Exhaustion",
    "decide",
    "describe_request",
    "format_duration",
    "INFLIGHT_RETRY",
]

WINDOW_SECONDS = 3600.0
INFLIGHT_RETRY = 1.0
"""Seconds to wait before asking again when only in-flight reservations fill a token window."""

DecisionKind = Literal["allow", "wait", "refuse"]
TierSource = Literal["configured", "learned", "unknown"]
Endpoint = Literal["chat", "completions", "images", "embeddings", "other"]


@dataclass(frozen=True)
class RequestInfo:
    """What the meter needs to know about a request: counts and parameters, never its text."""

    endpoint: Endpoint
    model: str
    family: str | None
    prompt_tokens: int = 0
    max_completion_tokens: int = 0
    """``max_tokens``/``max_completion_tokens`` × ``n``, else the catalogue's default (capped by the context)."""
    max_tokens_given: bool = False
    images: int = 0
    size: str | None = None
    quality: str | None = None
    stream: bool = False
    path: str = ""
    prompt_low: int | None = None
    """When the prompt's count is uncertain (images of unknown size): the fewest tokens it can cost."""
    prompt_high: int | None = None
    """… and the most (None: ``prompt_tokens`` is exact)."""

    @property
    def estimated_tokens(self) -> int:
        """What a reservation holds in the token window until it settles (the prompt at its most)."""
        return (self.prompt_high if self.prompt_high is not None else self.prompt_tokens) + self.max_completion_tokens

    def estimated_cost(self, catalog: Catalog | None = None) -> float | None:
        """CNY for the worst case (every allowed completion token used); None for an unpriced model."""
        catalog = catalog or load_catalog()
        if self.endpoint == "images":
            image = catalog.image(self.model)
            price = image.price(self.size, self.quality) if image else None
            return None if price is None else price * max(self.images, 1)
        chat = catalog.chat(self.model)
        prompt = self.prompt_high if self.prompt_high is not None else self.prompt_tokens
        return chat.cost(prompt, self.max_completion_tokens) if chat else None

    def minimum_cost(self, catalog: Catalog | None = None) -> float | None:
        """CNY if the reply were empty (the prompt alone): the low end of an estimate's range."""
        catalog = catalog or load_catalog()
        if self.endpoint == "images":
            return self.estimated_cost(catalog)
        chat = catalog.chat(self.model)
        return chat.cost(self.prompt_low if self.prompt_low is not None else self.prompt_tokens, 0) if chat else None


def _endpoint_of(path: str) -> Endpoint:
    p = path.rstrip("/")
    if p.endswith("/chat/completions"):
        return "chat"
    if p.endswith("/images/generations"):
        return "images"
    if p.endswith("/embeddings"):
        return "embeddings"
    if p.endswith("/completions"):
        return "completions"
    return "other"


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def describe_request(
    path: str, body: Mapping[str, Any] | bytes | str | None, *, catalog: Catalog | None = None
) -> RequestInfo:
    """Count and classify a request body before it is sent (the transport's step 1).

    Chat: prompt tokens by OpenAI's formula; completion bound from ``max_completion_tokens``/``max_tokens`` times
    ``n``, else the catalogue's ``default_max_tokens`` (1024), never more than the model's context leaves.
    Images: ``n``, ``size``, ``quality``. Nothing of the text is kept.
    """
    from . import _tokens

    catalog = catalog or load_catalog()
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body) if body else None
        except ValueError:
            body = None
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    endpoint = _endpoint_of(path)
    model = str(data.get("model") or "")
    family = catalog.family(model) if model else None
    stream = bool(data.get("stream"))
    n = _int_or_none(data.get("n")) or 1

    if endpoint == "images":
        return RequestInfo(
            endpoint=endpoint,
            model=model or "dall-e-2",  # OpenAI's default image model
            family=family or ("dall-e-2" if not model else None),
            images=max(n, 1),
            size=str(data.get("size") or "1024x1024"),
            quality=str(data.get("quality") or "standard"),
            stream=stream,
            path=path,
        )

    prompt = 0
    spread = (0, 0)
    if model:
        if endpoint == "chat":
            messages = data.get("messages")
            tools = data.get("tools")
            functions = data.get("functions")
            listed = messages if isinstance(messages, Sequence) and not isinstance(messages, str) else ()
            prompt = _tokens.count_chat(
                listed,
                model,
                tools=tools if isinstance(tools, Sequence) else None,
                functions=functions if isinstance(functions, Sequence) else None,
            )
            spread = _tokens.remote_image_spread(listed)
        elif endpoint in ("completions", "embeddings"):
            prompt = _count_plain_input(data.get("prompt" if endpoint == "completions" else "input"), model)

    if endpoint == "embeddings":
        return RequestInfo(endpoint=endpoint, model=model, family=family, prompt_tokens=prompt, stream=False, path=path)

    given = _int_or_none(data.get("max_completion_tokens"))
    if given is None:
        given = _int_or_none(data.get("max_tokens"))
    per_choice = given if given is not None and given >= 0 else catalog.default_max_tokens
    chat = catalog.chat(model)
    if chat is not None and chat.context:
        per_choice = max(0, min(per_choice, chat.context - prompt))
    return RequestInfo(
        endpoint=endpoint,
        model=model,
        family=family,
        prompt_tokens=prompt,
        max_completion_tokens=per_choice * max(n, 1),
        max_tokens_given=given is not None,
        stream=stream,
        path=path,
        prompt_low=prompt - spread[0] if spread != (0, 0) else None,
        prompt_high=prompt + spread[1] if spread != (0, 0) else None,
    )


def _count_plain_input(value: object, model: str) -> int:
    from ._tokens import count_text

    if isinstance(value, str):
        return count_text(value, model)
    if isinstance(value, Sequence):
        total = 0
        for item in value:
            if isinstance(item, str):
                total += count_text(item, model)
            elif isinstance(item, int):
                total += 1  # a token id
            elif isinstance(item, Sequence):
                total += len(item)  # a list of token ids
        return total
    return 0


@dataclass(frozen=True)
class Window:
    """Use of one family's hourly budget as the ledger sees it, for one scope (all local keys, or one key)."""

    requests: int
    tokens: int
    entries: Sequence[tuple[float, int]] = ()
    """(time, tokens) of the counted rows in the window, oldest first; only needed when over a limit."""


@dataclass(frozen=True)
class Exhaustion:
    """The relay said a window was full (40020/40031…) at ``at``; the ledger then counted ``local_*`` in it."""

    at: float
    kind: Literal["requests", "tokens"]
    local_requests: int
    local_tokens: int
    code: int
    key_fp: str | None = None
    """The key that received the code (None: applies to every key, as rows written before schema 2 did)."""
    tier: str | None = None
    """The tier the code speaks of (40020 → free); it never applies to a key of another tier."""
    key_requests: int | None = None
    """What that key alone had in the window then (None: use ``local_*``)."""
    key_tokens: int | None = None

    def applies_to(self, key_fp: str | None, tier: str) -> bool:
        if self.tier is not None and tier in ("free", "paid") and self.tier != tier:
            return False
        return self.key_fp is None or key_fp is None or self.key_fp == key_fp


@dataclass(frozen=True)
class Decision:
    """The predictor's answer, with a reason a person can act on (Chinese, then English)."""

    kind: DecisionKind
    family: str | None
    tier: Tier
    tier_source: TierSource
    reason_zh: str = ""
    reason_en: str = ""
    wait_seconds: float = 0.0
    retry_at: float | None = None
    limits: Limits | None = None
    used_requests: int = 0
    used_tokens: int = 0
    request_tokens: int = 0
    scope: Literal["ip", "key", ""] = ""
    notes: tuple[str, ...] = field(default=())
    inflight: bool = False
    """The window is full only because of reservations still in flight: they settle in seconds."""
    relay_rules: bool = True
    """False when the server is not the relay: no hourly limits apply, the request is only recorded."""
    alternatives: tuple[str, ...] = ()
    """For a model the tier may not use: models it may (from the catalogue), for the error's hint."""
    status: int = 429
    """The HTTP status a refusal is answered with: 429 for a full window, otherwise what the relay itself would
    answer (apps show a 429 as "slow down", which is wrong when waiting cannot help)."""

    @property
    def allowed(self) -> bool:
        return self.kind == "allow"

    def message(self) -> Text:
        if not self.reason_zh and not self.reason_en:
            return Text("允许", "allowed")
        return Text(self.reason_zh, self.reason_en)


_TIER_ZH = {"free": "免费额度", "paid": "付费额度", "unknown": "会员等级未知（按两种会员共有的上限判断）"}
_TIER_EN = {"free": "free tier", "paid": "paid tier", "unknown": "tier unknown (judged by the limits both tiers share)"}


def format_duration(seconds: float) -> tuple[str, str]:
    """(中文, English) such as ("7 分 12 秒", "7 min 12 s")."""
    s = max(0, math.ceil(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} 小时 {m} 分", f"{h} h {m} min"
    if m:
        return f"{m} 分 {sec} 秒", f"{m} min {sec} s"
    return f"{sec} 秒", f"{sec} s"


def _free_after(entries: Iterable[tuple[float, int]], excess: float, weight_tokens: bool, now: float) -> float | None:
    """When enough of the oldest entries have left the sliding window to free ``excess`` requests or tokens."""
    freed = 0
    for ts, tokens in entries:
        freed += tokens if weight_tokens else 1
        if freed >= excess:
            return max(now, ts + WINDOW_SECONDS)
    return None


PAID_ONLY_NOTE = "paid-only model: paid limits assumed"
PAST_FREE_NOTE = ("tier unknown: past the free tier's hourly limit — a free key would be refused (the relay's answer "
                  "tells the tier); not refused here")


def _past(limits: Limits, ip_window: Window, key_window: Window, info: RequestInfo) -> bool:
    """Whether this request goes past ``limits`` (a free key's) in either window."""
    used_requests = max(ip_window.requests, key_window.requests)
    used_tokens = max(ip_window.tokens, key_window.tokens)
    rph, tph = limits.requests_per_hour, limits.tokens_per_hour
    return ((rph is not None and used_requests + 1 > rph)
            or (tph is not None and used_tokens + info.prompt_tokens > tph))


def decide(
    info: RequestInfo,
    *,
    tier: Tier,
    tier_source: TierSource,
    ip_window: Window,
    key_window: Window,
    now: float,
    catalog: Catalog | None = None,
    exhaustions: Sequence[Exhaustion] = (),
    max_wait: float | None = None,
    entries_loader: Any = None,
    pending_loader: Any = None,
    key_fp: str | None = None,
) -> Decision:
    """allow / wait(seconds, reason) / refuse(reason) for ``info`` given the current windows.

    ``entries_loader(scope) -> [(ts, tokens), …]`` fetches the window's rows oldest first, called only when a limit
    is reached (to compute when the sliding window frees enough). ``pending_loader(scope) -> tokens`` tells how
    much of a full token window is held by reservations in flight (then the wait is seconds, not the hour).
    ``max_wait``: a wait longer than this becomes a refusal; ``None`` leaves that to the caller. ``key_fp``: the
    requesting key, so that a relay code another key received does not apply to it.

    The steps: refusals no window can change (:func:`_refused_outright`); the tier whose limits apply
    (:func:`_judging_tier`); a request bigger than the hour (:func:`_never_fits`); what the relay's codes taught
    (:func:`_learned_limits`); the window that binds longest (:func:`_binding_limit`); its wording (:func:`_waiting`).
    """
    catalog = catalog or load_catalog()
    family = info.family
    base = _Base(family, tier, tier_source)
    refused = _refused_outright(info, base, catalog)
    if refused is not None:
        return refused
    if family is None:
        # A model we cannot place in a family has no known limit: let the relay decide.
        return base.decision("allow", notes=("unknown family: not predicted",))
    effective_tier, notes = _judging_tier(info, tier, catalog, ip_window, key_window)
    limits = catalog.limits_for(family, effective_tier)
    if limits is None:
        return base.decision("refuse", status=403, reason_zh=f"{base.tier_zh}不能使用 {family}",
                             reason_en=f"{base.tier_en} cannot use {family}")
    never = _never_fits(info, base, limits)
    if never is not None:
        return never
    request_tokens = info.estimated_tokens
    if limits.tokens_per_hour is not None:
        # Without an explicit max_tokens the completion is a guess: never reserve more than the whole budget.
        request_tokens = min(request_tokens, limits.tokens_per_hour)
    limits_by_scope, exhaustion_until = _learned_limits(limits, exhaustions, now, key_fp, effective_tier)
    worst, inflight_only = _binding_limit(
        (("ip", ip_window), ("key", key_window)), limits_by_scope, request_tokens, now, exhaustion_until,
        entries_loader, pending_loader)
    if worst is None:
        return base.decision("allow", limits=limits, used_requests=ip_window.requests,
                             used_tokens=ip_window.tokens, request_tokens=request_tokens, notes=notes)
    return _waiting(base, worst, inflight_only=inflight_only, exhaustion_until=exhaustion_until, now=now,
                    max_wait=max_wait, limits=limits, ip_window=ip_window, request_tokens=request_tokens,
                    notes=notes)


@dataclass(frozen=True)
class _Base:
    """What every decision for one request says: its family, and the key's tier and where that came from."""

    family: str | None
    tier: Tier
    tier_source: TierSource

    @property
    def tier_zh(self) -> str:
        return _TIER_ZH[self.tier]

    @property
    def tier_en(self) -> str:
        return _TIER_EN[self.tier]

    def decision(self, kind: DecisionKind, **fields: Any) -> Decision:
        return Decision(kind, family=self.family, tier=self.tier, tier_source=self.tier_source, **fields)


def _refused_outright(info: RequestInfo, base: _Base, catalog: Catalog) -> Decision | None:
    """A request no window can let through: a model the relay does not support; a paid-only model for a key the
    user configured as free."""
    if info.model in catalog.unsupported:
        return base.decision("refuse", status=404,  # the relay's 48001
                             reason_zh=f"白菜GPT 不支持模型 {info.model}",
                             reason_en=f"the relay does not support {info.model}")
    if info.family is None or base.tier != "free" or base.tier_source != "configured":
        # Only when the user said so: a *learned* free tier may be out of date (a top-up upgrades the key), and
        # the relay's 40050 costs nothing, so the request goes and the answer tells us.
        return None
    if _model_free(info, catalog):
        return None
    zh, en, alternatives = free_tier_refusal(info.model, catalog)
    return base.decision("refuse", status=403,  # the relay's 40050
                         reason_zh=zh, reason_en=en, alternatives=alternatives)


def free_tier_refusal(model: str, catalog: Catalog) -> tuple[str, str, tuple[str, ...]]:
    """(中文, English, suggested models) for a free key asking for a paid-only ``model``, suggestions from the
    catalogue: its own family's free models (the free tier's gpt-4 is gpt-4-0125-preview…, not gpt-4), else the
    same kind's; for an image model with no free one, that images need a paid key."""
    alternatives, same_family = catalog.free_alternatives(model)
    shown = alternatives[:3]
    more = len(alternatives) > len(shown)
    names_zh = "、".join(shown) + (" 等" if more else "")
    names_en = ", ".join(shown) + (", …" if more else "")
    family = catalog.family(model) or ""
    limits = catalog.limits_for(family, "free") if same_family else None
    rph = limits.requests_per_hour if limits is not None else None
    hourly_zh = f"（每小时 {rph} 次）" if rph is not None else ""
    hourly_en = f" ({rph} request{'s' if rph != 1 else ''} an hour)" if rph is not None else ""
    if same_family:
        pick_zh, pick_en = ("请换用其中之一", "Use one of them") if len(shown) > 1 else ("请换用它", "Use it")
        return (f"免费会员不能使用 {model}：免费会员可用的 {family} 模型{'有' if more else '只有'} {names_zh}{hourly_zh}。"
                f"{pick_zh}，或充值升级为付费会员",
                f"the free tier cannot use {model}: its {family} models are {names_en}{hourly_en}. {pick_en}, "
                "or top up to a paid key", shown)
    if alternatives:
        return (f"免费会员不能使用 {model}，请换用免费模型（如 {names_zh}）或充值升级为付费会员",
                f"the free tier cannot use {model}; use a free model (e.g. {names_en}) or top up to a paid key", shown)
    if catalog.is_image(model):
        return (f"免费会员不能生成图片（{model} 需要付费会员）：充值升级为付费会员后可用",
                f"the free tier cannot make images ({model} needs a paid key): top up to upgrade the key", ())
    return (f"免费会员不能使用 {model}：充值升级为付费会员后可用",
            f"the free tier cannot use {model}: top up to upgrade the key", ())


def _model_free(info: RequestInfo, catalog: Catalog) -> bool:
    """Whether a free key may run the model at all (its family has free limits, and the model is not paid-only)."""
    return (catalog.allowed_on_free(info.model) is not False
            and catalog.limits_for(info.family or "", "free") is not None)


def _judging_tier(info: RequestInfo, tier: Tier, catalog: Catalog, ip_window: Window, key_window: Window
                  ) -> tuple[Tier, tuple[str, ...]]:
    """The tier whose limits judge the request, and a note when it is not the key's own."""
    if tier != "paid" and not _model_free(info, catalog):
        # Only a paid key can run this model at all, so the paid limits are the ones that will apply (the tier is
        # unknown, or learned as free and possibly upgraded since).
        return "paid", (PAID_ONLY_NOTE,)
    if tier == "unknown":
        # Nobody knows the tier: refuse only past a limit both tiers have (the paid one). A limit only the free tier
        # has would refuse a paying user for nothing; past it a free key gets the relay's code (40020…), which costs
        # no quota and teaches the tier.
        free_limits = catalog.limits_for(info.family or "", "free")
        past = free_limits is not None and _past(free_limits, ip_window, key_window, info)
        return "paid", (PAST_FREE_NOTE,) if past else ()
    return tier, ()


def _never_fits(info: RequestInfo, base: _Base, limits: Limits) -> Decision | None:
    """A request bigger than the whole hourly token budget can never be sent: say so now, not after an hour."""
    tph = limits.tokens_per_hour
    if tph is None or info.prompt_tokens + (info.max_completion_tokens if info.max_tokens_given else 0) <= tph:
        return None
    need = info.estimated_tokens
    return base.decision(
        "refuse", limits=limits, request_tokens=need, status=400,
        reason_zh=f"{base.tier_zh}：这个请求约 {need} tokens，超过每小时上限 {tph}，永远无法发送；请缩短对话或减小 max_tokens",
        reason_en=f"{base.tier_en}: this request needs about {need} tokens, over the hourly limit of {tph}, so it can "
                  "never be sent; shorten it or lower max_tokens",
    )


def _learned_limits(limits: Limits, exhaustions: Sequence[Exhaustion], now: float, key_fp: str | None,
                    tier: Tier) -> tuple[dict[str, dict[str, int | None]], float | None]:
    """Each scope's limits after what the relay's codes taught, and until when the latest lesson holds.

    The relay told this key a window was full although we predicted room (the key is used elsewhere too, or another
    machine shares this IP, or the window is fixed): until that hour has passed, what this key had in the window then
    is its whole budget. Codes of another tier or another key teach nothing here."""
    rph, tph = limits.requests_per_hour, limits.tokens_per_hour
    by_scope: dict[str, dict[str, int | None]] = {
        "ip": {"requests": rph, "tokens": tph}, "key": {"requests": rph, "tokens": tph},
    }
    until: float | None = None
    for ex in exhaustions:
        if ex.at + WINDOW_SECONDS <= now or not ex.applies_to(key_fp, tier):
            continue
        until = max(until or 0.0, ex.at + WINDOW_SECONDS)
        scope_limits = by_scope["key" if ex.key_fp is not None else "ip"]
        if ex.kind == "requests" and scope_limits["requests"] is not None:
            held = ex.key_requests if ex.key_requests is not None and ex.key_fp is not None else ex.local_requests
            scope_limits["requests"] = min(scope_limits["requests"], held)
        elif ex.kind == "tokens" and scope_limits["tokens"] is not None:
            held = ex.key_tokens if ex.key_tokens is not None and ex.key_fp is not None else ex.local_tokens
            scope_limits["tokens"] = min(scope_limits["tokens"], held)
    return by_scope, until


_Binding = tuple[float, str, int, int, str]
"""(retry_at, what — requests or tokens, used, limit, scope) of the limit that keeps a request waiting longest."""


def _binding_limit(
    windows: Iterable[tuple[str, Window]], limits_by_scope: Mapping[str, Mapping[str, int | None]],
    request_tokens: int, now: float, exhaustion_until: float | None, entries_loader: Any, pending_loader: Any,
) -> tuple[_Binding | None, bool]:
    """The limit that binds longest (None: every window has room), and whether only in-flight estimates fill it."""
    units = 1  # limits count requests (a DALL·E call with n=2 is one request)
    worst: _Binding | None = None
    inflight_only = True
    for scope, window in windows:
        checks: list[tuple[str, int, int | None, int, bool]] = [
            ("requests", window.requests, limits_by_scope[scope]["requests"], units, False),
            ("tokens", window.tokens, limits_by_scope[scope]["tokens"], request_tokens, True),
        ]
        for what, used, limit, need, by_tokens in checks:
            if limit is None or used + need <= limit:
                continue
            if by_tokens and pending_loader is not None and exhaustion_until is None:
                held = int(pending_loader(scope) or 0)
                if held > 0 and used - held + need <= limit:
                    # Full only because of estimates of requests still in flight: they settle in seconds.
                    retry_at = now + INFLIGHT_RETRY
                    if worst is None or retry_at > worst[0]:
                        worst = (retry_at, what, used, limit, scope)
                    continue
            inflight_only = False
            excess = used + need - limit
            entries = window.entries or (entries_loader(scope) if entries_loader else ())
            freed_at = _free_after(entries, excess, by_tokens, now)
            if freed_at is None:
                # Not enough of our own rows to free it (the budget was spent elsewhere): wait out the hour.
                freed_at = exhaustion_until if exhaustion_until is not None else now + WINDOW_SECONDS
            if worst is None or freed_at > worst[0] or (worst[0] == freed_at and what == "requests"):
                worst = (freed_at, what, used, limit, scope)
    return worst, inflight_only


def _waiting(base: _Base, worst: _Binding, *, inflight_only: bool, exhaustion_until: float | None, now: float,
             max_wait: float | None, limits: Limits, ip_window: Window, request_tokens: int,
             notes: tuple[str, ...]) -> Decision:
    """The wait (or, past ``max_wait``, the refusal) for the binding limit, with a reason a person can act on."""
    retry_at, what, used, limit, scope = worst
    wait = max(0.0, retry_at - now)
    zh_wait, en_wait = format_duration(wait)
    fam, tier_zh, tier_en = base.family, base.tier_zh, base.tier_en
    if inflight_only:
        zh = (f"{tier_zh}：本小时 {fam} tokens 已用 {used}/{limit}，其中含仍在进行的请求的预估用量，"
              f"它们几秒内结算，约 {zh_wait}后重试")
        en = (f"{tier_en}: {used}/{limit} {fam} tokens this hour, counting requests still in flight at their "
              f"estimate; they settle within seconds — retry in {en_wait}")
    elif what == "requests":
        zh = f"{tier_zh}：本小时 {fam} 请求已用 {used}/{limit}，约 {zh_wait}后恢复"
        en = f"{tier_en}: {used}/{limit} {fam} requests used this hour, next slot in {en_wait}"
    else:
        zh = f"{tier_zh}：本小时 {fam} tokens 已用 {used}/{limit}，本次需约 {request_tokens}，约 {zh_wait}后够用"
        en = f"{tier_en}: {used}/{limit} {fam} tokens used this hour, this request needs about {request_tokens}; room in {en_wait}"
    if exhaustion_until is not None:
        zh += "（中转已对此密钥报额度用尽，可能有其他设备共用此 IP 或此密钥）"
        en += " (the relay reported the limit reached for this key; another device may share this IP or key)"
    if scope == "key" and what == "requests":
        zh += "（本密钥）"
        en += " (this key)"
    zh += "；按白菜GPT 中转的每小时限额"
    en += "; by the BaicaiGPT relay's hourly limits"
    kind: DecisionKind = "wait"
    if max_wait is not None and wait > max_wait:
        kind = "refuse"
        mw_zh, mw_en = format_duration(max_wait)
        zh += f"；超过最长等待 {mw_zh}"
        en += f"; longer than the maximum wait of {mw_en}"
    return base.decision(
        kind, reason_zh=zh, reason_en=en, wait_seconds=wait, retry_at=retry_at, limits=limits,
        used_requests=used if what == "requests" else ip_window.requests,
        used_tokens=used if what == "tokens" else ip_window.tokens,
        request_tokens=request_tokens, scope=scope, notes=notes, inflight=inflight_only,
    )
