"""The relay's documented error codes, as data.

One table, read by the SDK's exception classes, the retry policy, the quota learner, the sidecar's error
answers and the emulator, so that all of them agree on what a code means. Source: the relay's README
(``返回码说明``) and ``shared/RELAY.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._text import Text

__all__ = ["RelayCode", "RELAY_CODES", "relay_code"]

Group = Literal[
    "busy",  # retry with backoff
    "authentication",  # the key is wrong or missing
    "frozen",  # the key is frozen: contact support
    "bad_request",  # the request itself is wrong
    "model",  # the model is not supported
    "endpoint",  # the URL is wrong (often /v1 twice)
    "tier",  # the free tier may not do this
    "rate_limit",  # hourly request limit reached
    "token_limit",  # hourly token limit reached (free tier)
]


@dataclass(frozen=True)
class RelayCode:
    code: int
    name: str
    group: Group
    http_status: int
    """The status the emulator sends when set to "matching status"; also picks the openai parent class."""
    message_zh: str
    message_en: str
    hint_zh: str
    hint_en: str
    retryable: bool
    """True only where the same request may succeed within seconds (busy, too frequent)."""
    reveals_tier: Literal["free", "paid"] | None = None
    family: str | None = None
    """The model family whose hourly window the code speaks of, for limit codes."""

    @property
    def hint(self) -> Text:
        return Text(self.hint_zh, self.hint_en)

    @property
    def message(self) -> Text:
        return Text(self.message_zh, self.message_en)


_WAIT_ZH = "等待一小时窗口释放额度后再试"
_WAIT_EN = "wait until the hourly window frees up"
_UPGRADE_ZH = "或充值升级为付费会员"
_UPGRADE_EN = "or top up to upgrade to a paid key"

RELAY_CODES: dict[int, RelayCode] = {
    c.code: c
    for c in [
        RelayCode(-1, "busy", "busy", 500, "系统繁忙", "system busy or internal error",
                  "稍等片刻后重试", "retry in a moment", True),
        RelayCode(40001, "invalid_key", "authentication", 401, "API_KEY 不正确", "the API key is wrong",
                  "核对 API_KEY；更换 KEY 时也要同时使用白菜GPT的 API_BASE (https://api.baicaigpt.com/v1)",
                  "check the key; when you change the key, use the relay's base URL too", False),
        RelayCode(41001, "missing_key", "authentication", 401, "缺少 API_KEY 参数", "no API key was sent",
                  "在请求头加入 Authorization: Bearer baicai-…", "send the header Authorization: Bearer baicai-…", False),
        RelayCode(40038, "malformed_authorization", "authentication", 401, "Authorization 参数格式不正确",
                  "the Authorization header is malformed",
                  "格式应为 Bearer baicai-xxxxxxxx", "it must read Bearer baicai-xxxxxxxx", False),
        RelayCode(40039, "empty_body", "bad_request", 400, "请求参数不能为空", "the request body is empty",
                  "检查是否正常发送了请求体", "check that the request body is sent", False),
        RelayCode(40243, "key_frozen", "frozen", 403, "API_KEY 已被冻结", "the API key is frozen",
                  "提工单或联系客服申请解冻", "open a ticket or contact support to unfreeze it", False),
        RelayCode(45011, "too_frequent", "busy", 429, "API 调用太频繁", "calls are too frequent",
                  "稍候再试", "retry after a short pause", True),
        RelayCode(48001, "model_not_supported", "model", 404, "请求模型暂未支持", "the model is not supported yet",
                  "换用白菜GPT支持的模型，如 gpt-3.5-turbo 或 gpt-4（完整清单见白菜GPT文档）",
                  "use a model the relay supports, e.g. gpt-3.5-turbo or gpt-4 (the full list is in the relay's docs)",
                  False),
        RelayCode(48002, "model_missing", "bad_request", 400, "请求缺少 model 字段", "the request has no model",
                  "除 models 接口外，请求体都要写 model 字段", "every endpoint but models needs a `model` field", False),
        RelayCode(48004, "endpoint_not_supported", "endpoint", 404, "API 接口暂未支持", "the endpoint is not supported",
                  "检查 API_BASE，不要重复添加 /v1（应为 https://api.baicaigpt.com/v1）",
                  "check the base URL: do not add /v1 twice", False),
        RelayCode(48005, "free_stream_not_allowed", "tier", 403, "免费会员不支持流式请求", "free keys may not stream",
                  "关闭流式输出 (stream=false)，" + _UPGRADE_ZH, "turn streaming off, " + _UPGRADE_EN, False,
                  reveals_tier="free"),
        RelayCode(40020, "free_gpt35_rate_limit", "rate_limit", 429, "免费会员 gpt-3.5 请求已达速率限制",
                  "free-tier gpt-3.5 request limit reached", _WAIT_ZH + "，" + _UPGRADE_ZH, _WAIT_EN + ", " + _UPGRADE_EN,
                  False, reveals_tier="free", family="gpt-3.5"),
        RelayCode(40021, "free_gpt4_rate_limit", "rate_limit", 429, "免费会员 gpt-4 请求已达速率限制",
                  "free-tier gpt-4 request limit reached", _WAIT_ZH + "，" + _UPGRADE_ZH, _WAIT_EN + ", " + _UPGRADE_EN,
                  False, reveals_tier="free", family="gpt-4"),
        RelayCode(40022, "paid_gpt35_rate_limit", "rate_limit", 429, "付费会员 gpt-3.5 请求已达速率限制",
                  "paid-tier gpt-3.5 request limit reached", _WAIT_ZH, _WAIT_EN, False,
                  reveals_tier="paid", family="gpt-3.5"),
        RelayCode(40023, "paid_gpt4_rate_limit", "rate_limit", 429, "付费会员 gpt-4 请求已达速率限制",
                  "paid-tier gpt-4 request limit reached", _WAIT_ZH, _WAIT_EN, False,
                  reveals_tier="paid", family="gpt-4"),
        RelayCode(40031, "free_gpt35_token_limit", "token_limit", 429, "免费会员 gpt-3.5 已达每小时 Tokens 限制",
                  "free-tier gpt-3.5 hourly token limit reached", _WAIT_ZH + "，" + _UPGRADE_ZH,
                  _WAIT_EN + ", " + _UPGRADE_EN, False, reveals_tier="free", family="gpt-3.5"),
        RelayCode(40032, "free_gpt4_token_limit", "token_limit", 429, "免费会员 gpt-4 已达每小时 Tokens 限制",
                  "free-tier gpt-4 hourly token limit reached", _WAIT_ZH + "，" + _UPGRADE_ZH,
                  _WAIT_EN + ", " + _UPGRADE_EN, False, reveals_tier="free", family="gpt-4"),
        RelayCode(40040, "paid_dalle2_rate_limit", "rate_limit", 429, "付费会员 dall-e-2 请求已达速率限制",
                  "paid-tier dall-e-2 request limit reached", _WAIT_ZH, _WAIT_EN, False,
                  reveals_tier="paid", family="dall-e-2"),
        RelayCode(40041, "paid_dalle3_rate_limit", "rate_limit", 429, "付费会员 dall-e-3 请求已达速率限制",
                  "paid-tier dall-e-3 request limit reached", _WAIT_ZH, _WAIT_EN, False,
                  reveals_tier="paid", family="dall-e-3"),
        RelayCode(40050, "model_not_on_free_tier", "tier", 403, "免费会员不支持该模型", "the free tier cannot use this model",
                  # no model here (the answer does not name it, and an image request must not be sent to a chat
                  # model): where the free models are listed, from the catalogue
                  "换用免费会员可用的型号（`baicai usage windows --tier free` 列出；图片需付费会员），" + _UPGRADE_ZH,
                  "use a model the free tier allows (`baicai usage windows --tier free` lists them; images need a "
                  "paid key), " + _UPGRADE_EN,
                  False, reveals_tier="free"),
    ]
}


def relay_code(code: int) -> RelayCode | None:
    """The documented meaning of ``code``, or None for a code the relay's README does not list."""
    return RELAY_CODES.get(code)
