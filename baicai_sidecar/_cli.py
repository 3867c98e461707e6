"""``baicai sidecar`` (run the local proxy) and ``baicai sidecar token add|list|revoke``.

Registered through the ``baicai.commands`` entry point; uvicorn is imported only when the proxy actually
starts, so ``baicai --help`` stays fast and works without the ``[sidecar]`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from baicai_sdk.integration import Text, labelled, tr

__all__ = ["register"]


def _clean_errors(func: Any) -> Any:
    """A damaged token file is one line with its fix, never a traceback, whichever sidecar command meets it."""

    def run(args: argparse.Namespace) -> int:
        from ._tokens import TokenFileDamaged

        try:
            return int(func(args) or 0)
        except TokenFileDamaged as exc:
            print(labelled("错误", "error", exc), file=sys.stderr)
            return 2

    return run


def register(subparsers: Any) -> None:
    from ._state import DEFAULT_PORT

    parser = subparsers.add_parser(
        "sidecar",
        # Written out: argparse would show the optional `token` subcommand as a required-looking ACTION.
        usage="baicai sidecar [--host HOST] [--port PORT] [--profile PROFILE] [--upstream URL] [--open] ...\n"
              "       baicai sidecar token {add,list,revoke} ...",
        help=tr("本地代理：让桌面聊天应用使用白菜GPT", "local proxy for desktop chat apps"),
        description=tr("在本机启动 OpenAI 兼容代理：应用填本地地址和本地令牌，真实密钥只留在本机。",
                       "Run an OpenAI-compatible proxy on this machine: apps get a local URL and a local token; the real key never leaves baicai."),
    )
    parser.add_argument("--host", default="127.0.0.1", help=tr("监听地址", "listen address (default 127.0.0.1)"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=tr("端口，0 为任选空闲端口", f"port, 0 for any free one (default {DEFAULT_PORT})"))
    parser.add_argument("--profile", default=None, help=tr("使用的密钥配置", "key profile to use (default: active)"))
    parser.add_argument("--upstream", default=None, metavar="URL", help=tr("中转地址", "relay base URL (default: the profile's)"))
    parser.add_argument("--open", dest="open_access", action="store_true",
                        help=tr("不校验本地令牌（仅限本机回环）", "accept any key (loopback only)"))
    parser.add_argument("--allow-remote", action="store_true",
                        help=tr("允许监听非回环地址（仍需令牌）", "allow a non-loopback --host (token still required)"))
    parser.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                        help=tr("允许的网页应用来源，可重复", "browser origin to allow (repeatable), e.g. http://localhost:3210"))
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help=tr("额外允许的 Host 名", "extra Host name to accept (with --allow-remote)"))
    parser.add_argument("--max-body-mb", type=float, default=25.0, help=tr("请求体上限", "body size limit in MB"))
    limits = parser.add_argument_group(tr("连接限制", "connection limits"))
    limits.add_argument("--head-timeout", type=float, default=10.0, metavar="S",
                        help=tr("请求头须在几秒内收完", "seconds for a request's headers to arrive (10)"))
    limits.add_argument("--keepalive-timeout", type=float, default=5.0, metavar="S",
                        help=tr("空闲长连接保留秒数", "seconds an idle keep-alive connection stays open (5)"))
    limits.add_argument("--max-header-kb", type=int, default=64, metavar="KB",
                        help=tr("请求头大小上限", "request header size limit in KB (64)"))
    limits.add_argument("--max-connections", type=int, default=512, metavar="N",
                        help=tr("同时连接数上限：超出时先关空闲连接，全忙则回 503",
                                "open connections before idle ones are closed and, when all are busy, new ones get 503 (512)"))
    parser.set_defaults(func=_clean_errors(_run))
    # prog: the subcommands' usage starts "baicai sidecar token", not with the whole usage written out above
    sub = parser.add_subparsers(dest="sidecar_command", metavar="{token}", title=tr("令牌", "tokens"),
                                prog="baicai sidecar")

    token = sub.add_parser("token", help=tr("本地令牌（每个应用一个）", "local tokens, one per app"))
    token.set_defaults(func=lambda args: (token.print_help(), 0)[1])
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION")
    add = tsub.add_parser("add", help=tr("为应用生成令牌", "make a token for an app"))
    add.add_argument("app", help=tr("应用名", "app name, e.g. lobechat"))
    add.add_argument("--rotate", action="store_true", help=tr("换一个新令牌", "replace an existing token"))
    add.set_defaults(func=_clean_errors(_token_add))
    lst = tsub.add_parser("list", aliases=["ls"], help=tr("列出令牌（已遮蔽）", "list tokens (masked)"))
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_clean_errors(_token_list))
    rev = tsub.add_parser("revoke", aliases=["rm"], help=tr("吊销应用的令牌", "cut an app off"))
    rev.add_argument("app")
    rev.set_defaults(func=_clean_errors(_token_revoke))


def _token_add(args: argparse.Namespace) -> int:
    from ._tokens import InvalidAppName, TokenStore

    store = TokenStore()
    existed = store.get(args.app) is not None
    try:
        token = store.issue(args.app, rotate=args.rotate)
    except InvalidAppName as exc:
        print(exc, file=sys.stderr)
        return 2
    note = Text("（已有令牌，未更换；换新请加 --rotate）", " (existing token kept; --rotate for a new one)") \
        if existed and not args.rotate else Text("", "")
    print(Text(f"应用 {args.app} 的本地令牌：{token}{note.zh}", f"local token for {args.app}: {token}{note.en}"))
    return 0


def _token_list(args: argparse.Namespace) -> int:
    import time

    from ._tokens import TokenStore

    tokens = TokenStore().list()
    if args.json:
        print(json.dumps([{"app": t.app, "token": t.masked, "created": t.created} for t in tokens],
                         ensure_ascii=False, indent=2))
        return 0
    if not tokens:
        print(Text("还没有本地令牌；启动 `baicai sidecar` 会生成默认令牌",
                   "no local tokens yet; `baicai sidecar` makes the default one"))
        return 0
    from baicai_sdk.integration import head_rows, ljust

    # a header, so the columns say what they are; the full token is never listed (`token add APP` shows it)
    for app, masked, made in [*head_rows(("应用", "令牌（已遮蔽）", "创建时间"), ("app", "token (masked)", "created")),
                              *((t.app, t.masked, time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created)))
                                for t in tokens)]:
        print(f"{ljust(app, 20)} {ljust(masked, 18)} {made}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from ._tokens import TokenStore

    if TokenStore().revoke(args.app):
        print(Text(f"已吊销 {args.app} 的令牌（运行中的代理立即生效）",
                   f"revoked {args.app}'s token (takes effect in a running sidecar at once)"))
        return 0
    print(Text(f"没有名为 {args.app} 的令牌", f"no token for app {args.app}"), file=sys.stderr)
    return 1


def _check_relay(base_url: str, key: str) -> None:
    """Warn on the console when the relay cannot be used, before an app finds out with a failed request."""
    from baicai_sdk.integration import probe_relay

    check = probe_relay(base_url, key)
    if check.status != "ok":
        print(labelled("注意", "note", f"{check.summary}\n  {check.fix}"), file=sys.stderr, flush=True)


def _console_log() -> None:
    """Each request, and why one was refused, on the console: an app often shows only "401" or "CORS error".
    (The lines never hold a key: the proxy logs method, path, status, app and time; refusals our own message.)"""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("baicai.sidecar")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _cannot_listen(host: str, port: int, exc: OSError, token: str) -> Text:
    """Why ``baicai sidecar`` cannot listen, and what to do. A busy port is checked here rather than left to the
    user: the state file names a running sidecar (and its pid); else this install's token is tried on the port's
    status page, which answers only a baicai sidecar of this install (``baicai tui`` runs one in its process).
    The hint used to be ``curl …/sidecar/status``, which answers 401 without the token."""
    import errno

    shown = host if ":" not in host else f"[{host}]"
    if exc.errno != errno.EADDRINUSE:
        return Text(f"错误：无法监听 {shown}:{port}（{exc.strerror}）：请检查 --host 和 --port",
                    f"error: cannot listen on {shown}:{port} ({exc.strerror}): check --host and --port")
    from ._state import read_state

    state = read_state()
    if state is not None and state.port == port:
        return Text(f"错误：端口 {port} 上已有 baicai sidecar 在运行（进程 {state.pid}），应用可以直接使用它。"
                    f"要重新启动，先在它的窗口按 Ctrl-C（或 kill {state.pid}）；或用 --port 换一个端口",
                    f"error: a baicai sidecar is already running on port {port} (pid {state.pid}); apps can use "
                    f"it as it is. To restart it, press Ctrl-C in its window (or kill {state.pid}) first, "
                    "or pick another --port")
    if _answers_as_our_sidecar(host, port, token):
        return Text(f"错误：端口 {port} 上已有 baicai sidecar 在运行（可能在 baicai tui 中），应用可以直接使用它；"
                    "或用 --port 换一个端口",
                    f"error: a baicai sidecar is already running on port {port} (perhaps inside baicai tui); "
                    "apps can use it as it is, or pick another --port")
    return Text(f"错误：无法监听 {shown}:{port}（{exc.strerror}）：端口被另一个程序占用（不是本机这套配置的 baicai "
                "sidecar）。用 --port 换一个端口（--port 0 任选空闲端口）",
                f"error: cannot listen on {shown}:{port} ({exc.strerror}): another program holds the port (not a "
                "baicai sidecar of this setup). Pick another --port (--port 0 takes any free one)")


def _answers_as_our_sidecar(host: str, port: int, token: str) -> bool:
    """Whether ``GET /sidecar/status`` on ``host:port`` takes this install's default token (within a second)."""
    import httpx2

    from ._config import STATUS_PATH

    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # every address: ask as an app on this machine does
    shown = host if ":" not in host else f"[{host}]"
    try:
        answer = httpx2.get(f"http://{shown}:{port}{STATUS_PATH}", headers={"Authorization": f"Bearer {token}"},
                            timeout=1.0, trust_env=False)
    except httpx2.HTTPError:
        return False
    return answer.status_code == 200


def _run(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("uvicorn") is None:  # found, not imported: the tokenizer loads first (below)
        print(Text("本地代理需要额外依赖：pip install 'baicai[sidecar]'", "the sidecar needs: pip install 'baicai[sidecar]'"),
              file=sys.stderr)
        return 2
    from baicai_sdk.integration import TokenizerUnavailable, get_encoding

    try:
        # First, before anything else is imported: building cl100k needs a ~13 MB Python dict beside the ~20 MB
        # tiktoken keeps, and what the process holds at that moment adds to its peak RSS; everything imported
        # after it reuses the freed dict's memory (bench/bench_memory.py). Also here, not at the first chat: a
        # damaged install is one line with its fix, before any banner. serve() finds it loaded.
        get_encoding("cl100k_base")
    except TokenizerUnavailable as exc:
        print(labelled("错误", "error", exc), file=sys.stderr)
        return 1
    from baicai_sdk import mask_key, resolve_credentials
    from baicai_sdk.integration import KeyStoreError

    from ._guard import DEFAULT_ALLOWED_ORIGINS, is_loopback_host
    from ._limits import ServerLimits
    from ._server import serve
    from ._tokens import TokenStore
    from .app import SidecarConfig

    try:
        creds = resolve_credentials(base_url=args.upstream, profile=args.profile, warn=False,  # printed below
                                    key_argument=None)  # no key option: the error lists where the CLI looks
    except (KeyStoreError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in creds.warnings:
        print(labelled("注意", "note", warning), file=sys.stderr)
    try:
        config = SidecarConfig(
            upstream=creds.base_url, api_key=creds.key, profile=creds.profile, tier=creds.tier,
            host=args.host, port=args.port, open_access=args.open_access, allow_remote=args.allow_remote,
            allowed_origins=(*DEFAULT_ALLOWED_ORIGINS, *args.allow_origin),
            extra_hosts=(*args.allow_host, *(() if is_loopback_host(args.host) else (args.host,))),
            max_body=int(args.max_body_mb * 1024 * 1024),
            limits=ServerLimits(head_timeout=args.head_timeout, keepalive_timeout=args.keepalive_timeout,
                                max_head_bytes=args.max_header_kb * 1024, max_connections=args.max_connections),
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    token = TokenStore().default_token()
    shown_host = args.host if ":" not in args.host else f"[{args.host}]"
    from baicai_sdk.integration import bind_socket

    try:
        sock = bind_socket(args.host, args.port)  # before the banner: a busy port must not look like a start
    except OSError as exc:
        print(_cannot_listen(args.host, args.port, exc, token), file=sys.stderr)
        return 1
    port = sock.getsockname()[1]  # the real one, also for --port 0
    bound = sock.getsockname()[0]
    if not args.allow_remote and not is_loopback_host(bound):
        # The name was checked before binding; what was bound is what counts (a name may resolve differently).
        sock.close()
        print(Text(f"错误：{args.host} 绑定到了非回环地址 {bound}；要在局域网监听请加 --allow-remote",
                   f"error: {args.host} bound to {bound}, which is not loopback; pass --allow-remote to listen beyond this machine"),
              file=sys.stderr)
        return 2
    from ._state import clear_state, write_state

    print(Text("白菜GPT 本地代理", "BaicaiGPT sidecar"))
    # Labels before values: the value once, whatever the language (both: "接口地址 / Base URL: …").
    print("  " + labelled("接口地址", "Base URL", f"http://{shown_host}:{port}/v1"))
    if args.open_access:
        print("  " + labelled("API Key", "API Key", Text("任意值（--open）", "anything (--open)")))
        print(Text("  警告：--open 模式下本机任何程序都可使用你的余额",
                   "  WARNING: with --open any local program can spend your balance"), file=sys.stderr)
    else:
        print("  " + labelled("API Key", "API Key", token))
        print(tr("    （本地令牌，不是你的真实密钥；每个应用单独一个：baicai sidecar token add 应用名）",
                 "    (a local token, not your real key; one per app: baicai sidecar token add APP)", sep="\n"))
    print("  " + labelled("上游", "Upstream", f"{creds.base_url}  ({creds.key_source}, {mask_key(creds.key)})"))
    if not is_loopback_host(args.host):
        print(Text(f"  警告：代理监听在 {args.host}，局域网内的设备可访问（仍需令牌）",
                   f"  WARNING: listening on {args.host}; other machines can reach it (a token is still required)"),
              file=sys.stderr)
    write_state(port, args.host)  # `apply --target sidecar` and the TUI read the port from here
    try:
        print(Text("  按 Ctrl-C 停止", "  Ctrl-C to stop"), flush=True)
        _console_log()
        threading.Thread(target=_check_relay, args=(creds.base_url, creds.key), daemon=True, name="relay-check").start()
        serve(config, sock=sock, log_level="warning")  # uvicorn's INFO lines would mix into the banner
        status = 0
    except KeyboardInterrupt:  # before uvicorn took over Ctrl-C
        status = 130
    finally:
        clear_state()
    print(Text("本地代理已停止", "sidecar stopped"), flush=True)
    return status

