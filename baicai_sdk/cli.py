"""The ``baicai`` command.

Core subcommands live in ``baicai_sdk._commands``; the sidecar and the TUI add theirs through the
``baicai.commands`` entry-point group, so this module never imports the packages above it and
``baicai --help`` lists exactly what is installed. Each command module has
``register(subparsers) -> None`` and sets ``func`` (``args -> int exit status``) on its parser.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from ._text import Text, labelled, tr

__all__ = ["main", "build_parser"]

_CORE = ("demo", "emulator", "doctor", "key", "usage", "estimate")

# Which extra brings each optional import: a base install (`pip install baicai`) still lists every command, and a
# command that needs an extra says so in one line instead of a traceback.
_EXTRA_OF = {
    "uvicorn": "sidecar", "httptools": "sidecar", "uvloop": "sidecar",
    "tomlkit": "sidecar", "ruamel": "sidecar", "textual": "tui", "rich": "tui",
    "autogen_agentchat": "examples", "autogen_ext": "examples", "PIL": "examples",
}


def missing_extra(exc: BaseException) -> Text | None:
    """The one-line bilingual advice when ``exc`` is an optional dependency's ``ModuleNotFoundError``, else None."""
    from ._serving import UvicornMissing

    if isinstance(exc, UvicornMissing):
        exc = exc.__cause__ or exc
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    module = exc.name.split(".")[0]
    extra = _EXTRA_OF.get(module)
    if extra is None:
        return None
    install = f'pip install "baicai[{extra}]"'
    return (Text(f"这个命令需要可选组件 [{extra}]（缺少 {module}）：{install}",
                 f"this command needs the [{extra}] extra ({module} is not installed): {install}"))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole ``baicai`` parser, or — given the command about to run — a parser with only that subcommand.

    Building every subcommand means reading the installed packages' entry points (``importlib.metadata``) and
    importing each registrar: about a third of a quick command's start-up. ``pip`` and ``git`` do the same: the
    command word picks one parser; only ``baicai``, ``baicai --help`` and a word that names no command build all.
    """
    parser = argparse.ArgumentParser(
        prog="baicai",
        description=tr("白菜GPT 中转 API 工具箱", "Client toolkit for the BaicaiGPT relay."),
        epilog=tr("无密钥时 `baicai demo` 离线运行演示。", "With no key, `baicai demo` runs an offline demo."),
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"baicai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title=tr("子命令", "commands"))
    for register in _registrars(command):
        register(sub)
    return parser


def _registrars(command: str | None) -> list[Any]:
    """``register`` functions: the one for ``command`` when it names an installed command, else all of them."""
    if command in _CORE:
        return [importlib.import_module(f"baicai_sdk._commands.{command}").register]
    from importlib.metadata import entry_points

    plugins = sorted(entry_points(group="baicai.commands"), key=lambda e: e.name)
    chosen = [ep for ep in plugins if ep.name == command]
    if chosen:
        return [ep.load() for ep in chosen]
    core = [importlib.import_module(f"baicai_sdk._commands.{name}").register for name in _CORE]
    return core + [ep.load() for ep in plugins]  # registration imports nothing heavy; each command's deps load when it runs


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when it starts with one (an option first, like ``--help``, needs every command)."""
    if argv and not argv[0].startswith("-"):
        return argv[0]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_word(argv))
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    _plain_warnings()
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(Text("\n已中断", "\ninterrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `baicai apply --list | head`: the reader left, which is not an error. Python's documented recipe: point
        # stdout at devnull so the interpreter's final flush does not raise again, and exit as `head` expects.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command that stopped on a closed pipe
    except Exception as exc:
        line = _ledger_problem(exc)
        if line is not None:
            # A damaged ledger is the user's to fix, not a bug: one line that says what and how, never a traceback.
            print(line, file=sys.stderr)
            return 1
        advice = missing_extra(exc) if isinstance(exc, (ModuleNotFoundError, RuntimeError)) else None
        if advice is None:
            raise
        print(f"baicai {args.command}: {advice}", file=sys.stderr)
        return 2


def _plain_warnings() -> None:
    """baicai's own warnings print as one line ("注意 / note: …") on a terminal, not as Python's file:line form."""
    import warnings

    if getattr(warnings.showwarning, "_baicai", False):
        return
    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if category.__module__.startswith("baicai_sdk"):
            print(labelled("注意", "note", message), file=file or sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    show._baicai = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _ledger_problem(exc: BaseException) -> str | None:
    """The bilingual one-liner for an error that comes from the ledger file (the only SQLite file baicai has)."""
    from ._ledger_health import is_ledger_failure, problem_line

    if not is_ledger_failure(exc):
        return None
    from ._paths import ledger_path

    return problem_line(ledger_path(), exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
