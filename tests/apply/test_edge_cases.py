"""``apply`` on the files people really have: CRLF, a UTF-8 BOM, read-only files, a concurrent writer, huge files,
TOML inline tables, and layouts an adapter did not foresee."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar.apply import ApplyError, Env, Target, UnparseableFile, _journal, _safety
from baicai_sidecar.apply._model import FileEdit

from .test_adapters import CASES, Case, _layout, app_env  # noqa: F401 - app_env is a fixture

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def _no_temps_or_journal(*folders: Path) -> None:
    for folder in folders:
        assert not list(folder.rglob("*.baicai-tmp")), folder
    assert not (_safety.apply_root() / "journal" / "intent.json").exists()


@pytest.mark.parametrize("bom", [False, True], ids=["crlf", "crlf+bom"])
@pytest.mark.parametrize("case", CASES, ids=[c.app for c in CASES])
def test_crlf_and_bom_are_kept_for_every_format(case: Case, bom: bool, app_env: Env, target: Target) -> None:
    files = {rel: ("\ufeff" if bom else "") + text.replace("\n", "\r\n") for rel, text in case.files.items()}
    paths = _layout(app_env, files)
    originals = {rel: p.read_bytes() for rel, p in paths.items()}
    apply_api.apply(apply_api.plan(case.app, target, env=app_env))
    for rel, path in paths.items():
        data = path.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n"), (rel, "mixed line endings")
        assert data.startswith(b"\xef\xbb\xbf") == bom and data.count(b"\xef\xbb\xbf") == int(bom), rel
    assert not apply_api.plan(case.app, target, env=app_env).changed  # applying again changes nothing
    assert apply_api.undo(case.app).exact
    assert {rel: p.read_bytes() for rel, p in paths.items()} == originals


def test_crlf_bom_file_edited_by_the_user_keeps_its_shape_when_only_our_entry_is_removed(env: Env, target: Target) -> None:
    dotenv = env.cwd / ".env"
    dotenv.write_bytes("\ufeffDEBUG=1\r\n".encode())
    apply_api.apply(apply_api.plan("env", target, env=env))
    dotenv.write_bytes(dotenv.read_bytes() + b"MINE=2\r\n")  # the user's own later edit
    result = apply_api.undo("env")
    assert [o.action for o in result.outcomes] == ["entry-removed"]
    assert dotenv.read_bytes() == "\ufeffDEBUG=1\r\nMINE=2\r\n".encode()


@posix_only
def test_a_read_only_file_is_refused_unless_forced_and_stays_read_only(app_env: Env, target: Target) -> None:
    case = next(c for c in CASES if c.app == "llm")
    paths = _layout(app_env, case.files)
    auth = paths["llm/keys.json"]
    auth.chmod(0o444)
    originals = {rel: p.read_bytes() for rel, p in paths.items()}
    plan = apply_api.plan("llm", target, env=app_env)
    with pytest.raises(ApplyError, match=r"只读.*--force.*read-only \(mode 0444\)"):
        apply_api.apply(plan)
    assert {rel: p.read_bytes() for rel, p in paths.items()} == originals  # neither file of the pair was written
    assert not (_safety.apply_root() / "records" / "llm.json").exists()

    apply_api.apply(plan, force=True)
    assert auth.read_bytes() != originals["llm/keys.json"]
    assert stat.S_IMODE(auth.stat().st_mode) == 0o400  # still read-only, and (it holds the key) the owner's only
    assert apply_api.undo("llm").exact
    assert {rel: p.read_bytes() for rel, p in paths.items()} == originals
    assert stat.S_IMODE(auth.stat().st_mode) == 0o444


@posix_only
def test_the_cli_names_force_for_a_read_only_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from baicai_sidecar.apply._cli import main

    monkeypatch.setenv("BAICAI_API_KEY", "baicai-cli0000000000000000000wxyz")
    dotenv = tmp_path / "ro.env"
    dotenv.write_text("A=1\n")
    dotenv.chmod(0o444)
    assert main(["env", "--file", str(dotenv), "--yes"]) == 2
    assert "--force" in capsys.readouterr().err and dotenv.read_text() == "A=1\n"
    assert main(["env", "--file", str(dotenv), "--force", "--yes"]) == 0
    assert "OPENAI_API_KEY" in dotenv.read_text() and stat.S_IMODE(dotenv.stat().st_mode) == 0o400


@pytest.mark.parametrize("when", ["before-any-rename", "after-the-first-rename"])
def test_a_concurrent_writer_is_never_overwritten(
    when: str, app_env: Env, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program writes a file between our plan's check and our rename: we refuse and roll back the rest."""
    case = next(c for c in CASES if c.app == "llm")  # writes extra-openai-models.yaml, then keys.json
    paths = _layout(app_env, case.files)
    originals = {rel: p.read_bytes() for rel, p in paths.items()}
    victim = paths["llm/keys.json"]
    theirs = b'{"openai": "sk-written-meanwhile"}\n'
    real_step = _journal.step
    trigger = "temp keys.json" if when == "before-any-rename" else "synced llm-dir"

    def step(what: str) -> None:
        if what == trigger and victim.read_bytes() != theirs:
            victim.write_bytes(theirs)  # the other program, in place (no rename: an editor's plain save)
        real_step(what)

    monkeypatch.setattr(_journal, "step", step)
    with pytest.raises(ApplyError, match="另一个程序修改.*changed by another program while baicai was writing"):
        apply_api.apply(apply_api.plan("llm", target, env=app_env))
    assert victim.read_bytes() == theirs  # their write survives
    models = "llm/extra-openai-models.yaml"
    assert paths[models].read_bytes() == originals[models]  # ours was put back
    assert not (_safety.apply_root() / "records" / "llm.json").exists()
    _no_temps_or_journal(app_env.home, _safety.apply_root())


@pytest.mark.slow
def test_a_huge_yaml_file_is_refused_at_once_and_left_alone(app_env: Env, target: Target) -> None:
    config = Path(app_env.environ["AICHAT_CONFIG_DIR"]) / "config.yaml"
    config.parent.mkdir(parents=True)
    body = "clients:\n" + "".join(f"  - type: openai\n    name: c{i}\n    api_key: sk-{i:08d}\n" for i in range(450_000))
    config.write_text(body)
    assert config.stat().st_size > 25_000_000
    started = time.monotonic()
    with pytest.raises(UnparseableFile, match=r"太大.*too large \(2\d\.\d MB; the limit for YAML files is 64 KB\)"):
        apply_api.plan("aichat", target, env=app_env)
    assert time.monotonic() - started < 5  # a refusal, not ten minutes of parsing
    assert config.read_text() == body


INLINE = (
    'model = "o3"\n'
    'model_providers = { other = { name = "Other", base_url = "https://other.example/v1" } }\n'
    "\n"
    "[mcp_servers.docs]\n"
    'command = "npx"\n'
)


def test_codex_inline_table_providers_are_extended_in_place_and_undone(env: Env, sidecar_target: Target) -> None:
    import tomlkit

    config = env.home / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text(INLINE)
    apply_api.apply(apply_api.plan("codex", sidecar_target, env=env))
    doc = tomlkit.parse(config.read_text()).unwrap()
    assert doc["model_providers"]["other"]["name"] == "Other"
    assert doc["model_providers"]["baicai"]["base_url"] == sidecar_target.base_url
    assert doc["model_provider"] == "baicai" and doc["mcp_servers"]["docs"]["command"] == "npx"
    config.write_text(config.read_text() + "# mine\n")  # edited since: undo takes out only our entry
    result = apply_api.undo("codex")
    assert "entry-removed" in [o.action for o in result.outcomes]
    doc = tomlkit.parse(config.read_text()).unwrap()
    assert "baicai" not in doc["model_providers"] and doc["model"] == "o3" and "model_provider" not in doc


def test_an_editor_surprised_by_a_layout_refuses_instead_of_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text("x = 1\n")

    def add(old: str | None) -> str:
        raise KeyError("a layout nobody foresaw")

    edit = FileEdit(path, "config", add, lambda current, original, ours: current)
    with pytest.raises(UnparseableFile, match=r"无法安全地编辑.*KeyError.*left untouched"):
        _safety.make_change(edit, lambda text: text)
    assert path.read_text() == "x = 1\n"
