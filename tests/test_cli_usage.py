"""``baicai usage`` and ``baicai estimate`` through ``cli.main``, on a ledger written by a real Meter."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from baicai_sdk import cli
from baicai_sdk._commands._cells import cells
from baicai_sdk._commands.usage import parse_when
from baicai_sdk._meter import Meter, Reservation, describe_request
from baicai_sdk._paths import ledger_path
from baicai_sdk._tokens import count_chat

KEY = "baicai-cli-aaaaaaaaaaaaaaaaaaaa7777"
MESSAGES = [{"role": "system", "content": "简洁回答"}, {"role": "user", "content": "白菜GPT 是什么？", "name": "li"}]


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _send(model: str, prompt: int, completion: int, source: str = "sdk", app: str | None = None,
          attempt: int = 0) -> None:
    meter = Meter(source, tier="paid")
    r = meter.reserve(KEY, describe_request("/v1/chat/completions", {"model": model, "messages": []}), app=app,
                      attempt=attempt)
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=prompt, completion_tokens=completion)
    meter.close()


def test_usage_json_by_model_and_source(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _send("gpt-4", 1000, 1000)
    _send("gpt-3.5-turbo", 500, 500, source="sidecar", app="LobeChat")
    code, out, _ = run(monkeypatch, capsys, ["usage", "--by", "model", "--json"])
    data = json.loads(out)
    assert code == 0 and data["currency"] == "CNY"
    by = {r["key"]: r for r in data["rows"]}
    assert by["gpt-4"]["cost_cny"] == pytest.approx(1.0) and by["gpt-3.5-turbo"]["total_tokens"] == 1000
    assert data["total"]["requests"] == 2
    code, out, _ = run(monkeypatch, capsys, ["usage", "--by", "source"])
    assert "sidecar:LobeChat" in out and "¥1.0100" in out and KEY not in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "--since", "1h", "--by", "key"])
    assert "baicai-…7777" in out


def test_usage_json_money_has_no_float_noise(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """¥0.1 + ¥0.2 is ¥0.3 in JSON, not 0.30000000000000004 — still a number, exact to the relay's price step."""
    _send("gpt-3.5-turbo", 5000, 5000)  # ¥0.1
    _send("gpt-3.5-turbo", 10000, 10000)  # ¥0.2
    _send("gpt-3.5-turbo", 1, 2)  # ¥0.00003: the six decimals keep a tiny request's cost exact
    out = run(monkeypatch, capsys, ["usage", "--json"])[1]
    total = json.loads(out)["total"]
    assert total["cost_cny"] == 0.30003 and total["cost_low"] == 0.30003 and "0000000" not in out
    rows = json.loads(run(monkeypatch, capsys, ["usage", "log", "--json"])[1])
    assert sorted(r["cost_cny"] for r in rows) == [0.00003, 0.1, 0.2]


def test_usage_log_says_when_there_is_more(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        _send("gpt-3.5-turbo", 10, 10)
    code, out, _ = run(monkeypatch, capsys, ["usage", "log", "--limit", "2"])
    assert code == 0 and out.count("gpt-3.5-turbo") == 2 and "rows 1–2 of 3; more with --offset 2" in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "log", "--offset", "2"])
    assert out.count("gpt-3.5-turbo") == 1 and "of 3" not in out and "retry=" not in out
    _send("gpt-3.5-turbo", 10, 10, attempt=2)  # an app's second retry: a row of its own, said as such
    code, out, _ = run(monkeypatch, capsys, ["usage", "log", "--limit", "1"])
    assert out.splitlines()[-2].endswith(" retry=2")
    assert json.loads(run(monkeypatch, capsys, ["usage", "log", "--limit", "1", "--json"])[1])[0]["attempt"] == 2
    meter = Meter("sidecar", tier="paid")  # a stream the app cancelled: the relay reported no usage
    r = meter.reserve(KEY, describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []}))
    assert isinstance(r, Reservation)
    r.settle(status="cancelled", prompt_tokens=10, completion_tokens=16, stream=True, measured=False)
    meter.close()
    code, out, _ = run(monkeypatch, capsys, ["usage", "log", "--limit", "2"])
    cancelled, retry = [line for line in out.splitlines() if "gpt-3.5-turbo" in line]
    assert "cancelled" in cancelled and " ~¥" in cancelled and "~" not in retry
    assert "~ estimated: the relay reported no usage" in out
    assert json.loads(run(monkeypatch, capsys, ["usage", "log", "--limit", "1", "--json"])[1])[0]["measured"] is False
    code, out, _ = run(monkeypatch, capsys, ["usage", "log", "--offset", "4"])  # the oldest, a first attempt
    zh, en, row = out.splitlines()[:3]  # a header says what each column is, in the rows' columns
    assert zh.startswith("时间") and en.startswith("time") and "gpt-3.5-turbo" in row
    for head in (zh, en):
        for word, value in zip(head.split(), ("", "gpt-3.5-turbo", "ok"), strict=False):
            if value:
                assert cells(head[: head.index(word)]) == row.index(value), (word, head, row)


def test_usage_log_windows_topup_balance(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _send("gpt-4", 100, 100)
    code, out, _ = run(monkeypatch, capsys, ["usage", "log", "--json"])
    (row,) = json.loads(out)
    assert row["model"] == "gpt-4" and row["status"] == "ok" and KEY not in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "windows", "--tier", "paid", "--json"])
    gpt4 = next(w for w in json.loads(out) if w["family"] == "gpt-4")
    assert gpt4["requests_used"] == 1 and gpt4["requests_limit"] == 200
    # Without --tier: the configured key's tier (here BAICAI_TIER), not whatever some other key taught the ledger.
    monkeypatch.setenv("BAICAI_API_KEY", KEY)
    monkeypatch.setenv("BAICAI_TIER", "free")
    code, out, _ = run(monkeypatch, capsys, ["usage", "windows", "--json"])
    gpt35 = next(w for w in json.loads(out) if w["family"] == "gpt-3.5")
    assert gpt35["tier"] == "free" and gpt35["requests_limit"] == 60
    monkeypatch.delenv("BAICAI_API_KEY")
    monkeypatch.delenv("BAICAI_TIER")
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance"])
    # A newcomer's first look: not "the relay gave no balance (no key configured)" — it was never asked.
    assert code == 0 and "no key is configured, so the relay was not asked: save one with `baicai key add NAME`" in out
    assert "the relay gave no balance" not in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "topup", "50", "--note", "支付宝"])
    assert code == 0 and "¥50.0000" in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance", "--json"])
    b = json.loads(out)
    # Spend before the first recorded top-up is not subtracted (record your balance once, then track from there).
    assert b["measured"] is False and b["amount_cny"] == pytest.approx(50) and b["label"].startswith("估算")
    _send("gpt-4", 100, 100)
    for _ in range(3):  # float sums of prices (0.1 + 3 × 0.00003): printed as the money they are
        _send("gpt-3.5-turbo", 1, 2)
    b = json.loads(run(monkeypatch, capsys, ["usage", "balance", "--json"])[1])
    assert b["key_refused"] is False and str(b["used_cny"]) == "0.10009" and str(b["amount_cny"]) == "49.89991"
    assert "no key is configured, the relay was not asked" in b["detail"]
    code, _, err = run(monkeypatch, capsys, ["usage", "topup", "-5"])
    assert code == 2 and "above 0" in err


def test_usage_balance_measured_with_a_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          emulator: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.paid_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    emulator.state.set_balance(emulator.paid_key, 7.25)
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance"])
    assert code == 0 and "¥7.2500" in out and "实测 / measured" in out and emulator.paid_key not in out


@pytest.mark.parametrize("error_status", ["http", "200"])
def test_usage_balance_with_a_refused_key_says_the_key_is_the_problem(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], emulator: Any, error_status: str) -> None:
    """A wrong key (401 / code 40001, or code 40001 under HTTP 200) is not "no top-up recorded": recording one
    would not help. The user hears the key was refused, which one (masked), and how to check it."""
    from baicai_sdk.testing import EmulatorConfig

    emulator.reset(EmulatorConfig(error_status=error_status))  # type: ignore[arg-type]
    wrong = "baicai-wrong-000000000000wxyz"
    monkeypatch.setenv("BAICAI_API_KEY", wrong)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance"])
    # Exit 1: a script checking the balance must not take a refused key for a balance.
    assert code == 1 and "refused the key baicai-…wxyz" in out and "40001" in out and "中转拒绝了密钥" in out
    assert "baicai key list" in out and "baicai doctor" in out and "usage topup" not in out and wrong not in out
    run(monkeypatch, capsys, ["usage", "topup", "5"])  # a recorded top-up still gives the estimate, with the reason
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance"])
    assert code == 1 and "¥5.0000" in out and "[估算 / estimated]" in out and "refused the key" in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance", "--json"])
    assert code == 1 and json.loads(out)["key_refused"] is True
    monkeypatch.setenv("BAICAI_API_KEY", emulator.frozen_key)
    out = run(monkeypatch, capsys, ["usage", "balance"])[1]
    assert "refused the key" in out and "40243" in out and "contact support" in out


def test_estimate_from_stdin_and_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    code, out, _ = run(monkeypatch, capsys, ["estimate", "--model", "gpt-4", "--max-tokens", "200", "--json", "-"],
                       stdin=json.dumps(MESSAGES, ensure_ascii=False))
    data = json.loads(out)
    prompt = count_chat(MESSAGES, "gpt-4")
    assert code == 0 and data["prompt_tokens"] == prompt and data["max_completion_tokens"] == 200
    assert data["cost_cny"]["min"] == pytest.approx(prompt * 0.5 / 1000)
    assert data["cost_cny"]["max"] == pytest.approx((prompt + 200) * 0.5 / 1000)
    assert data["decision"]["kind"] == "allow"
    body = tmp_path / "req.json"
    body.write_text(json.dumps({"model": "gpt-4-0125-preview", "messages": MESSAGES, "max_tokens": 5000}), "utf-8")
    code, out, _ = run(monkeypatch, capsys, ["estimate", str(body), "--tier", "free"])
    assert code == 0 and "额度：不会发送" in out and "quota: refused" in out and "1000" in out
    assert "cost: ¥0 (it would not be sent; if sent: ¥" in out  # not a bare range next to "refused"
    assert not ledger_path().exists() or json.loads(run(monkeypatch, capsys, ["usage", "--json"])[1])["rows"] == []


def test_estimate_waits_when_the_window_is_full(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    meter = Meter(tier="free")
    r = meter.reserve(KEY, describe_request("/v1/chat/completions", {"model": "gpt-4-0125-preview", "messages": []}))
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=10, completion_tokens=10)
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4-0125-preview", "--tier", "free", "--json", "-"],
                       stdin="[]")
    d = json.loads(out)["decision"]
    assert d["kind"] == "wait" and 3590 < d["wait_seconds"] <= 3600 and "1/1" in d["reason"]


def test_estimate_errors_are_bilingual(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(monkeypatch, capsys, ["estimate", "-"], stdin="[]")
    assert code == 2 and "--model" in err
    code, _, err = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4", "-"], stdin="{not json")
    assert code == 2 and "JSON" in err and " / " in err
    code, _, err = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4", "/nonexistent.json"])
    assert code == 2 and "no such file" in err


def test_parse_when() -> None:
    import datetime as dt

    tz = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime(2026, 11, 27, 10, 0, tzinfo=tz).timestamp()
    assert parse_when("7d", now=now) == now - 7 * 86400
    assert parse_when("today", now=now, tz=tz) == dt.datetime(2026, 11, 27, tzinfo=tz).timestamp()
    assert parse_when("month", now=now, tz=tz) == dt.datetime(2026, 11, 1, tzinfo=tz).timestamp()
    assert parse_when("2026-11-01", tz=tz) == dt.datetime(2026, 11, 1, tzinfo=tz).timestamp()
    with pytest.raises(Exception, match="7d"):
        parse_when("last tuesday")


def test_a_topup_says_it_only_feeds_the_estimate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                 emulator: Any) -> None:
    monkeypatch.setenv("BAICAI_API_KEY", emulator.paid_key)
    monkeypatch.setenv("BAICAI_BASE_URL", emulator.base_url)
    emulator.state.set_balance(emulator.paid_key, 0.0)
    code, out, _ = run(monkeypatch, capsys, ["usage", "topup", "30"])
    assert code == 0 and "¥30.0000" in out and "only feeds this machine's balance estimate" in out and "估算" in out
    code, out, _ = run(monkeypatch, capsys, ["usage", "balance"])
    lines = out.splitlines()
    assert "¥0.0000" in lines[0] and "实测 / measured" in lines[0]  # the relay's own figure, labelled as such
    estimate = next(line for line in lines if "local estimate" in line)
    assert "¥30.0000" in estimate and "[估算]" in estimate and "[estimated]" in estimate and "the measured figure above is the relay's" in estimate


def test_usage_table_columns_line_up_in_terminal_cells(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from baicai_sdk._commands._cells import cells

    _send("gpt-4", 1000, 1000)
    _send("gpt-3.5-turbo", 500, 500, source="sidecar", app="LobeChat")
    code, out, _ = run(monkeypatch, capsys, ["usage", "--by", "model"])
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("模型/model") and lines[-1].startswith("合计/total")
    widths = {cells(line) for line in lines}
    assert len(widths) == 1, [(cells(line), line) for line in lines]  # right-aligned figures end in one column
    assert cells("白菜ab") == 6 and cells("e\u0301") == 1


@pytest.mark.slow  # three fresh interpreters: what they import is the point
def test_balance_and_doctor_never_import_openai(emulator: Any, baicai_home: Path) -> None:
    """The ledger and billing paths parse relay answers without openai's ~1 s import (bench/bench_cli.py)."""
    import os
    import subprocess

    code = ("import sys; from baicai_sdk.cli import main; main(sys.argv[1:]); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'pydantic'}))")
    env = {**os.environ, "BAICAI_API_KEY": emulator.paid_key, "BAICAI_BASE_URL": emulator.base_url,
           "BAICAI_HOME": str(baicai_home), "NO_PROXY": "127.0.0.1,localhost"}
    for argv in (["usage", "balance"], ["usage"], ["doctor"]):
        out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                             timeout=120).stdout
        assert out.strip().splitlines()[-1] == "[]", (argv, out)


def test_estimate_says_an_unknown_model_is_unknown(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`-m gpt-9` used to print "allowed": the relay's catalogue has no such model, so nothing was judged."""
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-9", "-"], stdin="[]")
    assert code == 1, out  # the relay would refuse it: a script notices
    assert "unknown model: gpt-9 is not in the catalogue" in out and "未知模型" in out
    assert "known models: gpt-3.5-turbo, " in out and "gpt-4-turbo-preview" in out
    assert "allowed" not in out and "cannot predict" in out
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4-turbo", "--json", "-"], stdin="[]")
    data = json.loads(out)
    assert code == 1 and data["model_known"] is False and "gpt-4-turbo-preview" in data["did_you_mean"]
    assert data["decision"]["kind"] == "allow"  # the gpt-4 family's windows were judged …
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4-turbo", "-"], stdin="[]")
    assert "the model itself is unknown" in out  # … and the text does not stop there
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-9", "--json", "-"], stdin="[]")
    assert json.loads(out)["decision"]["kind"] == "unknown"
    # Another OpenAI-compatible server: its own model names are normal there, no hourly limits apply.
    monkeypatch.setenv("BAICAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("BAICAI_API_KEY", "sk-litellm-aaaaaaaaaaaa")
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "llama3", "-"], stdin="[]")
    assert code == 0 and "its cost is unknown" in out and "allowed" in out
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4", "--json", "-"], stdin="[]")
    assert code == 0 and json.loads(out)["model_known"] is True and "known_models" not in json.loads(out)


def test_estimate_says_where_it_reads_and_what_to_give_it(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`baicai estimate -m gpt-4` alone waited in silence at a terminal; empty input read as broken JSON."""
    import os
    import pty
    import subprocess

    code, _, err = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4"], stdin="")
    assert code == 2 and "no input: name a JSON file or pipe the messages in" in err and "| baicai estimate" in err
    assert "not valid JSON" not in err
    leader, follower = pty.openpty()
    try:
        done = subprocess.Popen([sys.executable, "-m", "baicai_sdk.cli", "estimate", "-m", "gpt-4"], stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(leader, b'[{"role": "user", "content": "hi"}]\n\x04')
        out, err = done.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 0 and "reading messages JSON from standard input (end with Ctrl-D" in err
    assert "prompt tokens" in out


def test_usage_log_marks_a_tier_unknown_row_apart_from_an_estimated_one(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An ``ok`` row of a key whose tier nobody knows has the relay's usage, only its price is uncertain (paid price,
    ¥0 if free): ``≤``, with its own legend — not ``~`` "the relay reported no usage" (newcomer trial, finding 6)."""
    meter = Meter("sdk")  # no tier configured
    r = meter.reserve(KEY, describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []}))
    assert isinstance(r, Reservation)
    r.settle(prompt_tokens=16, completion_tokens=200)
    meter.close()
    code, out, _ = run(monkeypatch, capsys, ["usage", "log"])
    (row,) = [line for line in out.splitlines() if "gpt-3.5-turbo" in line]
    assert code == 0 and " ok " in row and "≤¥0.0022" in row and "~" not in row
    assert "≤ at most: the relay reported the usage, but the key's tier is unknown" in out
    assert "(¥0 if the key is free)" in out and "baicai key tier NAME free|paid" in out and "BAICAI_TIER" in out
    assert "按付费价记账（免费会员为 ¥0）" in out and "~ estimated" not in out
    (data,) = json.loads(run(monkeypatch, capsys, ["usage", "log", "--json"])[1])
    assert data["measured"] is False and data["estimate_reason"].startswith("tier unknown: booked at the paid price")
    _send("gpt-3.5-turbo", 10, 10)  # a paid key's row: measured, no mark, no reason
    meter = Meter("sdk")  # and a cancelled stream of the unknown key: its usage is the estimate, so "~"
    r = meter.reserve(KEY, describe_request("/v1/chat/completions", {"model": "gpt-3.5-turbo", "messages": []}))
    assert isinstance(r, Reservation)
    r.settle(status="cancelled", prompt_tokens=10, completion_tokens=16, stream=True, measured=False)
    meter.close()
    out = run(monkeypatch, capsys, ["usage", "log"])[1]
    cancelled, paid, unknown = [line for line in out.splitlines() if "gpt-3.5-turbo" in line]
    assert " ~¥" in cancelled and "≤" not in paid and "~" not in paid and "≤¥0.0022" in unknown
    assert "~ estimated: the relay reported no usage" in out and "≤ at most" in out
    newest = json.loads(run(monkeypatch, capsys, ["usage", "log", "--json"])[1])
    assert newest[1]["measured"] is True and newest[1]["estimate_reason"] is None
    assert "closed early" in newest[0]["estimate_reason"]


def test_free_tier_wording_names_the_free_gpt4_models(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The README's `estimate --model gpt-4` on a free key, and `usage windows`' "gpt-4 free 0/1": both say that the
    free tier's gpt-4 is gpt-4-0125-preview… (RELAY.md), not gpt-4 itself (newcomer trial, finding 5)."""
    from baicai_sdk._catalog import load_catalog

    catalog = load_catalog(fresh=True)
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4", "--tier", "free", "-"], stdin="[]")
    assert "quota: refused — the free tier cannot use gpt-4: its gpt-4 models are gpt-4-0125-preview" in out
    assert "额度：不会发送 — 免费会员不能使用 gpt-4" in out and "gpt-3.5-turbo" not in out
    code, out, _ = run(monkeypatch, capsys, ["estimate", "-m", "gpt-4", "--tier", "free", "--json", "-"], stdin="[]")
    alternatives = json.loads(out)["decision"]["alternatives"]
    assert "gpt-4-0125-preview" in alternatives
    assert all(catalog.allowed_on_free(m) and catalog.family(m) == "gpt-4" for m in alternatives)
    monkeypatch.setenv("BAICAI_API_KEY", KEY)
    monkeypatch.setenv("BAICAI_TIER", "free")
    out = run(monkeypatch, capsys, ["usage", "windows"])[1]
    note = out.splitlines()[-1]
    assert note.startswith("免费会员只能用这些型号") and "the free tier may use only these models" in note
    assert "gpt-4: gpt-4-0125-preview, gpt-4-1106-vision-preview, gpt-4-1106-preview" in note
    assert "gpt-3.5: gpt-3.5-turbo," in note and "16k" not in note
    import re

    named = re.findall(r"(gpt-[\w.-]+)(?=[,;]|$)", note.split("the free tier may use only these models")[1])
    assert len(named) == 7 and all(catalog.allowed_on_free(m) for m in named), named  # family labels end in ":"
    out = run(monkeypatch, capsys, ["usage", "windows", "--tier", "paid"])[1]
    assert "may use only" not in out


def test_a_zero_cost_row_of_an_unknown_tier_is_not_marked() -> None:
    """¥0 whatever the tier (a relay refusal before any model ran): exact, so no "at most" mark."""
    import dataclasses

    from baicai_sdk._ledger import TIER_UNKNOWN_REASON
    from baicai_sdk._usage import LedgerRow

    row = LedgerRow(id=1, time=0.0, model="gpt-3.5-turbo", family="gpt-3.5", endpoint="chat", source="sdk", app=None,
                    key_fingerprint="fp", key_hint=None, status="error", prompt_tokens=5, completion_tokens=0,
                    prompt_tokens_estimated=5, completion_tokens_estimated=0, images=0, cost_cny=0.0,
                    cost_estimated=0.0, relay_code=40020, http_status=429, latency_ms=1, stream=False, tier=None,
                    measured=False, estimate_reason=TIER_UNKNOWN_REASON)
    assert row.cost_mark == ""
    assert dataclasses.replace(row, cost_cny=0.001).cost_mark == "≤"
    assert dataclasses.replace(row, estimate_reason="stream closed early").cost_mark == "~"
    assert dataclasses.replace(row, measured=True, estimate_reason=None).cost_mark == ""
