"""``baicai key …``: add, list, use, show, tier, rm — named profiles for relay keys.

The key itself is never taken from the command line (it would land in shell history and ``ps``): ``add`` reads it
from a hidden prompt when stdin is a terminal, else from stdin (``echo $KEY | baicai key add main``). Everything
printed shows the key masked.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .._text import Text, labelled, tr

__all__ = ["register"]

def _argv_refused(name: str) -> Text:
    return Text(f"出于安全考虑，密钥不能写在命令行参数里（会留在 shell 历史和进程列表中）。请运行 `baicai key add {name}` 后在提示处粘贴，或通过标准输入传入：`printf %s \"$KEY\" | baicai key add {name}`。",
         f"For safety the key cannot be given as a command-line argument (it would stay in shell history and the process list). Run `baicai key add {name}` and paste it at the prompt, or pipe it in: `printf %s \"$KEY\" | baicai key add {name}`.")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "key",
        help=tr("管理 API 密钥配置", "manage API key profiles"),
        description=tr("命名的密钥配置：密钥存于系统密钥环（或显式选择的 0600 文件）。",
                       "Named key profiles: the key lives in the OS keyring (or an explicitly chosen 0600 file)."),
    )
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])
    sub = parser.add_subparsers(dest="key_command", metavar="ACTION")

    add = sub.add_parser(
        "add",
        help=tr("添加或替换一个配置", "add or replace a profile"),
        description=tr("密钥从隐藏提示或标准输入读取，绝不从参数读取。",
                       "The key is read from a hidden prompt or stdin, never from arguments."),
    )
    add.add_argument("name", help=tr("配置名", "profile name, e.g. main"))
    add.add_argument("--tier", choices=("free", "paid", "unknown"), default="unknown",
                     help=tr("会员等级", "membership tier (default: unknown, learned from relay answers)"))
    add.add_argument("--base-url", dest="base_url", default=None, help=tr("此密钥的 API_BASE", "base URL for this key"))
    add.add_argument("--store", choices=("keyring", "file"), default=None,
                     help=tr("密钥存放处",
                             "where the secret goes: keyring (default) or file (<config>/secrets.json, 0600)"))
    add.add_argument("--use", action="store_true",
                     help=tr("同时设为当前配置（第一个配置总是当前配置）", "also make it the active profile (the first profile always is)"))
    # Swallow a key typed after the name, so argparse's own error never echoes it back.
    add.add_argument("stray", nargs="*", help=argparse.SUPPRESS)
    add.add_argument("--key", "--api-key", dest="key_arg", default=None, help=argparse.SUPPRESS)
    add.set_defaults(func=_add)

    lst = sub.add_parser("list", aliases=["ls"], help=tr("列出配置", "list profiles"))
    lst.add_argument("--json", action="store_true", help=tr("JSON 输出", "machine-readable output"))
    lst.set_defaults(func=_list)

    use = sub.add_parser("use", help=tr("设为当前配置", "make a profile the active one"))
    use.add_argument("name")
    use.set_defaults(func=_use)

    show = sub.add_parser("show", help=tr("显示一个配置（密钥已遮蔽）", "show a profile (key masked)"))
    show.add_argument("name", nargs="?", default=None, help=tr("默认当前配置", "default: the active profile"))
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)

    tier = sub.add_parser("tier", help=tr("设置会员等级", "set a profile's tier"))
    tier.add_argument("name")
    tier.add_argument("tier", choices=("free", "paid", "unknown"))
    tier.set_defaults(func=_tier)

    rm = sub.add_parser("rm", aliases=["remove"], help=tr("删除配置及其密钥", "delete a profile and its key"))
    rm.add_argument("name")
    rm.set_defaults(func=_rm)


def _store(store: str | None = None) -> Any:
    from .._keys import KeyStore

    return KeyStore(secret_store=store)


def _fail(exc: Exception) -> int:
    print(labelled("错误", "error", exc), file=sys.stderr)
    return 1


def _read_key() -> str:
    """From a hidden prompt on a terminal, else all of stdin (one key, surrounding whitespace dropped)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(tr("粘贴白菜GPT API 密钥（输入不显示）：", "paste your BaicaiGPT API key (hidden): "))
    return sys.stdin.read() if sys.stdin is not None else ""


def _describe_store(profile: Any, store: Any) -> Text:
    if profile.store == "file":
        return Text(f"文件 {store.secrets_path}", f"the file {store.secrets_path}")
    return Text("系统密钥环", "the OS keyring")


def _add(args: argparse.Namespace) -> int:
    from .._keys import KeyStoreError, NoKeyringBackend, _check_name, key_warnings, mask_key, trimmed_key
    from .._urls import format_changes, normalise_base_url

    if args.stray or args.key_arg:
        print(_argv_refused(args.name), file=sys.stderr)
        return 2
    try:
        store = _store(args.store)
        # Before asking for the secret, so nobody pastes a key only to be told the config is damaged.
        store.list()
        store.ensure_usable()
        _check_name(args.name)
        if args.base_url is not None:
            fixed, changes = normalise_base_url(args.base_url)
            if changes:
                print(format_changes(args.base_url, fixed, changes), file=sys.stderr)
        key = _read_key()
        if not key.strip():
            print(Text("没有读到密钥。", "No key was read (empty input)."), file=sys.stderr)
            return 1
        key, trim_note = trimmed_key(key.rstrip("\r\n"))  # a piped key's newline is expected: no note for it
        if trim_note:
            print(Text(f"注意：{trim_note.zh}", f"note: {trim_note.en}"), file=sys.stderr)
        profile = store.add(args.name, key, tier=args.tier, base_url=args.base_url)
        if args.use:
            profile = store.use(args.name)
    except NoKeyringBackend as exc:
        return _fail(exc)
    except (KeyStoreError, ValueError) as exc:
        return _fail(exc)
    for warning in key_warnings(key, profile.base_url):
        print(Text(f"警告：{warning.zh}", f"warning: {warning.en}"), file=sys.stderr)
    if profile.active:
        active = Text("，已设为当前配置", ", now active")
    else:
        active = Text(f"（切换：baicai key use {profile.name}）", f" (switch with `baicai key use {profile.name}`)")
    where = _describe_store(profile, store)
    print(Text(f"已保存配置 {profile.name}：{mask_key(key)}，等级 {profile.tier}，存于 {where.zh}{active.zh}",
               f"saved profile {profile.name}: {profile.masked}, tier {profile.tier}, kept in {where.en}{active.en}"))
    return 0


def _list(args: argparse.Namespace) -> int:
    from .._keys import KeyStoreError

    try:
        profiles = _store().list()
    except KeyStoreError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps([p.as_dict() for p in profiles], ensure_ascii=False, indent=2))
        return 0
    if not profiles:
        print(Text("还没有配置。用 `baicai key add NAME` 添加；没有密钥可先试 `baicai demo`。",
                   "No profiles yet. Add one with `baicai key add NAME`; without a key, try `baicai demo`."))
        return 0
    from .._text import head_rows
    from ._cells import cells, ljust

    default = tr("（默认）", "(default)")
    rows = [("*" if p.active else " ", p.name, p.masked, p.tier, p.store, p.base_url or default) for p in profiles]
    heads = head_rows(("", "名称", "密钥", "会员等级", "存储", "中转地址"), ("", "name", "key", "tier", "store", "base URL"))
    widths = [max(cells(row[i]) for row in [*heads, *rows]) for i in range(5)]
    for row in [*heads, *rows]:  # a header, so the columns say what they are ("*": the active profile)
        cols = "  ".join(ljust(row[i], widths[i]) for i in range(1, 5))
        print(f"{row[0] or ' '} {cols}  {row[5]}".rstrip())
    return 0


def _use(args: argparse.Namespace) -> int:
    from .._keys import KeyStoreError

    try:
        profile = _store().use(args.name)
    except KeyStoreError as exc:
        return _fail(exc)
    print(Text(f"当前配置：{profile.name}（{profile.masked}）", f"active profile: {profile.name} ({profile.masked})"))
    return 0


def _show(args: argparse.Namespace) -> int:
    from .._keys import KeyStoreError

    try:
        store = _store()
        profile = store.get(args.name) if args.name else store.active()
    except KeyStoreError as exc:
        return _fail(exc)
    if profile is None:
        print(Text("没有当前配置。用 `baicai key use NAME` 选择。", "No active profile; choose one with `baicai key use NAME`."),
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(profile.as_dict(), ensure_ascii=False, indent=2))
        return 0
    from ._cells import cells, ljust

    rows = [
        (tr("名称", "name"), profile.name + ("  " + tr("（当前）", "(active)") if profile.active else "")),
        (tr("密钥", "key"), profile.masked),
        (tr("会员等级", "tier"), profile.tier),
        (tr("中转地址", "base URL"), profile.base_url or tr("（默认）", "(default)")),
        (tr("存储", "store"), _describe_store(profile, store)),
        (tr("指纹", "fingerprint"), profile.fingerprint),
    ]
    width = max(cells(label) for label, _ in rows)
    for label, value in rows:
        print(f"{ljust(label, width)}  {value}")
    return 0


def _tier(args: argparse.Namespace) -> int:
    from .._keys import KeyStoreError

    try:
        profile = _store().set_tier(args.name, args.tier)
    except KeyStoreError as exc:
        return _fail(exc)
    print(Text(f"配置 {profile.name} 的等级：{profile.tier}", f"profile {profile.name} tier: {profile.tier}"))
    return 0


def _rm(args: argparse.Namespace) -> int:
    from .._keys import KeyStoreError

    try:
        store = _store()
        was_active = store.get(args.name).active
        store.remove(args.name)
    except KeyStoreError as exc:
        return _fail(exc)
    print(Text(f"已删除配置 {args.name} 及其密钥", f"removed profile {args.name} and its key"))
    if was_active:
        print(Text("现在没有当前配置；用 `baicai key use NAME` 选择。",
                   "No profile is active now; pick one with `baicai key use NAME`."))
    return 0
