"""``baicai demo``: the toolkit working, offline, with nothing configured.

It starts the relay emulator on a free local port, points a throw-away ``BAICAI_HOME`` at a temp folder (so
demo traffic never lands in the user's real ledger), and then either opens the TUI with live sample traffic
(when the TUI is installed and this is a terminal) or runs a short scripted tour through the SDK: a streamed
chat, the free tier's gpt-4 limit stopped before it costs anything, an image on a paid key, usage and balance.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .._text import Text, tr

if TYPE_CHECKING:
    from .._catalog import Tier

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=tr("离线演示（内置模拟器）", "offline demo against the built-in emulator"),
        description=tr("启动本地中转模拟器并演示 SDK、配额与账本；不需要密钥，不联网，不写入你的账本。",
                       "Starts a local relay emulator and shows the SDK, quota and ledger at work; no key, no network, and your own ledger is left untouched."),
    )
    parser.add_argument("--no-tui", action="store_true", help=tr("只打印脚本演示", "print the scripted tour only"))
    parser.add_argument("--keep", metavar="DIR", help=tr("把演示数据保存在 DIR", "keep the demo data in DIR"))
    parser.add_argument("--port", type=int, default=0,
                        help=tr("模拟器端口（默认任选空闲端口）", "the emulator's port (default: any free one)"))
    parser.set_defaults(func=run)


def _tui_demo() -> Any | None:
    for ep in entry_points(group="baicai.demo"):
        try:
            return ep.load()
        except ImportError:  # the [tui] extra is not installed
            return None
    return None


def run(args: argparse.Namespace) -> int:
    from ..testing import EmulatorConfig, EmulatorServer

    with contextlib.ExitStack() as stack:
        _exit_cleanly_on_hangup(stack)
        home = args.keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="baicai-demo-"))
        os.environ["BAICAI_HOME"] = home  # this process only: the demo's ledger and config live here
        try:
            emu = stack.enter_context(EmulatorServer(EmulatorConfig(chunk_delay=0.02, reply_tokens=48),
                                                     port=args.port))
        except OSError as exc:
            print(Text(f"错误：无法监听 127.0.0.1:{args.port}（{exc.strerror or exc}），请换一个 --port",
                       f"error: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); pick another --port"), file=sys.stderr)
            return 1
        tui = None if args.no_tui or not sys.stdout.isatty() else _tui_demo()
        if tui is not None:
            return int(tui(emu.base_url, emu.free_key, tier="free", paid_key=emu.paid_key) or 0)
        return _scripted_tour(emu, home, kept=bool(args.keep))


def _exit_cleanly_on_hangup(stack: contextlib.ExitStack) -> None:
    """Closing the terminal (SIGHUP) or ``kill`` (SIGTERM) ends the demo like Ctrl-C does: through the ``with``
    blocks, so the emulator stops and the temp folder is removed as promised (it was left in /tmp, ledger and
    all). Restored afterwards: the caller's handlers are its own."""
    import signal

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:  # Windows has no SIGHUP
            continue
        try:
            previous = signal.signal(sig, leave)
        except ValueError:  # not the main thread (a test calling run): nothing to restore
            continue
        stack.callback(signal.signal, sig, previous)


def _line(text: object = "") -> None:
    print(text, flush=True)


def _free_gpt4_title() -> Text:
    """What the free tier's gpt-4 is, from the catalogue: a few named models an hour, not every gpt-4 model."""
    from .._catalog import load_catalog

    catalog = load_catalog()
    models = catalog.free_models("gpt-4") or ("gpt-4-0125-preview",)
    limits = catalog.limits_for("gpt-4", "free")
    rph = limits.requests_per_hour if limits is not None else None
    return Text(f"2) 免费 KEY 每小时 {rph} 次 gpt-4，且只限 {'、'.join(models)}（gpt-4 本身等其余型号需付费）",
                f"2) a free key gets {rph} gpt-4 request{'s' if rph != 1 else ''} an hour, on {', '.join(models)} only (gpt-4 itself and "
                "the other gpt-4 models need a paid key)")


def _window_line(family: str, tier: Tier) -> Text:
    """This hour's window by ``tier``'s limits: left unsaid, an unknown tier is judged by the paid limits, and the
    free key's line read "requests 1/1000 · tokens 73/∞"."""
    from .._usage import UsageStore

    for w in UsageStore().windows(tier=tier):
        if w.family == family:
            req = f"{w.requests_used}/{w.requests_limit if w.requests_limit is not None else '∞'}"
            tok = f"{w.tokens_used}/{w.tokens_limit if w.tokens_limit is not None else '∞'}"
            return Text(f"本小时 {family}：请求 {req} · tokens {tok}", f"this hour {family}: requests {req} · tokens {tok}")
    return Text("", "")


def _scripted_tour(emu: Any, home: str, *, kept: bool) -> int:
    from .._billing import balance
    from .._client import Baicai
    from .._errors import BaicaiError
    from .._usage import UsageStore

    _line(Text("白菜GPT 离线演示", "baicai offline demo"))
    _line(Text(f"  模拟器：{emu.base_url}   数据：{home}", f"  emulator: {emu.base_url}   data: {home}"))
    _line(Text("  （演示数据不会写入你的账本" + ("" if kept else "，退出时删除") + "）",
               "  (demo data never touches your own ledger"
               + ("" if kept else " and is removed at exit; --keep DIR keeps it") + ")"))
    _line()

    free = Baicai(api_key=emu.free_key, base_url=emu.base_url, tier="free", quota="raise")
    _line(Text("1) 免费 KEY 流式对话（gpt-3.5-turbo）", "1) free key, streamed chat (gpt-3.5-turbo)"))
    for question in ("你好！用一句话介绍白菜GPT。", "How do hourly limits work on the free tier?"):
        _line(f"   > {question}")
        print("   < ", end="", flush=True)
        stream = free.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        _line()
        row = UsageStore().rows(limit=1)[0]  # what the ledger recorded for this request: counts, never text
        cost = f"¥{row.cost_cny or 0:.5f}"
        _line(Text(f"     账本：提示 tokens {row.prompt_tokens} · 回答 tokens {row.completion_tokens} · 费用 {cost}",
                   f"     ledger: prompt tokens {row.prompt_tokens} · completion tokens {row.completion_tokens}"
                   f" · cost {cost}"))
        _line(Text("     ", "     ") + _window_line("gpt-3.5", "free"))
    _line()

    _line(_free_gpt4_title())
    for attempt in (1, 2):
        try:
            reply = free.chat.completions.create(
                model="gpt-4-0125-preview", messages=[{"role": "user", "content": "Say hi"}], max_tokens=20
            )
            said = reply.choices[0].message.content
            # the reply is the emulator's text, not ours to translate: once, after both halves (it was in each)
            _line(f"{Text(f'   第 {attempt} 次：ok', f'   attempt {attempt}: ok')} — {said!r}")
        except BaicaiError as exc:
            _line(Text(f"   第 {attempt} 次：本地拦截，未发送：", f"   attempt {attempt}: stopped locally, never sent:"))
            _line(f"     {exc}")
    gpt4_seen = sum(1 for r in emu.state.requests if (r.model or "").startswith("gpt-4"))
    _line(Text(f"   模拟器收到的 gpt-4 请求：{gpt4_seen}", f"   gpt-4 requests the emulator saw: {gpt4_seen}"))
    _line()

    _line(Text("3) 付费 KEY 生成图片（DALL·E 3，1024x1024 standard）", "3) paid key, DALL·E 3 image (1024x1024 standard)"))
    paid = Baicai(api_key=emu.paid_key, base_url=emu.base_url, tier="paid")
    image = paid.images.generate(model="dall-e-3", prompt="a cabbage", size="1024x1024", response_format="b64_json")
    path = os.path.join(home, "demo-image.png")
    import base64

    with open(path, "wb") as fh:
        fh.write(base64.b64decode((image.data or [])[0].b64_json or ""))
    cost = f"¥{UsageStore().rows(limit=1)[0].cost_cny or 0:.2f}"
    _line(Text(f"   已保存 {path} · 账本记账 {cost}", f"   saved {path} · ledger cost {cost}"))
    _line()

    _line(Text("4) 账本用量（按模型）", "4) ledger usage by model"))
    store = UsageStore()
    for group in store.report(by="model"):
        cost = f"¥{group.cost_cny:.5f}"
        unpriced = Text(f"（+{group.unpriced} 未知价格）", f" (+{group.unpriced} unpriced)") if group.unpriced \
            else Text("", "")
        _line(Text(f"   {group.key:<22} 请求 {group.requests:>3} · tokens {group.total_tokens:>6}"
                   f" · 图片 {group.images} · {cost}{unpriced.zh}",
                   f"   {group.key:<22} requests {group.requests:>3} · tokens {group.total_tokens:>6}"
                   f" · images {group.images} · {cost}{unpriced.en}"))
    _line()

    _line(Text("5) 余额（付费 KEY）", "5) balance (paid key)"))
    from .._keys import resolve_credentials

    bal = balance(resolve_credentials(api_key=emu.paid_key, base_url=emu.base_url, warn=False))
    label = Text("中转实测", "measured") if bal.measured else Text("本地估算", "estimated")
    amount = "—" if bal.amount_cny is None else f"¥{bal.amount_cny:.4f}"
    # bal.detail is already in the user's language: joined once, not inside each half (it was shown twice)
    _line(f"{Text(f'   {amount}（{label.zh}）', f'{amount} ({label.en})')} — {bal.detail}")
    _line()
    _line(Text("完成。真实使用：`baicai key add NAME` 保存密钥，然后 `baicai doctor`。",
               "Done. For real use: `baicai key add NAME`, then `baicai doctor`."))
    return 0
