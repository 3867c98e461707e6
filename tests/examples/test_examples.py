"""Every example, run as a reader would run it (a subprocess with BAICAI_* set), against the emulator.

Checks what each one printed or saved: PNG files that decode at the requested size, the agents' turns, the tool call,
the cost line (against what the emulator charged), and that refusals and missing keys end in a message, not a
traceback. AutoGen's import costs a second or two per process, so there is one subprocess per behaviour.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from baicai_sdk._codes import RELAY_CODES
from baicai_sdk._usage import UsageStore

pytestmark = pytest.mark.slow  # each test runs an example script in a fresh interpreter (AutoGen imports: 5-15 s)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(script: str, *args: str, emulator: Any = None, key: str | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script>`` with the environment a user would set; BAICAI_HOME (from conftest, per test) is also
    the working directory, so nothing lands in the repository."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    env.pop("BAICAI_API_KEY", None)
    env.pop("BAICAI_BASE_URL", None)
    if emulator is not None:
        env["BAICAI_BASE_URL"] = emulator.base_url
    if key is not None:
        env["BAICAI_API_KEY"] = key
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env, cwd=cwd or env["BAICAI_HOME"], capture_output=True, text=True, encoding="utf-8", timeout=90,
    )
    if key is not None:
        assert key not in done.stdout + done.stderr, "an example printed the key in full"
    return done


def chat_records(emulator: Any) -> list[Any]:
    return [r for r in emulator.state.requests if r.path.endswith("/chat/completions")]


# ---------------------------------------------------------------------------------------------------------- DALL·E
def test_dalle_paid_key_saves_pngs_of_the_requested_sizes_and_prices_them(emulator: Any, tmp_path: Path) -> None:
    out = tmp_path / "images"
    done = run_example("dalle/generate_images.py", "--out", str(out), emulator=emulator, key=emulator.paid_key)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, no logs: a clean run is quiet

    expected = {
        "dall-e-3-1024x1024-standard-1.png": (1024, 1024),
        "dall-e-3-1792x1024-hd-1.png": (1792, 1024),  # a url answer, downloaded
        "dall-e-2-512x512-1.png": (512, 512),
        "dall-e-2-512x512-2.png": (512, 512),  # n=2
        "dall-e-2-256x256-1.png": (256, 256),  # a url answer, downloaded
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, size in expected.items():
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert (image.format, image.size) == ("PNG", size), name

    # Prices per image from the catalogue, and the total, which is what the relay charged.
    for line in ("dall-e-3 1024x1024 standard ×1 (b64_json): ¥0.40/张", "dall-e-3 1792x1024 hd ×1 (url): ¥1.20/张",
                 "dall-e-2 512x512 ×2 (b64_json): ¥0.18/张", "dall-e-2 256x256 ×1 (url): ¥0.16/张",
                 "5 images, catalogue total: ¥2.12 CNY"):
        assert line in done.stdout
    images = [r for r in emulator.state.requests if r.path.endswith("/images/generations")]
    assert [(r.model, r.images, r.status) for r in images] == [
        ("dall-e-3", 1, 200), ("dall-e-3", 1, 200), ("dall-e-2", 2, 200), ("dall-e-2", 1, 200)]
    assert sum(r.cost for r in images) == pytest.approx(2.12)
    # ...and what the SDK wrote in the ledger.
    totals = UsageStore().summary()
    assert (totals.requests, totals.images) == (4, 5)
    assert totals.cost_cny == pytest.approx(2.12)


def test_dalle_free_key_shows_the_typed_error_and_hint_not_a_traceback(emulator: Any, tmp_path: Path) -> None:
    out = tmp_path / "images"
    first = run_example("dalle/generate_images.py", "--out", str(out), emulator=emulator, key=emulator.free_key)
    assert first.returncode == 3
    assert "Traceback" not in first.stderr
    assert "ModelNotOnFreeTier (40050)" in first.stderr
    assert str(RELAY_CODES[40050].hint) in first.stderr
    assert not list(out.glob("*.png"))
    assert [(r.model, r.relay_code) for r in emulator.state.requests] == [("dall-e-3", 40050)]

    # The 40050 taught the SDK that this key is free, but a learned tier may be stale (a top-up upgrades the key)
    # and the relay's refusal costs nothing: a second run asks again and reports the same typed error.
    second = run_example("dalle/generate_images.py", "--out", str(out), emulator=emulator, key=emulator.free_key)
    assert second.returncode == 3
    assert "Traceback" not in second.stderr and "ModelNotOnFreeTier (40050)" in second.stderr
    assert [r.relay_code for r in emulator.state.requests] == [40050, 40050]

    # --tier free (the user says so) is trusted: refused locally, before sending.
    third = run_example("dalle/generate_images.py", "--out", str(out), "--tier", "free", emulator=emulator,
                        key=emulator.free_key)
    assert third.returncode == 3 and "Traceback" not in third.stderr
    assert "QuotaExceeded" in third.stderr and "dall-e-3" in third.stderr
    assert len(emulator.state.requests) == 2


def test_dalle_reads_the_active_profile_when_no_variable_is_set(emulator: Any, tmp_path: Path) -> None:
    from baicai_sdk._keys import KeyStore

    store = KeyStore(secret_store="file")  # CI has no keyring backend
    store.add("main", emulator.paid_key, tier="paid", base_url=emulator.base_url)
    store.use("main")
    out = tmp_path / "images"
    done = run_example("dalle/generate_images.py", "--model", "dall-e-2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, no logs: a clean run is quiet
    assert f"中转 / relay: {emulator.base_url}  密钥 / key: baicai-…paid (profile:main)" in done.stdout
    assert emulator.paid_key not in done.stdout + done.stderr  # only ever masked
    assert sorted(p.name for p in out.iterdir()) == ["dall-e-2-256x256-1.png", "dall-e-2-512x512-1.png",
                                                     "dall-e-2-512x512-2.png"]
    assert "3 images, catalogue total: ¥0.52 CNY" in done.stdout


@pytest.mark.parametrize("script", ["dalle/generate_images.py", "autogen/tool_agent.py"])
def test_without_a_key_the_examples_say_where_to_put_one(script: str, tmp_path: Path) -> None:
    done = run_example(script, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "BAICAI_API_KEY" in done.stderr and "baicai key add" in done.stderr
    assert done.stderr.index("找不到") < done.stderr.index("No BaicaiGPT API key")  # Chinese first


# ---------------------------------------------------------------------------------------------------------- AutoGen
def test_autogen_assistant_streams_its_answer_through_the_ledger(emulator: Any) -> None:
    done = run_example("autogen/assistant_stream.py", "你好，白菜", emulator=emulator, key=emulator.free_key)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, no logs: a clean run is quiet
    assert "[user] 你好，白菜\n[assistant] Emulator reply to: 你好" in done.stdout
    chunks = int(re.search(r"streamed chunks: (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    assert chunks > 1

    [record] = chat_records(emulator)
    assert (record.model, record.stream, record.status) == ("gpt-3.5-turbo-0125", True, 200)
    [row] = UsageStore().rows(source="autogen")
    assert row.stream and row.model == "gpt-3.5-turbo-0125" and row.status == "ok"
    assert (row.prompt_tokens, row.completion_tokens) == (record.prompt_tokens, record.completion_tokens)
    tokens = record.prompt_tokens + record.completion_tokens
    assert f"账本 / ledger: 1 次请求 / requests, {tokens} 令牌 / tokens, ¥{row.cost_cny:.4f} CNY" in done.stdout


def test_autogen_assistant_falls_back_to_one_answer_when_a_free_key_may_not_stream(emulator: Any) -> None:
    emulator.configure(free_stream=False)  # after the relay's beta
    done = run_example("autogen/assistant_stream.py", "你好", emulator=emulator, key=emulator.free_key)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, no logs: a clean run is quiet
    assert "free keys may not stream (48005); asking again without streaming:\n[assistant] Emulator reply to: 你好" \
        in done.stdout
    assert [(r.stream, r.relay_code) for r in chat_records(emulator)] == [(True, 48005), (False, None)]


@pytest.mark.parametrize(
    ("task", "max_turns", "speakers", "stopped"),
    [
        # The emulator never approves: the turn limit stops the run (task + 4 turns = 5 messages).
        ("写一句广告语", "4", ["writer", "reviewer", "writer", "reviewer"], "Maximum number of messages 5 reached"),
        # The emulator echoes the task, so here both agents "say" APPROVE: only the reviewer's counts.
        ("APPROVE", "6", ["writer", "reviewer"], "Text 'APPROVE' mentioned"),
    ],
)
def test_autogen_writer_and_reviewer_take_turns_and_print_the_run_cost(
    emulator: Any, task: str, max_turns: str, speakers: list[str], stopped: str
) -> None:
    done = run_example("autogen/writer_reviewer.py", task, "--max-turns", max_turns,
                       emulator=emulator, key=emulator.paid_key)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, no logs: a clean run is quiet
    turns = re.findall(r"^\[turn (\d)\] (writer|reviewer): ", done.stdout, flags=re.M)
    assert turns == [(str(i), who) for i, who in enumerate(speakers, start=1)]
    assert f"停止原因 / stopped: {stopped}" in done.stdout

    line = re.search(r"this run: (\d+) 次请求 / requests, (\d+) 令牌 / tokens \(prompt (\d+), completion (\d+)\), "
                     r"花费 / cost ¥([0-9.]+) CNY", done.stdout)
    assert line is not None, done.stdout
    requests, tokens, prompt, completion = (int(line.group(i)) for i in range(1, 5))
    charged = chat_records(emulator)
    assert requests == len(charged) == len(speakers)
    assert prompt == sum(r.prompt_tokens for r in charged)
    assert completion == sum(r.completion_tokens for r in charged)
    assert tokens == prompt + completion
    assert float(line.group(5)) == pytest.approx(sum(r.cost for r in charged), abs=5e-5)
    assert float(line.group(5)) > 0


def test_autogen_team_stopped_by_the_quota_gate_explains_why_and_still_prints_the_cost(emulator: Any) -> None:
    # A free key said to be free: the gate applies the free gpt-4 limit (1 per hour) and stops the second turn.
    done = run_example("autogen/writer_reviewer.py", "--model", "gpt-4-0125-preview", "--tier", "free",
                       emulator=emulator, key=emulator.free_key)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr  # AutoGen's runtime logs one per agent error unless silenced
    assert "refused locally" in done.stderr
    [sent] = chat_records(emulator)  # the second turn never left the machine
    assert f"this run: 1 次请求 / requests, {sent.prompt_tokens + sent.completion_tokens} 令牌" in done.stdout
    assert f"¥{sent.cost:.4f} CNY" in done.stdout


def test_autogen_tool_agent_calls_the_local_function_and_quotes_its_result(emulator: Any) -> None:
    done = run_example("autogen/tool_agent.py", emulator=emulator, key=emulator.free_key)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, no logs: a clean run is quiet
    # The emulator fills the tool's required string argument with "example"; the function runs locally.
    assert '[工具调用 / tool call] get_weather({"city": "example"})' in done.stdout
    assert "[工具结果 / tool result] example: 晴 / sunny, 20°C" in done.stdout
    assert "[assistant] The tool returned: example: 晴 / sunny, 20°C" in done.stdout
    first, second = chat_records(emulator)
    assert first.model == second.model == "gpt-3.5-turbo-0125"
    assert first.status == second.status == 200


def test_autogen_relay_refusal_is_reported_with_its_code_and_hint(emulator: Any) -> None:
    done = run_example("autogen/tool_agent.py", "--model", "gpt-4-0613", emulator=emulator, key=emulator.free_key)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert "ModelNotOnFreeTier (40050)" in done.stderr
    assert str(RELAY_CODES[40050].hint) in done.stderr
