"""``baicai emulator``: the relay emulator as a local server, for trying clients and apps without a real key.

With no ``--key`` it serves a demo set (one free, one paid, one frozen key) and prints them in full — they
are the emulator's own, worthless anywhere else; keys given with ``--key`` are printed masked. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._text import Text, labelled, tr

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help=tr("本地模拟白菜GPT中转站", "run a local emulator of the relay"),
        description=tr("在本机运行白菜GPT中转站模拟器：相同的接口、错误码、限额与价格。",
                       "Runs a local emulator of the BaicaiGPT relay: same endpoints, error codes, hourly limits and prices."),
    )
    parser.add_argument("--host", default="127.0.0.1", help=tr("监听地址", "address to listen on (127.0.0.1)"))
    parser.add_argument("--port", type=int, default=8300, help=tr("端口", "port (8300; 0 = any free port)"))
    parser.add_argument("--key", action="append", default=[], metavar="TIER:KEY",
                        help=tr("密钥，可重复；TIER 为 free、paid 或 frozen", "a key; repeatable; TIER is free, paid or frozen"))
    parser.add_argument("--error-style", default="openai", choices=["openai", "openai-str", "code-msg", "errcode"],
                        help=tr("错误响应格式", "error envelope (openai)"))
    parser.add_argument("--error-status", default="http", choices=["http", "200"],
                        help=tr("错误的 HTTP 状态：对应状态码或总是 200", "error status: matching 4xx/5xx, or always 200"))
    parser.add_argument("--faults", default="", metavar="SPEC",
                        help=tr("故障注入，如 busy=0.2,latency=0.1,chunk_delay=0.05,truncate=3,reset=3,burst=5,seed=7",
                                "fault injection"))
    parser.add_argument("--stream-errors", default="json", choices=["json", "sse"],
                        help=tr("流式请求的错误以 JSON 还是 SSE 事件返回", "errors to stream requests as JSON or as an SSE event"))
    parser.add_argument("--after-beta", action="store_true",
                        help=tr("内测结束：免费密钥不能流式请求 (48005)", "after the beta: free keys may not stream"))
    parser.add_argument("--reply-tokens", type=int, default=16, help=tr("回复长度（tokens）", "reply length in tokens (16)"))
    parser.add_argument("--chunk-delay", type=float, default=0.0, help=tr("流式分块间隔秒数", "seconds between stream chunks"))
    parser.add_argument("--balance", type=float, default=10.0, help=tr("付费密钥初始余额（元）", "CNY each paid key starts with"))
    parser.add_argument("--clock-offset", type=float, default=0.0,
                        help=tr("模拟器时钟偏移秒数", "seconds added to the emulator's clock"))
    parser.add_argument("--seed", type=int, default=0, help=tr("随机故障的种子", "seed for random faults"))
    parser.add_argument("--trust-forwarded-for", action="store_true",
                        help=tr("按 X-Forwarded-For 识别客户端 IP", "take the client IP from X-Forwarded-For"))
    parser.set_defaults(func=_run)


def _parse_keys(values: list[str]) -> dict[str, Any] | None:
    if not values:
        return None
    keys: dict[str, Any] = {}
    for value in values:
        tier, sep, key = value.partition(":")
        tier = tier.strip().lower()
        if not sep or tier not in ("free", "paid", "frozen") or not key.strip():
            raise ValueError(Text(f"--key 的写法是 TIER:KEY（TIER 为 free、paid 或 frozen），而不是 {value[:12]!r}…",
                                  f"--key takes TIER:KEY with TIER free, paid or frozen, not {value[:12]!r}…"))
        keys[key.strip()] = tier
    return keys


def _run(args: argparse.Namespace) -> int:
    from .._serving import UvicornMissing, bind_socket, import_uvicorn, serve_forever
    from ..testing._app import RelayEmulator
    from ..testing._config import EmulatorConfig, FaultSpecError
    from ..testing._util import mask_key

    try:
        config = EmulatorConfig(
            keys=_parse_keys(args.key),
            error_style=args.error_style,
            error_status=args.error_status,
            free_stream=not args.after_beta,
            reply_tokens=args.reply_tokens,
            chunk_delay=args.chunk_delay,
            faults=args.faults,  # a spec string: parsed by __post_init__
            clock_offset=args.clock_offset,
            paid_balance=args.balance,
            seed=args.seed,
            trust_forwarded_for=args.trust_forwarded_for,
            stream_errors=args.stream_errors,
        )
        import_uvicorn()
    except (ValueError, FaultSpecError, UvicornMissing) as exc:
        print(labelled("错误", "error", exc), file=sys.stderr)
        return 2
    demo = not args.key
    host = f"[{args.host}]" if ":" in args.host else args.host
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(Text(f"错误：无法监听 {host}:{args.port}（{exc.strerror}；端口被占用？换用 --port）",
                   f"error: cannot listen on {host}:{args.port} ({exc.strerror}; port in use? try --port)"), file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    app = RelayEmulator(config)

    def banner() -> None:
        """Printed only once the emulator really serves."""
        print(Text("白菜GPT 中转站模拟器已启动", "BaicaiGPT relay emulator running"))
        print(f"API_BASE: http://{host}:{port}/v1")
        print(Text("密钥（演示密钥）：", "keys (demo keys):") if demo else Text("密钥：", "keys:"))
        for key, tier in (config.keys or {}).items():
            print(f"  {tier:<6} {key if demo else mask_key(key)}")
        streaming = "on" if config.free_stream else "off (48005)"
        faults = f"; faults: {config.faults.spec()}" if config.faults.spec() else ""
        print(Text(f"错误格式：{config.error_style}，status {config.error_status}；免费流式：{streaming}{faults}",
                   f"errors: {config.error_style}, status {config.error_status}; free streaming: {streaming}{faults}"))
        print(Text("按 Ctrl-C 停止", "press Ctrl-C to stop"), flush=True)

    serve_forever(app, sock, on_started=banner, lifespan="off", http="h11")
    print(Text("模拟器已停止", "emulator stopped"), flush=True)
    return 0
