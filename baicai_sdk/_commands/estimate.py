"""``baicai estimate``: prompt tokens, cost range and the quota decision for a request, before sending it.

    baicai estimate --model gpt-4 [--max-tokens 500] [FILE|-] [--json]

Input (a file, or stdin with ``-``): a JSON list of messages, or a whole request body (``messages``, ``tools``,
``max_tokens``…; ``--model``/``--max-tokens`` override it). Nothing is sent and nothing is written to the ledger.
The decision uses the active key's tier (configured in its profile, else learned, else unknown).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._text import Text, labelled, tr

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help=tr("发送前估算 tokens、费用与额度", "estimate tokens, cost and quota before sending"),
        description=tr("读取消息 JSON（列表或完整请求体），离线计数。",
                       "Reads messages JSON (a list or a whole request body) and counts offline; nothing is sent."),
    )
    parser.add_argument("file", nargs="?", default="-", help=tr("JSON 文件，或 - 表示标准输入", "JSON file, or - for stdin"))
    parser.add_argument("--model", "-m", default=None, help=tr("模型", "model (required unless the body names one)"))
    parser.add_argument("--max-tokens", type=int, default=None, dest="max_tokens",
                        help=tr("最大输出 tokens", "maximum completion tokens (default: the catalogue's default)"))
    parser.add_argument("--tier", choices=("free", "paid"), default=None,
                        help=tr("按此等级判断", "decide as this tier (default: the active key's)"))
    parser.add_argument("--json", action="store_true", help=tr("JSON 输出", "machine-readable output"))
    parser.set_defaults(func=_estimate)


def _fail(zh: str, en: str) -> int:
    print(Text(zh, en), file=sys.stderr)
    return 2


_EXAMPLE = """echo '[{"role":"user","content":"你好"}]' | baicai estimate -m gpt-4"""


class _NoInput(ValueError):
    pass


def _read(path: str) -> Any:
    if path == "-" and sys.stdin.isatty():  # `baicai estimate -m gpt-4` typed alone would wait in silence
        print(tr("从标准输入读取消息 JSON（输入后按 Ctrl-D；或给出文件名）",
                 "reading messages JSON from standard input (end with Ctrl-D, or name a file)"), file=sys.stderr)
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    if not text.strip():
        raise _NoInput
    return json.loads(text)


def _active_key() -> tuple[str, Any, str | None]:
    """The key the decision is for, its configured tier (or None), and the base URL it would go to."""
    try:
        from .._keys import resolve_credentials

        creds = resolve_credentials(warn=False)
    except Exception:  # no key configured: decide for an anonymous key (tier unknown)
        return "", None, None
    return creds.key, (creds.tier if creds.tier in ("free", "paid") else None), creds.base_url


def _estimate(args: argparse.Namespace) -> int:
    try:
        data = _read(args.file)
    except FileNotFoundError:
        return _fail(f"找不到文件 {args.file}", f"no such file: {args.file}")
    except _NoInput:
        return _fail(f"没有输入：给出 JSON 文件，或从管道传入消息，例如 {_EXAMPLE}",
                     f"no input: name a JSON file or pipe the messages in, e.g. {_EXAMPLE}")
    except ValueError as exc:
        return _fail(f"输入不是有效的 JSON（{exc}）", f"the input is not valid JSON ({exc})")
    body: dict[str, Any] = dict(data) if isinstance(data, dict) else {"messages": data}
    if not isinstance(body.get("messages"), list):
        return _fail("需要消息列表，或含 messages 的请求体", "expected a list of messages or a body with `messages`")
    if args.model:
        body["model"] = args.model
    if args.max_tokens is not None:
        body.pop("max_completion_tokens", None)
        body["max_tokens"] = args.max_tokens
    if not body.get("model"):
        return _fail("请用 --model 指定模型", "name the model with --model")

    from .._catalog import load_catalog
    from .._meter import Meter
    from .._quota import PAID_ONLY_NOTE, PAST_FREE_NOTE, describe_request

    catalog = load_catalog()
    info = describe_request("/v1/chat/completions", body, catalog=catalog)
    known = catalog.chat(info.model) is not None or info.model in catalog.unsupported
    key, configured, base_url = _active_key()
    meter = Meter(tier=args.tier or configured)
    applies, rules_reason = meter.relay_rules_for(base_url or "https://api.baicaigpt.com/v1", key or None)
    decision = meter.decide(key, info, url=base_url or "https://api.baicaigpt.com/v1")
    low, high = info.minimum_cost(catalog), info.estimated_cost(catalog)
    paid_only = catalog.allowed_on_free(info.model) is False  # if it runs at all, the key is paid
    if decision.tier == "free" and not paid_only:
        low = high = 0.0 if high is not None else None  # the free membership is free: the relay bills nothing
    elif decision.tier == "unknown" and not paid_only and high is not None:
        low = 0.0  # free costs nothing, paid the price: the range covers both
    # Off the relay no hourly limit applies, so "allow" is the answer; on it, a model in no family was not judged.
    predicted = not applies or info.family is not None or info.model in catalog.unsupported
    result = {
        "model": info.model,
        "model_known": known,
        "family": info.family,
        "prompt_tokens": info.prompt_tokens,
        "max_completion_tokens": info.max_completion_tokens,
        "max_tokens_given": info.max_tokens_given,
        "cost_cny": {"min": low, "max": high},
        "currency": "CNY",
        "relay_rules": {"apply": applies, "reason": str(rules_reason)},
        "decision": {
            # "unknown": no hourly limit is known for the model, so nothing was predicted (the Meter lets the
            # server decide, which is not the same as "allowed")
            "kind": decision.kind if predicted else "unknown",
            "tier": decision.tier,
            "tier_source": decision.tier_source,
            "wait_seconds": decision.wait_seconds,
            "retry_at": decision.retry_at,
            "reason": str(decision.message()) if decision.kind != "allow" else None,
            "notes": list(decision.notes),
            "alternatives": list(decision.alternatives),
        },
    }
    if not known:
        result["known_models"] = sorted(catalog.chat_models)
        result["did_you_mean"] = _close(info.model, catalog.chat_models)
    # A model the relay's catalogue does not list would most likely be refused there: a script should notice.
    status = 1 if (applies and not known) else 0
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return status
    default = Text("", "") if info.max_tokens_given else Text("（默认）", " (default)")
    family = Text(info.family, info.family) if info.family else Text("未知系列", "unknown family")
    print(Text(f"模型：{info.model}（{family.zh}）", f"model: {info.model}  ({family.en})"))
    if not known:
        _unknown_model(info.model, catalog.chat_models, applies)
    print(Text(f"输入 tokens：{info.prompt_tokens}", f"prompt tokens: {info.prompt_tokens}"))
    print(Text(f"最大输出：{info.max_completion_tokens}{default.zh}", f"max completion: {info.max_completion_tokens}{default.en}"))
    if high is None:
        print(Text("费用：未知（价目表中没有此模型）", "cost: unknown (the model has no price in the catalogue)"))
    elif predicted and decision.kind == "refuse":  # never sent, never billed: the range is only what it would cost
        print(Text(f"费用：¥0（不会发送；若发送：¥{low:.6f} – ¥{high:.6f}）",
                   f"cost: ¥0 (it would not be sent; if sent: ¥{low:.6f} – ¥{high:.6f})"))
    else:
        print(labelled("费用", "cost", f"¥{low:.6f} – ¥{high:.6f}"))
    tier_note = {"configured": Text("配置", "configured"), "learned": Text("已学习", "learned"),
                 "unknown": Text("未知：按两种会员共有的上限判断，中转的回答会告知等级",
                                 "unknown: judged by the limits both tiers share; the relay's answer tells the tier"),
                 }[decision.tier_source]
    print(Text(f"等级：{decision.tier}（{tier_note.zh}）", f"tier: {decision.tier} ({tier_note.en})"))
    if decision.tier == "unknown" and high and not paid_only:
        print(Text("  费用范围：免费会员 ¥0，付费会员按价目表", "  cost range: ¥0 if the key is free, the price if paid"))
    if applies:
        print(Text(f"每小时限额：适用 — {rules_reason.zh}", f"hourly limits: apply — {rules_reason.en}"))
    else:
        print(Text(f"每小时限额：不适用 — {rules_reason.zh}", f"hourly limits: do not apply — {rules_reason.en}"))
    if PAST_FREE_NOTE in decision.notes:
        print(Text("  已超过免费会员的每小时上限：若是免费密钥，中转会拒绝（并由此得知等级）",
                   "  past the free tier's hourly limit: a free key would be refused by the relay (which then tells "
                   "the tier)"))
    if PAID_ONLY_NOTE in decision.notes:
        print(Text("  此模型仅付费会员可用，按付费额度判断", "  paid-only model: judged by the paid limits"))
    if not predicted:
        print(Text("额度：无法预测——不知道此模型属于哪个每小时限额，由服务器决定",
                   "quota: cannot predict: no hourly limit is known for this model, the server decides"))
        return status
    verdict = {"allow": Text("可以发送", "allowed"), "wait": Text("需等待", "wait"),
               "refuse": Text("不会发送", "refused")}[decision.kind]
    if not known and applies and info.family and decision.kind == "allow":
        verdict = Text(f"{info.family} 系列的额度还够，但模型本身未知（见上）",
                       f"the {info.family} family's limits have room, but the model itself is unknown (see above)")
    reason = Text(f" — {decision.message().zh}", f" — {decision.message().en}") if decision.kind != "allow" \
        else Text("", "")
    print(Text(f"额度：{verdict.zh}", f"quota: {verdict.en}") + reason)
    return status


def _close(model: str, known: Any) -> list[str]:
    import difflib

    return difflib.get_close_matches(model, list(known), n=3, cutoff=0.6)


def _unknown_model(model: str, known: Any, relay: bool) -> None:
    """Say plainly that the catalogue has no such model (a typo, or one the relay does not sell), and what it has."""
    where = Text("白菜GPT 很可能拒绝它", "the relay will most likely refuse it") if relay else \
        Text("费用未知", "its cost is unknown")
    print(Text(f"  未知模型：{model} 不在价目表中，{where.zh}", f"  unknown model: {model} is not in the catalogue, {where.en}"))
    close = _close(model, known)
    if close:
        print("  " + labelled("是否想用", "did you mean", ", ".join(close)))
    print("  " + labelled("已知模型", "known models", ", ".join(sorted(known))))
