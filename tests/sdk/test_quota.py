"""The predictor as pure logic: request description, tiers, limits, sliding-window retry times, reasons."""

from __future__ import annotations

import pytest

from baicai_sdk._catalog import load_catalog
from baicai_sdk._quota import Exhaustion, RequestInfo, Window, decide, describe_request, format_duration
from baicai_sdk._tokens import count_chat

CHAT = "/v1/chat/completions"
NOW = 1_800_000_000.0


def chat_info(model: str = "gpt-3.5-turbo", max_tokens: int | None = 50, content: str = "你好") -> RequestInfo:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return describe_request(CHAT, body)


def test_describe_chat_counts_prompt_and_bounds_completion() -> None:
    messages = [{"role": "system", "content": "简洁"}, {"role": "user", "content": "Hello 世界", "name": "bob"}]
    info = describe_request(CHAT, {"model": "gpt-4", "messages": messages, "max_tokens": 100, "n": 2, "stream": True})
    assert info.endpoint == "chat" and info.family == "gpt-4" and info.stream
    assert info.prompt_tokens == count_chat(messages, "gpt-4")
    assert info.max_completion_tokens == 200 and info.max_tokens_given
    newer = describe_request(CHAT, b'{"model": "gpt-4o", "messages": [], "max_completion_tokens": 7}')
    assert newer.max_completion_tokens == 7 and newer.family == "gpt-4" and newer.prompt_tokens == 3


def test_describe_uses_catalogue_default_capped_by_context() -> None:
    info = describe_request(CHAT, {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})
    assert info.max_completion_tokens == load_catalog().default_max_tokens == 1024
    assert not info.max_tokens_given
    long = describe_request(CHAT, {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "字" * 3500}]})
    assert long.prompt_tokens + long.max_completion_tokens == 4096  # the 4k context leaves less than 1024


def test_describe_images_and_costs() -> None:
    info = describe_request("/v1/images/generations", {"model": "dall-e-3", "prompt": "白菜", "n": 1,
                                                       "size": "1792x1024", "quality": "hd"})
    assert (info.endpoint, info.family, info.images, info.size, info.quality) == ("images", "dall-e-3", 1, "1792x1024", "hd")
    assert info.estimated_cost() == pytest.approx(1.2)
    chat = chat_info("gpt-4", max_tokens=1000)
    assert chat.estimated_cost() == pytest.approx((chat.prompt_tokens + 1000) * 0.5 / 1000)
    assert chat.minimum_cost() == pytest.approx(chat.prompt_tokens * 0.5 / 1000)
    assert chat_info("my-new-model").estimated_cost() is None  # unknown price is None, never 0


def test_an_unknown_tier_is_judged_by_the_limits_both_tiers_share_and_warned_past_the_free_ones() -> None:
    d = decide(chat_info(), tier="unknown", tier_source="unknown", ip_window=Window(0, 0), key_window=Window(0, 0), now=NOW)
    assert d.kind == "allow" and d.limits is not None and d.limits.requests_per_hour == 1000 and d.notes == ()
    # Past the free tier's 60: a paying user must not be refused for it; the relay's 40020 would teach "free".
    entries = [(NOW - 3000 + i, 100) for i in range(60)]
    d = decide(chat_info(), tier="unknown", tier_source="unknown", ip_window=Window(60, 6000, entries),
               key_window=Window(60, 6000, entries), now=NOW)
    assert d.kind == "allow" and "past the free tier's hourly limit" in d.notes[0]
    entries = [(NOW - 3000 + i, 100) for i in range(1000)]
    d = decide(chat_info(), tier="unknown", tier_source="unknown", ip_window=Window(1000, 6000, entries),
               key_window=Window(1000, 6000, entries), now=NOW)
    assert d.kind == "wait" and "tier unknown (judged by the limits both tiers share)" in d.reason_en


def test_free_request_limit_waits_for_the_oldest_entry() -> None:
    entries = [(NOW - 3000 + i, 100) for i in range(60)]
    d = decide(chat_info(), tier="free", tier_source="learned", ip_window=Window(60, 6000, entries),
               key_window=Window(60, 6000, entries), now=NOW)
    assert d.kind == "wait"
    assert d.retry_at == NOW - 3000 + 3600 and d.wait_seconds == 600
    assert "60/60" in d.reason_zh and "60/60 gpt-3.5 requests" in d.reason_en
    assert "free tier" in d.reason_en and "10 min 0 s" in d.reason_en
    assert str(d.message()).index("免费") < str(d.message()).index("/ ")


def test_token_limit_frees_when_enough_tokens_leave() -> None:
    info = chat_info(max_tokens=1000)
    need = info.estimated_tokens
    entries = [(NOW - 3500, 3000), (NOW - 2000, 3000), (NOW - 100, 3500)]
    d = decide(info, tier="free", tier_source="configured", ip_window=Window(3, 9500, entries),
               key_window=Window(3, 9500, entries), now=NOW)
    assert d.kind == "wait"
    excess = 9500 + need - 10000
    assert excess <= 3000
    assert d.retry_at == NOW - 3500 + 3600  # the first entry alone frees enough
    assert "tokens" in d.reason_en


def test_refusals() -> None:
    empty = Window(0, 0)
    paid_only = decide(chat_info("gpt-4"), tier="free", tier_source="configured", ip_window=empty, key_window=empty,
                       now=NOW)
    # the free tier's own gpt-4 models, not a gpt-3.5 (test_free_tier_wording.py checks every paid-only model)
    assert paid_only.kind == "refuse" and "gpt-4-0125-preview" in paid_only.reason_en
    assert paid_only.alternatives[0] == "gpt-4-0125-preview" and "gpt-3.5-turbo" not in paid_only.reason_en
    # A *learned* free tier may be stale (a top-up upgrades the key; 40050 costs nothing): let the relay answer.
    learned = decide(chat_info("gpt-4"), tier="free", tier_source="learned", ip_window=empty, key_window=empty, now=NOW)
    assert learned.kind == "allow" and learned.limits is not None and learned.limits.requests_per_hour == 200
    image = describe_request("/v1/images/generations", {"model": "dall-e-3", "prompt": "x"})
    assert decide(image, tier="free", tier_source="configured", ip_window=empty, key_window=empty, now=NOW).kind == "refuse"
    too_big = chat_info("gpt-4-0125-preview", max_tokens=2000)
    d = decide(too_big, tier="free", tier_source="configured", ip_window=empty, key_window=empty, now=NOW)
    assert d.kind == "refuse" and "1000" in d.reason_en
    unsupported = decide(chat_info("gpt-4-32k"), tier="paid", tier_source="configured", ip_window=empty,
                         key_window=empty, now=NOW)
    assert unsupported.kind == "refuse"
    entries = [(NOW - 100, 10)]
    long_wait = decide(chat_info("gpt-4-0125-preview"), tier="free", tier_source="configured",
                       ip_window=Window(1, 10, entries), key_window=Window(1, 10, entries), now=NOW, max_wait=60)
    assert long_wait.kind == "refuse" and "maximum wait" in long_wait.reason_en


def test_default_max_tokens_never_reserves_more_than_the_budget() -> None:
    info = chat_info("gpt-4-0125-preview", max_tokens=None)  # 1024 default > free gpt-4's 1000 tokens/hour
    d = decide(info, tier="free", tier_source="configured", ip_window=Window(0, 0), key_window=Window(0, 0), now=NOW)
    assert d.kind == "allow" and d.request_tokens == 1000


def test_unknown_tier_with_paid_only_model_uses_paid_limits() -> None:
    entries = [(NOW - 10 * i, 5) for i in range(5)]
    d = decide(chat_info("gpt-4"), tier="unknown", tier_source="unknown", ip_window=Window(5, 25, entries),
               key_window=Window(5, 25, entries), now=NOW)
    assert d.kind == "allow" and d.limits is not None and d.limits.requests_per_hour == 200


def test_paid_tier_has_no_token_cap_and_counts_requests_per_key_and_ip() -> None:
    entries = [(NOW - 3599 + i, 1) for i in range(200)]
    ip = Window(200, 200, entries)
    d = decide(chat_info("gpt-4"), tier="paid", tier_source="configured", ip_window=ip, key_window=Window(0, 0), now=NOW)
    assert d.kind == "wait" and d.scope == "ip" and d.wait_seconds == pytest.approx(1.0)


def test_exhaustion_reported_by_relay_makes_the_predictor_conservative() -> None:
    # We counted 10 requests, yet the relay said 40020: someone else on this IP used the other 50.
    entries = [(NOW - 1000 + i, 10) for i in range(10)]
    ex = Exhaustion(at=NOW - 500, kind="requests", local_requests=10, local_tokens=100, code=40020)
    d = decide(chat_info(), tier="free", tier_source="learned", ip_window=Window(10, 100, entries),
               key_window=Window(10, 100, entries), now=NOW, exhaustions=[ex])
    assert d.kind == "wait" and d.retry_at == NOW - 1000 + 3600
    assert "another device" in d.reason_en
    # With none of our own rows to free room, wait until the hour after the relay's answer.
    d2 = decide(chat_info(), tier="free", tier_source="learned", ip_window=Window(0, 0), key_window=Window(0, 0),
                now=NOW, exhaustions=[Exhaustion(NOW - 500, "requests", 0, 0, 40020)])
    assert d2.kind == "wait" and d2.retry_at == NOW - 500 + 3600
    # Once that hour has passed the normal limits are back.
    d3 = decide(chat_info(), tier="free", tier_source="learned", ip_window=Window(0, 0), key_window=Window(0, 0),
                now=NOW + 3200, exhaustions=[Exhaustion(NOW - 500, "requests", 0, 0, 40020)])
    assert d3.kind == "allow"


def test_format_duration() -> None:
    assert format_duration(432) == ("7 分 12 秒", "7 min 12 s")
    assert format_duration(5) == ("5 秒", "5 s")
    assert format_duration(3700) == ("1 小时 1 分", "1 h 1 min")
