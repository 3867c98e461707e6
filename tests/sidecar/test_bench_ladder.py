"""The rungs of ``bench/bench_sidecar.py --breakdown`` still forward what the sidecar forwards.

The rungs are built from the sidecar's own classes (``bench/_ladder.py``); when those change, a rung that silently
answered errors — or a stand-in meter that wrote rows after all — would make the breakdown's figures lie. Each rung
here serves one chat and one stream from the emulator, in-process (the bench runs them as processes).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest

from baicai_sdk.integration import BackgroundServer
from baicai_sidecar._server import SidecarServer

CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "你好"}]}


@pytest.fixture(scope="module")
def ladder() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "_ladder.py"
    spec = importlib.util.spec_from_file_location("bench_ladder", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chat_and_stream(base: str, headers: dict[str, str]) -> None:
    answer = httpx2.post(base + "/chat/completions", json=CHAT, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]
    with httpx2.stream("POST", base + "/chat/completions", json={**CHAT, "stream": True}, headers=headers,
                       timeout=10) as streamed:
        assert streamed.status_code == 200
        events = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_rungs_without_the_sidecar_app_forward_chats_and_streams(ladder: ModuleType, emulator: Any) -> None:
    for rung in (ladder.RawForwarder, ladder.BareForwarder, ladder.ProxyOnly):
        with BackgroundServer(rung(emulator.base_url, emulator.paid_key), lifespan="on") as server:
            _chat_and_stream(server.url + "/v1", {})
            assert httpx2.get(server.url + "/sidecar/status").status_code == 200  # what the bench waits for


def test_the_pipeline_rung_meters_but_writes_no_ledger(ladder: ModuleType, emulator: Any, app_token: str,
                                                        ledger_rows: Callable[[], list[dict[str, Any]]]) -> None:
    """The stand-in meter is asked for every request (the pipeline runs) and records nothing."""
    from baicai_sidecar.app import SidecarConfig

    reserved: list[str] = []

    class Counting(ladder._Unrecorded):  # type: ignore[name-defined,misc]
        def reserve(self, api_key: str, request: Any, **options: Any) -> Any:
            reserved.append(request.model)
            return super().reserve(api_key, request, **options)

    config = SidecarConfig(upstream=emulator.base_url, api_key=emulator.paid_key, tier="paid", quota="off",
                           meter=Counting(source="sidecar", tier="paid"))
    with SidecarServer(config) as sidecar:
        _chat_and_stream(sidecar.base_url, {"authorization": f"Bearer {app_token}"})
    assert reserved == ["gpt-3.5-turbo", "gpt-3.5-turbo"]
    assert ledger_rows() == []
