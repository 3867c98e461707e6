"""What the sidecar loads: neither ``openai`` (+24 MB, +0.5 s at start) nor a tokenizer before traffic needs one."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

_SERVE = """
import json, sys
import httpx2
from baicai_sidecar._server import SidecarServer
from baicai_sidecar._tokens import TokenStore
from baicai_sidecar.app import SidecarConfig

upstream, key = sys.argv[1], sys.argv[2]
loaded = {"at_import": sorted(m for m in ("openai", "tiktoken") if m in sys.modules)}
token = TokenStore().issue("footprint")
with SidecarServer(SidecarConfig(upstream=upstream, api_key=key, tier="paid")) as sc:
    auth = {"authorization": f"Bearer {token}"}
    chat = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client(base_url=sc.base_url, headers=auth, timeout=30) as client:
        statuses = [client.post("/chat/completions", json=chat).status_code,
                    client.post("/chat/completions", json={**chat, "stream": True}).status_code,
                    client.post("/chat/completions", json={**chat, "model": "no-such-model"}).status_code,
                    client.post("/responses", json={"model": "gpt-3.5-turbo", "input": "hi"}).status_code,
                    client.get("/models").status_code]
loaded["after_traffic"] = sorted(m for m in ("openai",) if m in sys.modules)
loaded["statuses"] = statuses
print(json.dumps(loaded))
"""


@pytest.mark.slow  # a fresh interpreter serving real traffic: what it imports is the point
def test_serving_imports_no_openai_and_no_tokenizer_at_start(emulator: Any) -> None:
    result = subprocess.run([sys.executable, "-c", _SERVE, emulator.base_url, emulator.paid_key],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["statuses"][:2] == [200, 200] and loaded["statuses"][2] >= 400, loaded
    assert loaded["at_import"] == [], loaded
    assert loaded["after_traffic"] == [], loaded


_SERVE_ORDER = """
import json, os, sys
from baicai_sdk import _tokens
from baicai_sidecar._server import serve
from baicai_sidecar.app import SidecarConfig

real = _tokens.get_encoding

def get_encoding(name):
    encoding = real(name)
    print(json.dumps({"name": name, "python_ranks_kept": "_mergeable_ranks" in vars(encoding),
                      "loaded_before": [m for m in ("uvicorn", "sqlite3", "baicai_sdk._meter", "asyncio", "httpx2",
                                                    "baicai_sidecar._proxy", "baicai_sidecar._guard") if m in sys.modules]}),
          flush=True)
    os._exit(0)  # only what was there when the tokenizer loaded matters here

_tokens.get_encoding = get_encoding
serve(SidecarConfig(upstream=sys.argv[1], api_key=sys.argv[2], tier="paid", port=0), log_level="warning")
"""


@pytest.mark.slow  # a fresh interpreter
def test_serve_loads_the_tokenizer_before_the_server_and_keeps_one_copy_of_the_ranks(emulator: Any) -> None:
    """The load's transient ranks dict (~13 MB) is freed before uvicorn, the upstream client and the ledger
    allocate, so they reuse it rather than raise the process's peak (bench/bench_memory.py: 75 → 67 MB); only
    tiktoken's Rust core keeps the ranks. Importing the app's config and ``serve`` brings in neither asyncio nor
    httpx2, the guard or the proxy, so the process is small while the dict and the tables coexist (65.7 → 57.7)."""
    result = subprocess.run([sys.executable, "-c", _SERVE_ORDER, emulator.base_url, emulator.paid_key],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"name": "cl100k_base", "python_ranks_kept": False, "loaded_before": []}, seen


_SERVE_FROZEN = """
import gc, json, os, sys, threading, time
import httpx2
from baicai_sdk.integration import bind_socket
from baicai_sidecar._server import serve
from baicai_sidecar._tokens import TokenStore
from baicai_sidecar.app import SidecarConfig

token = TokenStore().issue("frozen")
sock = bind_socket("127.0.0.1", 0)
url = "http://127.0.0.1:%d/v1/chat/completions" % sock.getsockname()[1]
frozen_before = gc.get_freeze_count()

def client():
    deadline = time.monotonic() + 20
    while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    frozen = gc.get_freeze_count()
    chat = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}
    statuses = [httpx2.post(url, json=chat, headers={"authorization": f"Bearer {token}"}, timeout=30).status_code
                for _ in range(3)]
    print(json.dumps({"before": frozen_before, "frozen": frozen, "statuses": statuses, "gc_on": gc.isenabled(),
                      "thresholds": gc.get_threshold()}), flush=True)
    os._exit(0)

threading.Thread(target=client, daemon=True).start()
serve(SidecarConfig(upstream=sys.argv[1], api_key=sys.argv[2], tier="paid", port=0), sock=sock, log_level="warning")
"""


@pytest.mark.slow  # a fresh interpreter serving real traffic
def test_serve_freezes_what_start_up_left_so_a_full_collection_skips_it(emulator: Any) -> None:
    """Start-up's objects (~40,000) are moved out of the cyclic GC's reach once the sidecar serves, so a full
    collection no longer walks them (35–170 ms → ~1 ms); the GC stays on with Python's thresholds and requests
    after the freeze leave no cycles for it."""
    result = subprocess.run([sys.executable, "-c", _SERVE_FROZEN, emulator.base_url, emulator.paid_key],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["before"] == 0 and seen["frozen"] > 10_000, seen
    assert seen["statuses"] == [200, 200, 200], seen
    assert seen["gc_on"] is True and seen["thresholds"] == [700, 10, 10], seen
