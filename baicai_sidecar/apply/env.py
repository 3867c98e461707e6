"""``env``: OPENAI_API_KEY / OPENAI_BASE_URL (and the legacy OPENAI_API_BASE) for scripts and SDKs.

Either a project ``.env`` (line-level edits: every other line, comment and ``export`` kept) or, with ``--shell``,
the lines to paste into bash/zsh, fish or PowerShell.
"""

from __future__ import annotations

from pathlib import Path

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, Remover
from ._edit import env_remove, env_set
from ._model import ApplyError, Env, FileEdit, Message, Target

KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE")
SHELLS = ("bash", "zsh", "fish", "powershell")


def _values(target: Target) -> dict[str, str]:
    return {"OPENAI_API_KEY": target.key, "OPENAI_BASE_URL": target.base_url, "OPENAI_API_BASE": target.base_url}


def _quote_posix(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def shell_lines(target: Target, shell: str) -> list[str]:
    values = _values(target)
    if shell in ("bash", "zsh", "sh"):
        return [f"export {k}={_quote_posix(v)}" for k, v in values.items()]
    if shell == "fish":
        return [f"set -gx {k} {_quote_posix(v)}" for k, v in values.items()]
    if shell in ("powershell", "pwsh"):
        return ["$env:{} = '{}'".format(k, v.replace("'", "''")) for k, v in values.items()]
    raise ApplyError(Text(f"不支持的 shell：{shell}，可选 {', '.join(SHELLS)}",
                          f"unsupported shell {shell}: use {', '.join(SHELLS)}"))


class EnvAdapter(Adapter):
    name = "env"
    title = Text("环境变量", ".env (OpenAI SDKs, scripts)")
    summary = Text("项目 .env 中的 OPENAI_API_KEY、OPENAI_BASE_URL；或 --shell 打印", "OPENAI_* in ./.env, or printed with --shell")

    def _path(self, env: Env, options: Options) -> Path:
        return options.file or env.cwd / ".env"

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, paths=(env.cwd / ".env",))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        if options.shell:
            return []
        path = self._path(env, options)
        values = _values(target)
        return [FileEdit(path, "dotenv", lambda old: env_set(old, values, path), self._remove(path), secret=True)]

    def _remove(self, path: Path) -> Remover:
        return lambda current, original, ours: env_remove(current, original, KEYS, path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        return self._remove(path) if part == "dotenv" else None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        if options.shell:
            return Extras(instructions=list[Message](shell_lines(target, options.shell)))
        notes: list[Message] = [Text("python-dotenv、openai 等会读取这些变量", "read by python-dotenv, openai and most SDKs")]
        path = self._path(env, options)
        if committable(path):
            notes.insert(0, Text(f"⚠ {path} 位于 git 仓库中且未被 .gitignore 忽略，密钥可能随提交泄露：请把 .env 加入 .gitignore",
                                 f"⚠ {path} is in a git repository and not ignored: the key could be committed; add .env to .gitignore"))
        return Extras(notes=notes)


def committable(path: Path) -> bool:
    """True when ``path`` lies in a git work tree and git would not ignore it (so a secret in it could be
    committed). Without git installed, any file under a ``.git`` folder's parent counts."""
    import shutil
    import subprocess

    path = path.absolute()
    if not any((parent / ".git").exists() for parent in path.parents):
        return False
    git = shutil.which("git")
    if git is None:
        return True
    try:
        done = subprocess.run([git, "check-ignore", "-q", str(path)], cwd=path.parent, capture_output=True,
                              timeout=5)
    except (OSError, subprocess.SubprocessError):
        return True
    return done.returncode != 0  # 0: ignored; 1: not ignored; 128: not a work tree after all (say so anyway)
