"""Other OpenAI-compatible clients against the emulator: AutoGen (tool round trip, streaming) and the llm CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from baicai_sdk.testing import EmulatorServer


@pytest.mark.slow  # imports AutoGen
async def test_autogen_agent_calls_a_tool_and_streams(emulator: EmulatorServer) -> None:
    agents = pytest.importorskip("autogen_agentchat.agents")
    openai_ext = pytest.importorskip("autogen_ext.models.openai")
    from autogen_core.models import ModelInfo

    async def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"{city}: 晴 25°C"

    client = openai_ext.OpenAIChatCompletionClient(
        model="gpt-3.5-turbo", api_key=emulator.paid_key, base_url=emulator.base_url,
        model_info=ModelInfo(vision=False, function_calling=True, json_output=False, family="unknown",
                             structured_output=False),
    )
    try:
        agent = agents.AssistantAgent("helper", model_client=client, tools=[get_weather], reflect_on_tool_use=True)
        with pytest.warns(UserWarning, match="model mismatch"):  # AutoGen's own note on snapshot names
            result = await agent.run(task="weather in Beijing?")
        assert "晴 25°C" in result.messages[-1].content
        streaming = agents.AssistantAgent("streamer", model_client=client, model_client_stream=True)
        result = await streaming.run(task="hello")
        assert "hello" in result.messages[-1].content
    finally:
        await client.close()
    records = emulator.state.requests
    assert [r.stream for r in records] == [False, False, True]
    assert all(r.status == 200 and r.prompt_tokens > 0 for r in records)


def test_llm_streams_and_not(emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simon Willison's llm, configured the way its docs say for OpenAI-compatible servers (in-process: its CLI
    takes ~6 s per start here, and runs the same code)."""
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: baicai-35\n  model_name: gpt-3.5-turbo\n  api_base: {emulator.base_url}\n  api_key_name: baicai\n"
    )
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path))
    llm = pytest.importorskip("llm")
    model = llm.get_model("baicai-35")
    assert "你好 llm" in model.prompt("你好 llm", key=emulator.free_key, stream=False).text()
    assert "你好 llm" in "".join(model.prompt("你好 llm", key=emulator.free_key))
    assert [r.stream for r in emulator.state.requests] == [False, True]
