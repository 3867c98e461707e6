"""What a free key is told when it asks for a model the free tier may not use (newcomer trial, finding 5).

The free tier's gpt-4 is gpt-4-0125-preview and two other -preview models (RELAY.md's table), not ``gpt-4``
itself; DALL·E is not on the free tier at all. The refusal names what the free tier may use instead, read from
the catalogue — never a chat model for an image request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from baicai_sdk import Baicai, BaicaiError
from baicai_sdk._catalog import load_catalog
from baicai_sdk._paths import config_dir
from baicai_sdk._quota import free_tier_refusal

CATALOG = load_catalog(fresh=True)
PAID_ONLY = sorted(m for m, spec in {**CATALOG.chat_models, **CATALOG.image_models}.items() if not spec.free)


def _free_may_use(model: str) -> bool:
    catalog = load_catalog(fresh=True)
    return catalog.allowed_on_free(model) is True and catalog.limits_for(catalog.family(model) or "", "free") is not None


@pytest.mark.parametrize("model", PAID_ONLY)
def test_every_suggestion_is_a_model_the_free_tier_may_use(model: str) -> None:
    zh, en, alternatives = free_tier_refusal(model, CATALOG)
    assert model in zh and model in en and "充值" in zh and "top up" in en
    assert all(_free_may_use(m) for m in alternatives), alternatives
    assert all(m in en for m in alternatives)
    family = CATALOG.family(model)
    same_family_free = [m for m in CATALOG.chat_models.values() if m.family == family and m.free]
    if same_family_free:  # gpt-4 → gpt-4-0125-preview…; gpt-3.5-turbo-16k → gpt-3.5-turbo…
        assert alternatives and {CATALOG.family(m) for m in alternatives} == {family}
    if CATALOG.is_image(model):  # no image model is free: say images need a paid key, suggest no chat model
        assert alternatives == () and "cannot make images" in en and "图片" in zh
        assert not any(m in en for m in CATALOG.chat_models)


def test_gpt4_refusal_names_the_free_gpt4_models_and_their_hourly_limit() -> None:
    zh, en, alternatives = free_tier_refusal("gpt-4", CATALOG)
    assert alternatives[0] == "gpt-4-0125-preview" and "gpt-3.5-turbo" not in en
    assert "its gpt-4 models are gpt-4-0125-preview" in en and "(1 request an hour)" in en
    assert "免费会员可用的 gpt-4 模型只有 gpt-4-0125-preview" in zh and "每小时 1 次" in zh


def test_suggestions_follow_the_users_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """One mechanism, from the catalogue: a user's catalog.json that makes dall-e-2 free changes the hint."""
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "catalog.json").write_text(json.dumps({
        "image_models": {"dall-e-2": {"free": True}},
        "families": {"dall-e-2": {"limits": {"free": {"requests_per_hour": 5, "tokens_per_hour": None}}}},
    }), "utf-8")
    catalog = load_catalog(fresh=True)
    zh, en, alternatives = free_tier_refusal("dall-e-3", catalog)
    assert alternatives == ("dall-e-2",) and "dall-e-2" in en and "gpt-3.5" not in en


def test_the_sdk_error_says_which_models_to_use(emulator: Any) -> None:
    """Over a real socket: the local gate refuses before sending, and message and hint both name the way out."""
    client = Baicai(api_key=emulator.free_key, base_url=emulator.base_url, tier="free", max_retries=0)
    with pytest.raises(BaicaiError) as chat:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert "gpt-4-0125-preview" in str(chat.value) and "gpt-4-0125-preview" in chat.value.hint
    assert "gpt-3.5-turbo" not in str(chat.value) + chat.value.hint
    with pytest.raises(BaicaiError) as image:
        client.images.generate(model="dall-e-3", prompt="白菜", size="1024x1024")
    said = str(image.value) + image.value.hint
    assert "cannot make images" in said and "top up" in said and "gpt-3.5-turbo" not in said
    assert emulator.state.requests == []  # neither was sent
    reply = client.chat.completions.create(model="gpt-4-0125-preview", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=5)
    assert reply.choices  # the suggested model works on the free key


def test_the_relays_own_40050_answer_points_to_the_list_not_to_a_chat_model() -> None:
    """The relay's 40050 does not name the model (it may be an image request): the hint says where the free models
    are listed (`usage windows --tier free`, tested in test_cli_usage) and that images need a paid key."""
    from baicai_sdk._codes import relay_code

    known = relay_code(40050)
    assert known is not None and "gpt-3.5-turbo" not in known.hint_en + known.hint_zh
    assert "`baicai usage windows --tier free`" in known.hint_en and "images need a paid key" in known.hint_en
    assert "`baicai usage windows --tier free`" in known.hint_zh and "图片需付费会员" in known.hint_zh
