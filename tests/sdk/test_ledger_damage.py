"""A damaged ledger never stops a request (issue 14, item 1): truncated, garbage, another schema, a read-only data
folder and a full disk — each against an SDK request, a sidecar request, ``baicai usage`` and ``baicai doctor``.

The first three are made in place. A read-only folder and a full disk are real: a small tmpfs mounted (read-only,
or filled to the last byte) in a private mount namespace (``unshare -rm``), where root cannot write either; the test
runs the four checks in a child process there. Where user namespaces are not available, a seam injects SQLite's own
"database or disk is full" error instead.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from baicai_sdk import Baicai, cli
from baicai_sdk._ledger_health import BaicaiLedgerWarning, check, degraded_reason, repair
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._paths import ledger_path
from tests import plain_http

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
KEY = "baicai-damage-aaaaaaaaaaaaaaaaaaaa1234"


def _fill_ledger(rows: int) -> Path:
    """A ledger of ``rows`` settled requests from the last minutes, written in one transaction (quick)."""
    from baicai_sdk import _ledger

    path = ledger_path()
    db = _ledger.connect(path)
    now = time.time()
    db.executemany(
        "INSERT INTO requests (ts, settled_at, key_fp, source, model, family, endpoint, prompt_tokens, "
        "completion_tokens, status, win_tokens) VALUES (?, ?, 'fp', 'sdk', 'gpt-3.5-turbo', 'gpt-3.5', 'chat', "
        "10, 5, 'ok', 15)", [(now - 600 + i, now - 600 + i) for i in range(rows)])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def damage(kind: str) -> Path:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        _fill_ledger(400)
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.truncate(size // 2 + 1000)  # mid-page, as a crash or a bad copy leaves it
    elif kind == "garbage":
        path.write_bytes(os.urandom(3000) + b"not a ledger" * 1000)
    elif kind == "schema":
        with sqlite3.connect(path) as db:  # another program's file where the ledger should be
            db.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, note TEXT)")
            db.execute("INSERT INTO requests (note) VALUES ('theirs')")
            db.execute("PRAGMA user_version = 1")
    else:
        raise AssertionError(kind)
    return path


KINDS = ["truncated", "garbage", "schema"]


@pytest.mark.parametrize("kind", KINDS)
def test_sdk_request_goes_out_with_one_warning(kind: str, emulator: Any) -> None:
    path = damage(kind)
    before = path.read_bytes()
    client = Baicai(api_key=emulator.paid_key, base_url=emulator.base_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            answer = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
            assert answer.choices[0].message.content
        stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    ours = [w for w in caught if issubclass(w.category, BaicaiLedgerWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert ours[0].filename == __file__  # the user's line, not baicai's or openai's
    message = str(ours[0].message)
    assert "内存账本" in message and "in-memory ledger" in message and "baicai doctor --repair" in message
    assert message.index("内存账本") < message.index("in-memory")  # Chinese first
    assert sum(r.path == "/v1/chat/completions" for r in emulator.state.requests) == 4
    assert degraded_reason(path) is not None
    if kind == "schema":  # another program's data is left alone (only its journal mode may have changed)
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT note FROM requests").fetchall() == [("theirs",)]
    else:
        assert path.read_bytes() == before  # the damaged file is left as it was, for repair to salvage


@pytest.mark.parametrize("kind", KINDS)
def test_sidecar_request_served(kind: str, emulator: Any) -> None:
    from baicai_sidecar._server import SidecarServer
    from baicai_sidecar.app import SidecarConfig

    damage(kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with SidecarServer(SidecarConfig(upstream=emulator.base_url, api_key=emulator.paid_key, tier="paid",
                                         open_access=True)) as sidecar:
            for _ in range(2):
                r = plain_http.post(sidecar.base_url + "/chat/completions", headers={"authorization": "Bearer x"},
                                    json={"model": "gpt-3.5-turbo", "messages": MESSAGES})
                assert r.status_code == 200, r.text
                assert r.json()["choices"][0]["message"]["content"]
            status = plain_http.get(sidecar.origin + "/sidecar/status", headers={"authorization": "Bearer x"}).json()
    assert sum(issubclass(w.category, BaicaiLedgerWarning) for w in caught) == 1
    assert status["requests"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_usage_says_what_and_how_in_one_line(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    damage(kind)
    for argv in (["usage"], ["usage", "log"], ["usage", "windows"], ["usage", "--json"]):
        code = cli.main(argv)
        out, err = capsys.readouterr()
        assert code == 1 and out == "", argv
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "baicai doctor --repair" in err and "用量账本" in err and "usage ledger" in err


@pytest.mark.parametrize("kind", KINDS)
def test_doctor_finds_the_damage_and_repair_keeps_the_file(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = damage(kind)
    original = path.read_bytes()
    code = cli.main(["doctor", "--offline"])
    out = capsys.readouterr().out
    assert code == 1 and "Everything looks fine" not in out
    assert "the ledger is damaged" in out and "baicai doctor --repair" in out

    code = cli.main(["doctor", "--offline", "--repair"])
    out = capsys.readouterr().out
    assert "kept, not deleted" in out
    aside = [p for p in path.parent.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == original  # moved, never deleted or changed
    assert check(path).status == "ok"
    assert cli.main(["usage"]) == 0
    out = capsys.readouterr().out
    assert "ledger is damaged" not in out


@pytest.mark.slow
def test_repair_salvages_the_readable_rows_of_a_truncated_ledger() -> None:
    damage("truncated")
    result = repair(ledger_path())
    salvaged = result.salvaged["requests"]
    assert 50 < salvaged < 400  # about the first half: the rows on pages before the cut
    with sqlite3.connect(ledger_path()) as db:
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == salvaged
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM window_log").fetchone()[0] <= 1  # the copies' entries trimmed
    # the fresh ledger works for the next request
    r = Meter(tier="paid").reserve(KEY, describe_request("/v1/chat/completions",
                                                         {"model": "gpt-3.5-turbo", "messages": []}))
    assert isinstance(r, Reservation)


def test_degraded_gate_still_counts_the_last_hour() -> None:
    """A disk that fills up after requests were made: the in-memory ledger starts from the file's last hour, so the
    free tier's 60 requests an hour are not handed out again."""
    _fill_ledger(0)
    meter = Meter(tier="free", quota="raise")
    info = describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []})
    for _ in range(59):
        r = meter.reserve(KEY, info)
        assert isinstance(r, Reservation)
        r.settle(prompt_tokens=5, completion_tokens=5)
    # The seam: this thread's file connection now fails every write as SQLite does on a full disk.
    meter._connections._local.conn = _FailingWrites(meter._connections.get())
    with pytest.warns(BaicaiLedgerWarning, match="disk is full"):
        r = meter.reserve(KEY, info)
    assert isinstance(r, Reservation)
    assert degraded_reason(meter.path) is not None
    r.settle(prompt_tokens=5, completion_tokens=5)
    refused = meter.reserve(KEY, info)
    assert not isinstance(refused, Reservation) and refused.kind != "allow"  # the 61st in the hour


class _FailingWrites:
    """A connection whose writes fail as on a full disk (reads still work), with SQLite's own error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


# -- a read-only folder and a full disk, for real -------------------------------------------------------------------
def _namespaces_work() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_CHILD = textwrap.dedent('''
    import io, json, os, sqlite3, sys, warnings, contextlib
    base_url, key, kind = sys.argv[1:4]
    home = os.environ["BAICAI_HOME"]
    from baicai_sdk._paths import ledger_path
    from baicai_sdk._meter import Meter, describe_request
    # a ledger with a request in it, then the folder goes read-only / the disk fills up
    m = Meter(tier="paid")
    m.reserve("baicai-child-aaaaaaaaaaaa0000", describe_request("/v1/chat/completions",
              {"model": "gpt-3.5-turbo", "messages": []})).settle(prompt_tokens=1, completion_tokens=1)
    m.close()
    db = sqlite3.connect(ledger_path())
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()  # no file open for writing, or the remount is refused
    if kind == "readonly":
        assert os.system(f"mount -o remount,ro {home}") == 0
    else:
        with open(os.path.join(home, "fill"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\\0" * 4096)
            except OSError:
                pass
    out = {}
    from baicai_sdk import Baicai
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Baicai(api_key=key, base_url=base_url)
        out["sdk"] = [bool(client.chat.completions.create(model="gpt-3.5-turbo",
                      messages=[{"role": "user", "content": "hi"}]).choices[0].message.content) for _ in range(2)]
        import httpx2
        from baicai_sidecar._server import SidecarServer
        from baicai_sidecar.app import SidecarConfig
        with SidecarServer(SidecarConfig(upstream=base_url, api_key=key, tier="paid", open_access=True,
                                         verify_token=lambda t: None)) as sc:
            r = httpx2.post(sc.base_url + "/chat/completions", headers={"authorization": "Bearer x"},
                            json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})
            out["sidecar"] = r.status_code
    out["warnings"] = [str(w.message) for w in caught if w.category.__name__ == "BaicaiLedgerWarning"]
    from baicai_sdk import cli
    for name, argv in (("usage", ["usage"]), ("doctor", ["doctor", "--offline"])):
        o, e = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            try:
                code = cli.main(argv)
            except BaseException as exc:
                code = repr(exc)
        out[name] = {"code": code, "out": o.getvalue(), "err": e.getvalue()}
    print("RESULT " + json.dumps(out))
''')


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["readonly", "full"])
def test_readonly_folder_and_full_disk_for_real(kind: str, emulator: Any, tmp_path: Path) -> None:
    if not _namespaces_work():
        pytest.skip("needs Linux user namespaces (unshare -rm) to mount a small tmpfs")
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "BAICAI_HOME": str(mount), "NO_PROXY": "127.0.0.1,localhost"}
    command = (f"mount -t tmpfs -o size=1m tmpfs {mount} && "
               f"{sys.executable} {script} {emulator.base_url} {emulator.paid_key} {kind}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, env=env,
                          timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout + done.stderr
    result = json.loads(lines[0][7:])
    assert result["sdk"] == [True, True] and result["sidecar"] == 200
    assert len(result["warnings"]) == 1
    expected = "磁盘已满" if kind == "full" else "不可写"
    assert expected in result["warnings"][0], result["warnings"]
    for name in ("usage", "doctor"):
        run = result[name]
        assert isinstance(run["code"], int) and "Traceback" not in run["err"], run
    doctor = result["doctor"]
    assert doctor["code"] == 1 and "Everything looks fine" not in doctor["out"]
    fix = "free some space" if kind == "full" else "make the folder writable"
    assert fix in doctor["out"], doctor["out"]
    usage = result["usage"]
    if usage["code"] != 0:  # reading may work (full disk) or not (no WAL index on a read-only mount): one line
        assert len(usage["err"].strip().splitlines()) == 1 and fix in usage["err"], usage


def test_a_locked_ledger_is_used_again_after_a_while_but_damage_is_not(tmp_path: Path) -> None:
    """A lock held past the busy timeout passes; serving from memory for good would hide every other process's
    bookings from this one's gate. Damage stays in memory: the file will not heal by itself."""
    from baicai_sdk._ledger_health import LOCKED_RETRY_SECONDS, FallbackConnections

    now = [1_000.0]
    locked = FallbackConnections(tmp_path / "locked.sqlite3", clock=lambda: now[0])
    damaged = FallbackConnections(tmp_path / "damaged.sqlite3", clock=lambda: now[0])
    for conns in (locked, damaged):
        conns.get().execute("SELECT 1")
    with pytest.warns(BaicaiLedgerWarning, match="5 分钟"):
        locked.degrade(sqlite3.OperationalError("database is locked"))
    with pytest.warns(BaicaiLedgerWarning):
        damaged.degrade(sqlite3.DatabaseError("file is not a database"))
    assert locked.degraded and damaged.degraded
    assert _is_memory(locked.get()) and _is_memory(damaged.get())

    now[0] += LOCKED_RETRY_SECONDS - 1
    assert _is_memory(locked.get())
    now[0] += 2
    assert not _is_memory(locked.get()) and not locked.degraded
    assert _is_memory(damaged.get()) and damaged.degraded


def _is_memory(conn: sqlite3.Connection) -> bool:
    return not conn.execute("PRAGMA database_list").fetchall()[0][2].endswith(".sqlite3")


def test_doctor_names_a_missing_window_trigger_and_accepts_an_older_schema() -> None:
    """Without one of migration 5's triggers a writer's changes never reach the window log, and every Meter's
    window counts go stale without a word: the check names what is missing. A file of an older version lacks
    the window log rightly (the next Meter migrates it) and passes."""
    from baicai_sdk import _ledger

    path = _fill_ledger(3)
    assert check(path).status == "ok"
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER requests_window_update")
    result = check(path)
    assert (result.status, result.kind) == ("damaged", "schema") and "trigger requests_window_update" in result.detail
    repair(path)
    assert check(path).status == "ok"

    older = path.with_name("v4.db")
    with sqlite3.connect(older, isolation_level=None) as db:
        for script in _ledger._MIGRATIONS[:4]:
            for statement in _ledger._split(script):
                db.execute(statement)
        db.execute("PRAGMA user_version = 4")
    assert check(older).status == "ok"
