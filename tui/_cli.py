"""``baicai tui``: registered through the ``baicai.commands`` entry point; textual loads only when it runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from baicai_sdk.integration import Text, tr

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "tui",
        help=tr("终端面板：余额、额度、用量、明细、密钥、本地代理", "terminal dashboard: balance, quota, usage, keys, sidecar"),
        description=tr("白菜GPT 终端面板", "The BaicaiGPT terminal dashboard."),
    )
    parser.add_argument("--lang", choices=("both", "zh", "en"), default=None,
                        help=tr("界面语言（默认按 BAICAI_LANG，否则按系统区域设置）", "label language (default: BAICAI_LANG, else the locale)"))
    parser.add_argument("--sidecar-url", default=None,
                        help=tr("本地代理（sidecar）地址", "sidecar address (default http://127.0.0.1:<default port>)"))
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from .app import make_app
        from .services import Services
    except ModuleNotFoundError as exc:  # textual missing: the [tui] extra is not installed
        if exc.name and exc.name.split(".")[0] == "textual":
            print(Text("需要安装 TUI 组件：pip install 'baicai[tui]'", "the TUI needs: pip install 'baicai[tui]'"),
                  file=sys.stderr)
            return 2
        raise
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # it would write escape codes into a pipe until killed
        print(Text("终端面板需要在终端窗口中运行；脚本里请用 baicai usage（--json）",
                   "the dashboard needs a terminal window; in a script, use `baicai usage` (--json)"), file=sys.stderr)
        return 2
    services = Services(sidecar_url=args.sidecar_url)
    app = make_app(services=services, lang=args.lang)
    app.run()
    return int(app.return_code or 0)
