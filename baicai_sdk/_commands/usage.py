"""``baicai usage``: what this machine spent, from the ledger — grouped, as the expense log, quota windows, balance.

    baicai usage [--by model|day|hour|key|source] [--since 7d|24h|2026-11-01|today|month] [--until …] [--json]
    baicai usage log [--limit N] [--model M] [--status S] [--source S] [--json]
    baicai usage windows [--tier free|paid] [--json]
    baicai usage balance [--json]
    baicai usage topup AMOUNT [--note TEXT]

Everything reads ``UsageStore`` (the TUI shows the same figures). Days and hours are local time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from .._text import Text, current_lang, labelled, tr

if TYPE_CHECKING:
    from .._catalog import Tier

__all__ = ["register", "parse_when"]

_GROUPS = ("model", "day", "hour", "key", "source")


def parse_when(text: str, *, now: float | None = None, tz: dt.tzinfo | None = None) -> float:
    """``7d`` / ``24h`` / ``30m`` ago, ``today``, ``yesterday``, ``month`` (its first day), or a local date/time."""
    from .._usage import local_zone

    now = time.time() if now is None else now
    tz = tz or local_zone()  # a real zone (DST rules), or None: naive local time converts with them too
    value = text.strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([dhm])", value)
    if m:
        return now - float(m.group(1)) * {"d": 86400, "h": 3600, "m": 60}[m.group(2)]
    # Wall-clock arithmetic in the zone (zoneinfo fills in each date's own offset): the midnight of a day after
    # a DST change has a different offset from now's.
    local_now = dt.datetime.fromtimestamp(now, tz).replace(tzinfo=None)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)

    def stamp(wall: dt.datetime) -> float:
        return wall.replace(tzinfo=tz).timestamp() if tz is not None else wall.timestamp()

    if value == "today":
        return stamp(midnight)
    if value == "yesterday":
        return stamp(midnight - dt.timedelta(days=1))
    if value == "month":
        return stamp(midnight.replace(day=1))
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            Text(f"无法识别的时间 {text!r}：可用 7d、24h、today、month 或 2026-11-01",
                 f"cannot read the time {text!r}: use 7d, 24h, today, month or 2026-11-01")
        ) from None
    if parsed.tzinfo is None and tz is not None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.timestamp()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "usage",
        help=tr("本机用量、消费、额度与余额", "this machine's usage, spend, quota windows and balance"),
        description=tr("读取本机用量账本（只有计数，没有对话内容）。",
                       "Reads the local usage ledger (counts only, never text). Days and hours are local time."),
    )
    _common_report_args(parser)
    parser.set_defaults(func=_report)
    sub = parser.add_subparsers(dest="usage_command", metavar="ACTION")

    log = sub.add_parser("log", help=tr("消费明细（最新在前）", "the expense log, newest first"))
    log.add_argument("--limit", type=int, default=20, help=tr("显示多少条（默认 20）", "rows to show (default 20)"))
    log.add_argument("--offset", type=int, default=0, help=tr("跳过最新的多少条", "skip this many newest rows"))
    log.add_argument("--model", help=tr("只看名称含此文字的模型（不分大小写）", "only models whose name contains this (any case)"))
    log.add_argument("--status", choices=("pending", "ok", "error", "cancelled", "dropped", "timeout", "orphaned",
                                          "failed"),
                     help=tr("只看此状态", "only this status"))
    log.add_argument("--source", help=tr("只看此来源（sdk、sidecar 或应用名）", "only this source (sdk, sidecar or an app)"))
    log.add_argument("--json", action="store_true", help=tr("JSON 输出", "machine-readable output"))
    log.set_defaults(func=_log)

    windows = sub.add_parser("windows", help=tr("每小时额度窗口", "the hourly quota windows"))
    windows.add_argument("--tier", choices=("free", "paid"), default=None,
                         help=tr("按此等级显示上限",
                                 "show this tier's limits (default: the active key's tier, else learned, else free)"))
    windows.add_argument("--json", action="store_true")
    windows.set_defaults(func=_windows)

    bal = sub.add_parser("balance", help=tr("余额（实测或估算）", "balance (measured or estimated)"))
    bal.add_argument("--json", action="store_true")
    bal.set_defaults(func=_balance)

    topup = sub.add_parser("topup", help=tr("记录一次充值（用于估算余额）", "record a top-up (for the estimated balance)"))
    topup.add_argument("amount", type=float, help=tr("金额（元）", "amount in CNY"))
    topup.add_argument("--note", default=None, help=tr("备注，如 支付宝", "note, e.g. Alipay"))
    topup.set_defaults(func=_topup)


def _common_report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=_GROUPS, default="day", help=tr("分组", "group by (default: day)"))
    parser.add_argument("--since", type=parse_when, default=None,
                        help=tr("起始：7d、24h、today、month、2026-11-01", "from: 7d, 24h, today, month, 2026-11-01"))
    parser.add_argument("--until", type=parse_when, default=None, help=tr("截止", "until (same forms)"))
    parser.add_argument("--json", action="store_true", help=tr("JSON 输出", "machine-readable output"))


def _store() -> Any:
    from .._usage import UsageStore

    return UsageStore()


def _cny(value: float | None) -> str:
    return "—" if value is None else f"¥{value:,.4f}"


def _report(args: argparse.Namespace) -> int:
    store = _store()
    rows = store.report(args.by, since=args.since, until=args.until)
    totals = store.summary(since=args.since, until=args.until)
    if args.json:
        print(json.dumps({"by": args.by, "since": args.since, "until": args.until, "currency": "CNY",
                          "rows": [r.as_dict() for r in rows], "total": totals.as_dict()}, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(Text("账本中没有记录。", "No requests in the ledger for this period."))
        return 0
    from ._cells import cells, ljust, rjust

    head = {"model": tr("模型", "model", sep="/"), "day": tr("日期", "day", sep="/"), "hour": tr("小时", "hour", sep="/"),
            "key": tr("密钥", "key", sep="/"), "source": tr("来源", "source", sep="/")}[args.by]
    width = max(cells(head), *(cells(r.key) for r in rows)) + 2

    def line(first: str, *figures: object) -> str:
        return ljust(first, width) + "".join(rjust(f, w) for f, w in zip(figures, (10, 12, 12, 14)))

    print(line(head, tr("请求", "req", sep="/"), tr("输入", "in", sep="/"), tr("输出", "out", sep="/"),
               tr("费用", "cost", sep="/")))
    for r in rows:
        unpriced = tr(f"  （+{r.unpriced} 未定价）", f"  (+{r.unpriced} unpriced)") if r.unpriced else ""
        print(line(r.key, r.requests, r.prompt_tokens, r.completion_tokens, _cny(r.cost_cny)) + unpriced)
    print(line(tr("合计", "total", sep="/"), totals.requests, totals.prompt_tokens, totals.completion_tokens, _cny(totals.cost_cny)))
    if totals.cost_estimated:
        print(Text(f"其中实测 {_cny(totals.cost_measured)}，估算 {_cny(totals.cost_estimated)}（合计范围 {_cny(totals.cost_low)}–{_cny(totals.cost_high)}）",
                   f"measured {_cny(totals.cost_measured)}, estimated {_cny(totals.cost_estimated)} (total between {_cny(totals.cost_low)} and {_cny(totals.cost_high)})"))
    if totals.pending:
        print(Text(f"进行中 {totals.pending} 个请求按预估计入", f"{totals.pending} requests in flight counted at their estimate"))
    return 0


class _Columns(NamedTuple):
    zh: tuple[str, ...]
    en: tuple[str, ...]


_LOG_HEAD = _Columns(("时间", "模型", "状态", "输入+输出", "费用", "来源", "密钥"),
                     ("time", "model", "status", "in+out", "cost", "source", "key"))


def _log(args: argparse.Namespace) -> int:
    store = _store()
    rows = store.rows(offset=args.offset, limit=args.limit, model=args.model, status=args.status, source=args.source)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(Text("没有记录。", "No rows."))
        return 0
    from ._cells import ljust, rjust

    # a header so the columns say what they are (with both languages: Chinese over English, as the TUI's Log tab)
    heads = {"zh": [_LOG_HEAD.zh], "en": [_LOG_HEAD.en], "both": [_LOG_HEAD.zh, _LOG_HEAD.en]}[current_lang()]
    for head in heads:
        print(f"{ljust(head[0], 19)}  {ljust(head[1], 22)} {ljust(head[2], 9)} {ljust(head[3], 13)} "
              f"{rjust(head[4], 10)}  {head[5]}  {head[6]}")
    marks: set[str] = set()
    for r in rows:
        when = dt.datetime.fromtimestamp(r.time).strftime("%Y-%m-%d %H:%M:%S")
        code = f" code={r.relay_code}" if r.relay_code is not None else ""
        code += f" retry={r.attempt}" if r.attempt else ""  # the app's n-th retry: its own row, counted by the relay
        source = r.source + (f":{r.app}" if r.app else "")
        cost = r.cost_mark + _cny(r.cost_cny)
        print(f"{when}  {ljust(r.model, 22)} {ljust(r.status, 9)} {r.prompt_tokens:>6}+{r.completion_tokens:<6} "
              f"{cost:>10}  {source}  {r.key_hint or r.key_fingerprint}{code}")
        marks.add(r.cost_mark)
    from .._usage import COST_MARKS

    for mark, legend in COST_MARKS.items():  # only the marks shown, each with its own reason
        if mark in marks:
            print(legend)
    total = store.count(model=args.model, status=args.status, source=args.source)
    shown = args.offset + len(rows)
    if shown < total:
        print(Text(f"（第 {args.offset + 1}–{shown} 条，共 {total} 条；更多：--offset {shown} 或 --limit N）",
                   f"(rows {args.offset + 1}–{shown} of {total}; more with --offset {shown} or --limit N)"))
    return 0


def configured_tier() -> Tier | None:
    """The tier of the key ``Baicai()`` would use (profile, else ``BAICAI_TIER``); None when not configured."""
    from .._keys import resolve_credentials

    try:
        tier = resolve_credentials(warn=False).tier
    except Exception:  # no key configured, an unreadable store: fall back to what the ledger learned
        return None
    return tier if tier in ("free", "paid") else None


def profile_tiers() -> dict[str, str]:
    """Key fingerprint → configured tier of every profile (for each key's window row)."""
    try:
        from .._keys import KeyStore

        return {p.fingerprint: p.tier for p in KeyStore().list() if p.tier in ("free", "paid")}
    except Exception:  # an unreadable store: the ledger's learned tiers still answer
        return {}


def _windows(args: argparse.Namespace) -> int:
    store = _store()
    windows = store.windows(tier=args.tier or configured_tier(), key_tiers=profile_tiers(), per_key=True)
    if args.json:
        print(json.dumps([w.as_dict() for w in windows], ensure_ascii=False, indent=2))
        return 0
    now = time.time()
    shown_key_header = False
    print(Text("本机 IP（所有本地密钥合计）：", "this IP (every local key together):"))
    for w in windows:
        if w.scope == "key" and not shown_key_header:
            shown_key_header = True
            print(Text("各密钥（按各自档位的限额）：", "each key (by its own tier's limits):"))
        who = f"{w.key_hint or w.key_fingerprint or ''} " if w.scope == "key" else ""
        if not w.allowed:
            print(Text(f"  {who}{w.family:<9} {w.tier}：不可用", f"  {who}{w.family:<9} {w.tier}: not available on this tier"))
            continue
        req = f"{w.requests_used}/{w.requests_limit if w.requests_limit is not None else '∞'}"
        tok = f"{w.tokens_used}/{w.tokens_limit if w.tokens_limit is not None else '∞'}"
        free = Text("", "")
        if w.next_free_at is not None:
            minutes = max(0, int(w.next_free_at - now)) // 60
            free = Text(f"  {minutes} 分钟后释放下一个", f"  next frees in {minutes} min")
        if w.exhausted_until is not None and w.exhausted_until > now:
            free += Text("  中转已报满", "  the relay said full")
        print(Text(f"  {who}{w.family:<9} {w.tier:<7} 请求 {req:<10} tokens {tok:<14}{free.zh}",
                   f"  {who}{w.family:<9} {w.tier:<7} requests {req:<10} tokens {tok:<14}{free.en}"))
    _free_models_note({w.family for w in windows if w.tier == "free" and w.allowed})
    return 0


def _free_models_note(families: set[str]) -> None:
    """Under free-tier rows, which models those limits are for: the free gpt-4 is gpt-4-0125-preview…, not gpt-4
    (read from the catalogue; nothing printed for a family the free tier may use in full)."""
    from .._catalog import load_catalog

    catalog = load_catalog()
    named = [(family, models) for family in sorted(families) if (models := catalog.free_models(family))]
    if not named:
        return
    print(Text("免费会员只能用这些型号（其余需付费）：" + "；".join(f"{f} — {'、'.join(m)}" for f, m in named),
               "the free tier may use only these models (the others need a paid key): "
               + "; ".join(f"{f}: {', '.join(m)}" for f, m in named)))


def _balance(args: argparse.Namespace) -> int:
    from .._billing import balance

    try:
        from .._keys import resolve_credentials

        creds: Any = resolve_credentials(warn=False)
    except Exception:  # no key: the ledger estimate still answers
        creds = None
    b = balance(creds) if creds is not None else balance(("", ""))
    failed = 1 if b.key_refused else 0  # scripts must see a refused key, not a balance
    if args.json:
        print(json.dumps(b.as_dict(), ensure_ascii=False, indent=2))
        return failed
    print(labelled("余额", "balance", f"{_cny(b.amount_cny)}  [{b.label}]"))
    print(b.detail)
    if b.measured:
        from .._billing import estimated_balance

        estimate = estimated_balance()
        if estimate.source == "ledger":  # top-ups were recorded: they only ever feed the estimate
            amount, granted = _cny(estimate.amount_cny), _cny(estimate.granted_cny)
            print(Text(f"本机估算：{amount}  [估算] — 记录的充值 {granted} 减去本机消费；上面的实测值以中转为准",
                       f"local estimate: {amount}  [estimated] — recorded top-ups ({granted}) minus this "
                       "machine's spend; the measured figure above is the relay's"))
    return failed


def _topup(args: argparse.Namespace) -> int:
    from .._billing import record_topup

    if args.amount <= 0:
        print(Text("金额必须大于 0", "the amount must be above 0"), file=sys.stderr)
        return 2
    record_topup(args.amount, note=args.note)
    print(Text(f"已记录充值 {_cny(args.amount)}", f"recorded a top-up of {_cny(args.amount)}"))
    print(Text("注意：这只用于本机的余额估算，不会改动中转站的余额；中转的计费接口有应答时，`baicai usage balance` 显示中转的实测余额（充值到账后才变化）。",
               "note: this only feeds this machine's balance estimate and changes nothing at the relay; when the relay's billing endpoints answer, `baicai usage balance` shows the relay's measured figure, which changes once the relay books the payment."))
    return 0
