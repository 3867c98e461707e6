"""`baicai sidecar` as a person runs it: the banner, the port it really took, and a reason on every console line."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from baicai_sidecar._state import DEFAULT_PORT, current_port, current_url, read_state, state_path

pytestmark = pytest.mark.slow


class Console:
    """A `baicai sidecar` child process; every line it prints (stdout and stderr) lands in ``lines``."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        code = "import sys; from baicai_sdk.cli import main; sys.exit(main(sys.argv[1:]))"
        self.proc = subprocess.Popen([sys.executable, "-c", code, "sidecar", *args], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (self.proc.stdout, self.proc.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            try:
                self._new.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and not any(text in line for line in self.lines):
                    break
        raise AssertionError(f"{text!r} never printed:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(10)  # each ends at its pipe's end: every line the process printed is in ``lines``
        return self.proc.returncode


@pytest.fixture
def child_env(baicai_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAICAI_", "OPENAI_"))}
    env.update(BAICAI_HOME=str(baicai_home), BAICAI_SECRET_STORE="file", NO_PROXY="127.0.0.1,localhost")
    return env


@pytest.fixture
def console(child_env: dict[str, str]) -> Iterator[Any]:
    started: list[Console] = []

    def start(*args: str, **env: str) -> Console:
        c = Console(*args, env={**child_env, **env})
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def _port_from(banner_line: str) -> int:
    return int(banner_line.rsplit(":", 1)[1].split("/")[0])


@contextlib.contextmanager
def _streaming_app(port: int, token: str, *, events: int) -> Iterator[socket.socket]:
    """An app that asks the sidecar for a stream over a plain socket and has read ``events`` of it; it leaves (closes
    the connection) when the block ends."""
    body = json.dumps({"model": "gpt-3.5-turbo", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    with socket.create_connection(("127.0.0.1", port), timeout=10) as app:
        app.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}"
                    f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        received = b""
        while received.count(b"data: {") < events:
            received += app.recv(65536)
        yield app


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGINT to a child")
def test_the_sidecar_says_its_real_port_and_apply_and_the_tui_find_it(console: Any, emulator: Any) -> None:
    assert current_port() == DEFAULT_PORT  # nothing running: the default
    sc = console("--port", "0", "--upstream", emulator.base_url, BAICAI_API_KEY=emulator.paid_key)
    port = _port_from(sc.wait_for("Base URL"))
    sc.wait_for("Ctrl-C")
    assert port not in (0, DEFAULT_PORT)
    state = read_state()
    assert state is not None and state.port == port and state.pid == sc.proc.pid
    assert current_port() == port and current_url() == f"http://127.0.0.1:{port}"

    from baicai_sidecar.apply import build_target

    target = build_target("sidecar", app="llm", issue_token=False)
    assert target.base_url == f"http://127.0.0.1:{port}/v1"
    from baicai_tui.services import Services

    assert Services().sidecar_url == f"http://127.0.0.1:{port}"

    assert sc.stop() in (0, 130)  # 130: the interrupt came before uvicorn took over Ctrl-C
    assert not state_path().exists(), "the state file goes when the sidecar stops"
    assert not any(line.startswith("INFO:") for line in sc.lines), sc.lines
    assert any(line.endswith("sidecar stopped") for line in sc.lines), sc.lines  # Ctrl-C is answered


def test_a_dead_sidecars_state_file_is_ignored(baicai_home: Path) -> None:
    from baicai_sidecar._state import write_state

    write_state(45678)
    assert current_port() == 45678
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    text = state_path().read_text("utf-8").replace(f'"pid": {os.getpid()}', f'"pid": {dead}')
    state_path().write_text(text, "utf-8")
    assert read_state() is None and current_port() == DEFAULT_PORT


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGINT to a child")
def test_every_console_line_says_why(console: Any, emulator: Any) -> None:
    sc = console("--port", "0", "--upstream", emulator.base_url, BAICAI_API_KEY=emulator.free_key,
                 BAICAI_TIER="free")
    port = _port_from(sc.wait_for("Base URL"))
    token = sc.wait_for("API Key").split(":", 1)[1].strip()
    sc.wait_for("Ctrl-C")
    body = {"model": "gpt-4-0125-preview", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}/v1", headers={"Authorization": f"Bearer {token}"},
                       trust_env=False, timeout=10) as client:
        assert client.post("/chat/completions", json=body).status_code == 200
        assert client.post("/chat/completions", json=body).status_code == 429  # the free hour holds one gpt-4
    line = sc.wait_for("-> 429")
    assert "local quota" in line and "gpt-4" in line and "free" in line, line
    with httpx2.Client(trust_env=False, timeout=10) as client:  # the real key pasted where the token goes
        assert client.get(f"http://127.0.0.1:{port}/v1/models",
                          headers={"Authorization": f"Bearer {emulator.free_key}"}).status_code == 401
    line = sc.wait_for("GET /v1/models -> 401")
    assert line.endswith("or make one with `baicai sidecar token add APP`"), line  # the whole hint, uncut
    assert emulator.free_key not in line
    assert sc.stop() in (0, 130)  # 130: the interrupt came before uvicorn took over Ctrl-C

    with socket_closed() as dead:
        down = console("--port", "0", "--upstream", f"http://127.0.0.1:{dead}/v1", BAICAI_API_KEY=emulator.free_key)
        port = _port_from(down.wait_for("Base URL"))
        token = down.wait_for("API Key").split(":", 1)[1].strip()
        down.wait_for("Ctrl-C")
        cheap = {**body, "model": "gpt-3.5-turbo"}
        with httpx2.Client(trust_env=False, timeout=30) as client:
            answer = client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=cheap,
                                 headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 502
        line = down.wait_for("/v1/chat/completions ->")
        assert "-> 502" in line and "upstream_unreachable" in line and "cannot reach the relay" in line, line
        assert "-> -" not in "\n".join(down.lines)
        assert emulator.free_key not in "\n".join(down.lines)


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGINT to a child")
def test_a_key_warning_is_printed_once_as_a_note(console: Any, emulator: Any) -> None:
    sc = console("--port", "0", "--upstream", emulator.base_url, BAICAI_API_KEY="sk-proj-00000000000000000000000000")
    sc.wait_for("Ctrl-C")
    sc.stop()
    said = [line for line in sc.lines if "OpenAI sk- key" in line]
    assert len(said) == 1 and said[0].startswith("注意 / note:"), sc.lines
    assert not any("Warning" in line for line in sc.lines), sc.lines



@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGINT to a child")
def test_ctrl_c_while_an_app_streams_says_so_in_one_line(console: Any, emulator: Any, ledger_rows: Any) -> None:
    """Ctrl-C with a stream in flight: the stream gets 3 s to end, then is cancelled — one line saying so, no
    ERROR and no CancelledError traceback (it read like a crash), and the ledger books the stream as cancelled."""

    emulator.configure(chunk_delay=0.1, reply_tokens=200)  # a 20 s stream
    sc = console("--port", "0", "--upstream", emulator.base_url, BAICAI_API_KEY=emulator.paid_key)
    port = _port_from(sc.wait_for("Base URL"))
    token = sc.wait_for("API Key").split(":", 1)[1].strip()
    sc.wait_for("Ctrl-C")
    with _streaming_app(port, token, events=3):
        started = time.monotonic()
        sc.proc.send_signal(signal.SIGINT)
        # Said at once, not when the grace is over: a person seeing nothing for 3 s presses Ctrl-C again.
        sc.wait_for("stopping: waiting up to 3 s for 1 request(s) in progress", timeout=2.5)
        assert time.monotonic() - started < 2.5
        assert not any("still running after" in line for line in sc.lines), sc.lines
        sc.proc.wait(10)  # not a second Ctrl-C: that would cut the grace short
        assert sc.stop() in (0, 130)
        assert time.monotonic() - started < 9  # 3 s for the stream, then the shutdown itself
    assert any("stopping: cancelled 1 request(s) still running after 3 s" in line for line in sc.lines), sc.lines
    assert not any("Traceback" in line or line.startswith("ERROR") for line in sc.lines), sc.lines
    # The request's own line says it was cut, not just "-> 200" as if it had ended well.
    (done,) = [line for line in sc.lines if "POST /v1/chat/completions -> " in line]
    assert done.endswith("cancelled"), done
    assert [row["status"] for row in ledger_rows()] == ["cancelled"]

@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGINT to a child")
def test_the_console_speaks_chinese_when_baicai_lang_says_so(console: Any, emulator: Any) -> None:
    """BAICAI_LANG=zh: the lines for an app leaving mid-stream, for what a Responses request loses on its way to the
    relay, and for a Responses request the sidecar answers 400 itself are Chinese like the rest (they were English
    only; the last one was not on the console at all)."""

    emulator.configure(chunk_delay=0.05, reply_tokens=200)
    sc = console("--port", "0", "--upstream", emulator.base_url, BAICAI_API_KEY=emulator.paid_key, BAICAI_LANG="zh")
    port = _port_from(sc.wait_for("接口地址"))
    token = sc.wait_for("API Key").split(":", 1)[1].strip()
    sc.wait_for("Ctrl-C")
    with _streaming_app(port, token, events=2):
        pass  # the app leaves mid-stream
    sc.wait_for("应用在流式回答中途离开 /v1/chat/completions（app=default），已取消上游请求")
    emulator.configure(chunk_delay=0.0, reply_tokens=5)
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}/v1", headers={"Authorization": f"Bearer {token}"},
                       trust_env=False, timeout=10) as client:
        tools = {"model": "gpt-3.5-turbo", "input": "hi", "tools": [{"type": "web_search"}],
                 "reasoning": {"effort": "low"}}
        assert client.post("/responses", json=tools).status_code == 200
        unknown = {"model": "gpt-3.5-turbo", "input": "hi", "previous_response_id": "resp_123"}
        assert client.post("/responses", json=unknown).status_code == 400
    assert "已略去 tools:web_search, reasoning" in sc.wait_for("responses -> chat（app=default）")
    refused = sc.wait_for("已拒绝 POST /v1/responses -> 400")
    assert "resp_123" in refused, refused
    sc.stop()
    english = ("upstream request cancelled", "dropped", "refused", "left before")
    assert not [line for line in sc.lines if any(word in line for word in english)], sc.lines


def socket_closed() -> Any:
    @contextlib.contextmanager
    def closed() -> Iterator[int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield port

    return closed()
