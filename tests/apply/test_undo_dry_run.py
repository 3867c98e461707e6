"""``baicai apply APP --undo --dry-run`` says what the undo would do and changes nothing — for every app.

Found by a newcomer: ``--undo --dry-run`` really undid (deleted llm's files and revoked its token). Every adapter's
undo goes through ``apply.undo`` → ``_safety.undo_record``, so one dry-run switch there covers them all; the
parametrised test checks that for each of the 25 apps (file, link and printed-steps ones alike).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import baicai_sidecar.apply as apply_api
from baicai_sidecar._tokens import TokenStore
from baicai_sidecar.apply import Env, Target

from .test_adapters import CASES, _layout, app_env  # noqa: F401 - app_env is a fixture

FILE_CASES = {c.app: c for c in CASES}


def _tree(*roots: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``roots`` with its bytes (folders: None) — a change anywhere shows up."""
    out: dict[str, bytes | None] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for d in dirs:
                out[os.path.join(folder, d)] = None
            for f in files:
                out[os.path.join(folder, f)] = Path(folder, f).read_bytes()
    return out


@pytest.mark.parametrize("app", sorted(apply_api.ADAPTERS))
def test_undo_dry_run_changes_nothing_for_every_app(app: str, app_env: Env) -> None:
    token = TokenStore().issue(app)
    target = Target("sidecar", "http://127.0.0.1:8765/v1", token, "sidecar (test)", "gpt-4-0125-preview")
    case = FILE_CASES.get(app)
    if case is not None:
        _layout(app_env, case.files)
    record = apply_api.apply(apply_api.plan(app, target, env=app_env))
    baicai_home = Path(os.environ["BAICAI_HOME"])
    before = _tree(baicai_home, app_env.home, app_env.cwd)

    preview = apply_api.undo(app, dry_run=True)

    assert _tree(baicai_home, app_env.home, app_env.cwd) == before  # files, record, backups, token store
    assert TokenStore().get(app) == token
    assert preview.dry_run
    assert any("would revoke" in str(note) for note in preview.notes), preview.notes
    if record.changed:  # a file app: each written file is named with the diff that would put it back
        written = {o.path for o in record.outcomes if o.action == "written"}
        assert {o.path for o in preview.outcomes} == written
        assert all(o.action in ("restored", "deleted") and o.diff for o in preview.outcomes), preview.outcomes
        assert all(token not in o.diff for o in preview.outcomes)  # the diff masks the token too

    done = apply_api.undo(app)  # the real undo still has everything it needs, and does what the preview said
    assert [(o.path, o.action) for o in done.outcomes] == [(o.path, o.action) for o in preview.outcomes]
    assert TokenStore().get(app) is None


def test_undo_dry_run_of_an_edited_file_shows_only_our_entry_going(env: Env, target: Target) -> None:
    dotenv = env.cwd / ".env"
    dotenv.write_text("DEBUG=1\n")
    apply_api.apply(apply_api.plan("env", target, env=env))
    dotenv.write_text(dotenv.read_text() + "MINE=2\n")
    edited = dotenv.read_bytes()
    preview = apply_api.undo("env", dry_run=True)
    assert [o.action for o in preview.outcomes] == ["entry-removed"]
    assert "+MINE=2" not in preview.outcomes[0].diff and "-OPENAI_BASE_URL" in preview.outcomes[0].diff
    assert target.key not in preview.outcomes[0].diff
    assert dotenv.read_bytes() == edited
    assert apply_api.undo("env").outcomes[0].action == "entry-removed"
    assert dotenv.read_text() == "DEBUG=1\nMINE=2\n"


@pytest.mark.parametrize("order", [["--undo", "--dry-run"], ["--dry-run", "--undo"]])
def test_cli_undo_dry_run_prints_the_plan_and_the_dry_run_note(order: list[str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from baicai_sdk.cli import main

    folder = tmp_path / "llm"
    monkeypatch.setenv("LLM_USER_PATH", str(folder))
    assert main(["apply", "llm", "--target", "sidecar", "--yes"]) == 0
    token = TokenStore().get("llm")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()

    assert main(["apply", "llm", *order]) == 0
    out = capsys.readouterr().out

    assert "(--dry-run: nothing written)" in out and "（--dry-run：未写入任何文件）" in out
    assert "would delete" in out and "将删除" in out and "+++ /dev/null" in out
    assert "would revoke the sidecar token for llm" in out
    assert "已删除" not in out and "revoked the" not in out
    assert token is not None and token not in out
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert TokenStore().get("llm") == token
    assert main(["apply", "llm", "--undo"]) == 0  # the record is still there for the real undo
    assert not folder.exists() and TokenStore().get("llm") is None
