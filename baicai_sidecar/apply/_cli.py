"""``baicai apply``: the command-line face of ``baicai_sidecar.apply`` (the TUI calls the same functions)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text, labelled, tr

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        help=tr("配置第三方应用使用白菜GPT", "point third-party apps at the relay or the sidecar"),
        description=(
            tr("把第三方应用指向白菜GPT 中转或本地 sidecar：先显示差异，备份原文件，原子写入，可 --undo 撤销。",
               "Point an app at the relay or the local sidecar: shows a diff, backs up, writes atomically, --undo reverts.")
        ),
    )
    parser.add_argument("app", nargs="?", help=tr("应用名（见 --list）", "app name (see --list)"))
    parser.add_argument("--list", action="store_true", help=tr("列出支持的应用及本机检测结果", "list apps and what is detected"))
    parser.add_argument("--target", choices=("relay", "sidecar"), default="relay",
                        help=tr("relay：真实密钥直连；sidecar：本地令牌", "relay: the real key; sidecar: a local token"))
    parser.add_argument("--profile", help=tr("使用的密钥档案", "key profile to use"))
    parser.add_argument("--model", help=tr("默认模型", "model (default gpt-3.5-turbo)"))
    parser.add_argument("--port", type=int, help=tr("sidecar 端口", "sidecar port (default: the running sidecar's)"))
    parser.add_argument("--file", type=Path, help=tr("env/autogen：要修改的文件", "env/autogen: the file to edit"))
    parser.add_argument("--shell", choices=("bash", "zsh", "fish", "powershell"),
                        help=tr("env：打印 shell 命令而不改文件", "env: print shell lines instead of editing a file"))
    parser.add_argument("--dry-run", action="store_true", help=tr("只显示差异，不写入", "show the diff, write nothing"))
    parser.add_argument("--undo", action="store_true", help=tr("撤销上一次 apply", "undo the last apply"))
    parser.add_argument("-y", "--yes", action="store_true",
                        help=tr("不询问直接写入（终端中默认先询问；没有终端时必须加 --yes）",
                                 "write without asking (a terminal asks first; without one, --yes is required)"))
    parser.add_argument("--force", action="store_true",
                        help=tr("也改写只读文件（保持只读）", "also write read-only files (they stay read-only)"))
    parser.add_argument("--reveal", action="store_true",
                        help=tr("打印完整密钥（默认隐藏）", "print the full key in instructions and links (masked by default)"))
    parser.add_argument("--no-open", action="store_true", help=tr("不自动打开导入链接", "do not open import links"))
    parser.set_defaults(func=run)


def _out(text: object = "") -> None:
    print(text)


def _err(text: object = "") -> None:
    print(text, file=sys.stderr)


REVEAL_HINT = (
    Text("密钥已隐藏（显示为 …末四位）：加 --reveal 打印可直接使用的完整密钥。",
         "the key is masked (…last four): add --reveal to print the full, usable key.")
)


def _can_ask() -> bool:
    """A person at a terminal sees the diff and says yes. Without a terminal nobody can: a script says ``--yes``
    (writing another app's config only because stdin is not a terminal would surprise the person who ran it)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


NEEDS_YES = Text(
    "未写入任何文件：没有终端可以确认以上改动。确认无误后，加上 --yes 重新运行同一命令（脚本中也请加 --yes）。",
    "nothing written: there is no terminal to confirm the changes above. If they are right, run the same command "
    "again with --yes (scripts should pass --yes too).",
)


def run(args: argparse.Namespace) -> int:
    from . import ApplyError, Options, adapter, apply, build_target, list_apps, open_link, plan, undo

    if args.list or not args.app:
        return _list(list_apps())
    try:
        a = adapter(args.app)
        if args.undo:
            result = undo(args.app, dry_run=args.dry_run)
            actions = UNDO_WOULD if args.dry_run else UNDO_ACTIONS
            for o in result.outcomes:
                _out(f"{actions.get(o.action, o.action)}  {o.path}  {o.detail}")
                if o.diff:
                    _out(o.diff.rstrip("\n"))
            for note in result.notes:
                _out(labelled("注意", "note", note))
            if args.dry_run:
                _out(DRY_RUN_NOTE)
            return 0 if all(o.action != "error" for o in result.outcomes) else 1
        # Without --yes and a terminal a file app only shows its plan (see below): no token is issued for it either.
        preview_only = args.dry_run or (a.kind == "file" and not args.shell and not args.yes and not _can_ask())
        target = build_target(args.target, app=args.app, profile=args.profile, port=args.port, model=args.model,
                              issue_token=not preview_only)
        p = plan(args.app, target, options=Options(file=args.file, shell=args.shell))
    except ApplyError as exc:
        print(labelled("错误", "error", exc), file=sys.stderr)
        return 2
    if args.shell:
        return _shell(args, a.title, target.label, p)
    show = (lambda s: s) if args.reveal else p.mask
    _out(f"{a.title} → {target.label}")
    for change in p.changes:
        if change.changed:
            _out(change.diff.rstrip("\n"))
        else:
            _out(labelled("未改变", "unchanged", change.path))
    for link in p.links:
        which = f" ({link.app})" if len(p.links) > 1 else ""
        _out(labelled(f"导入链接{which}", f"import link{which}", link.url if args.reveal else p.masked_link(link)))
    for line in p.instructions:
        _out(show(line))
    for note in p.notes:
        _out(labelled("注意", "note", note))
    if not args.reveal and any(p.mask(line) != str(line) for line in p.instructions):  # only when a key was hidden
        _out(labelled("注意", "note", REVEAL_HINT))
    if args.dry_run:
        _out(DRY_RUN_NOTE)
        return 0
    if any(change.changed for change in p.changes) and not args.yes and not _can_ask():
        _err(labelled("错误", "error", NEEDS_YES))
        return 1
    if any(change.changed for change in p.changes) and not args.yes:
        try:
            answer = input(tr("写入以上改动？[y/N] ", "Write these changes? [y/N] "))
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes", "是"):
            _out(Text("未写入任何文件。", "nothing written."))
            return 1
    try:
        record = apply(p, force=args.force)
    except ApplyError as exc:
        print(labelled("错误", "error", exc), file=sys.stderr)
        return 2
    for o in record.outcomes:
        if o.action == "written":
            _out(labelled("已写入", "written", o.path))
    if p.changes and not record.changed:
        _out(Text("已是目标配置，无需改动。", "already configured; nothing changed."))
    elif record.changed:
        _out(Text(f"可用 `baicai apply {args.app} --undo` 撤销。", f"undo with `baicai apply {args.app} --undo`."))
    if p.links and not args.no_open and target.kind != "sidecar":
        # A link to the relay carries the real key, and a command line is readable by every local user
        # (/proc/PID/cmdline): hand it to the desktop only when it carries a sidecar token.
        _out(Text("链接含真实密钥，未自动打开：用 --reveal 打印后手动打开，或改用 --target sidecar（只含本地令牌）。",
                  "the link carries your real key, so it was not opened for you: print it with --reveal and open it yourself, or use --target sidecar (a local token only)."))
    elif p.links and not args.no_open:
        # One link at a time: an app shows one import dialog, and a second link would replace the first.
        if open_link(p.links[0].url):
            _out(Text("已在应用中打开，请在应用内确认导入。", "opened in the app: confirm the import there."))
            if len(p.links) > 1:
                _out(Text("其余链接请用 --reveal 打印后逐个打开。", "print the other links with --reveal and open them one by one."))
        else:
            _out(Text("没有桌面会话：加 --reveal 打印完整链接后手动打开。",
                      "no desktop session: print it with --reveal and open it by hand."))
    return 0


def _shell(args: argparse.Namespace, title: object, label: object, p: Any) -> int:
    """``--shell``: stdout carries shell lines only, so ``eval "$(baicai apply env --shell bash --reveal)"`` works.

    Everything for humans goes to stderr. Without ``--reveal`` the lines are printed as comments: a masked key
    exported into the environment would only fail later, far from here, and setting the base URL without the
    key would send whatever OPENAI_API_KEY the shell already has to the relay.
    """
    _err(f"{title} → {label}")
    for note in p.notes:
        _err(labelled("注意", "note", note))
    if args.reveal:
        for line in p.instructions:
            _out(line)
        return 0
    for line in p.instructions:
        _out(f"# {p.mask(line)}")
    _err(labelled("注意", "note", REVEAL_HINT))
    _err(Text("以上各行已注释掉，eval 不会设置任何变量。", "the lines above are commented out: eval sets nothing."))
    return 0


DRY_RUN_NOTE = Text("（--dry-run：未写入任何文件）", "(--dry-run: nothing written)")

UNDO_ACTIONS = {
    "deleted": Text("已删除", "deleted"),
    "restored": Text("已恢复", "restored"),
    "entry-removed": Text("已移除条目", "entry removed"),
    "nothing-to-do": Text("无需改动", "nothing to do"),
    "error": Text("错误", "error"),
}
UNDO_WOULD = {  # --undo --dry-run: the same outcomes, said as what would happen
    "deleted": Text("将删除", "would delete"),
    "restored": Text("将恢复", "would restore"),
    "entry-removed": Text("将移除条目", "would remove the entry"),
    "nothing-to-do": Text("无需改动", "nothing to do"),
    "error": Text("错误", "error"),
}

KIND_LABELS = {
    "file": Text("写入文件", "writes a file"),
    "link": Text("打开链接", "opens a link"),
    "instructions": Text("打印步骤", "prints steps"),
}


def _list(apps: list[Any]) -> int:
    found = [a for a in apps if a.detected]
    width = max(len(a.name) for a in apps)
    kinds = {kind: str(label) for kind, label in KIND_LABELS.items()}
    kind_width = max(len(label) for label in kinds.values())
    for a in apps:
        mark = "✓" if a.detected else "·"
        _out(f"{mark} {a.name:<{width}}  {kinds[a.kind]:<{kind_width}}  {a.changes}")
        if a.where:
            _out(f"  {'':<{width}}  {a.where}")
    _out()
    _out(Text(f"共 {len(apps)} 个应用", f"{len(apps)} apps"))
    if found:
        names = ", ".join(a.name for a in found)
        _out(Text(f"本机检测到 {len(found)} 个应用：{names}", f"detected here: {names}"))
    else:
        _out(Text("本机未检测到任何支持的应用；仍可用 `baicai apply APP` 写入配置或打印步骤。",
                  "none of these apps was detected on this machine; `baicai apply APP` still writes the config or prints the steps."))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m baicai_sidecar.apply._cli``: the same command without the entry-point lookup."""
    parser = argparse.ArgumentParser(prog="baicai")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["apply", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
