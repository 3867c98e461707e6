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
