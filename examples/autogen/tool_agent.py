"""An AutoGen agent that calls a small local Python function (a tool) through the BaicaiGPT relay.

白菜GPT 中转 + AutoGen：智能体调用本地 Python 函数（工具）。模型决定调用哪个工具、用什么参数；函数在本机运行，
结果再交给模型组织成回答。

Run / 运行::

    export BAICAI_API_KEY=baicai-...          # 或 / or: baicai key add main && baicai key use main
    python examples/autogen/tool_agent.py "上海现在天气怎么样？"

Tools need a model that supports function calling. Of the relay's models, every gpt-3.5-turbo and gpt-4 model does
except the ``-vision-preview`` ones; ``gpt-3.5-turbo-0125`` (the default here) is allowed on the free tier too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import openai
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage, ToolCallExecutionEvent, ToolCallRequestEvent
from autogen_core.models import ModelFamily, ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient

from baicai_sdk._catalog import load_catalog
from baicai_sdk._errors import BaicaiError, MissingCredentials, QuotaExceeded, error_from_response
from baicai_sdk._keys import Credentials, KeyStoreError, resolve_credentials
from baicai_sdk._transport import async_http_client

DEFAULT_MODEL = "gpt-3.5-turbo-0125"


# 1. The tool: an ordinary function. AutoGen builds its JSON schema from the signature and the docstring. -----------
WEATHER = {"北京": "晴 / sunny, 3°C", "上海": "小雨 / light rain, 9°C", "广州": "多云 / cloudy, 19°C"}


def get_weather(city: str) -> str:
    """查询城市当前天气 / Current weather of a city (Chinese city name)."""
    return f"{city}: {WEATHER.get(city, '晴 / sunny, 20°C')}"


# 2. Credentials ---------------------------------------------------------------------------------------------------
def load_credentials() -> Credentials:
    """Key and base URL, or a clear bilingual message and exit status 2 (never a traceback)."""
    try:
        return resolve_credentials()
    except (MissingCredentials, KeyStoreError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


# 3. The model client: only a model that takes tools will do -------------------------------------------------------
def relay_model_info(model: str) -> ModelInfo:
    """AutoGen's ``model_info`` for a relay model; exits when the model cannot call tools."""
    known = load_catalog().chat(model)
    name = model.lower()
    if known is None or "vision" in name:
        print(f"模型 {model} 不能调用工具（或不在白菜GPT 价目表里），请用如 {DEFAULT_MODEL} / "
              f"model {model} cannot call tools (or is not in the relay's catalogue); use e.g. {DEFAULT_MODEL}",
              file=sys.stderr)
        sys.exit(2)
    return ModelInfo(
        vision=False,
        function_calling=True,
        json_output=name == "gpt-3.5-turbo" or any(tag in name for tag in ("1106", "0125", "turbo-preview")),
        family=ModelFamily.GPT_35 if known.family == "gpt-3.5" else ModelFamily.GPT_4,
        structured_output=False,
        multiple_system_messages=True,
    )


def relay_model_client(credentials: Credentials, model: str, tier: str | None) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(  # type: ignore[call-arg]  # http_client: see below
        model=model,
        base_url=credentials.base_url,
        api_key=credentials.key,
        model_info=relay_model_info(model),
        http_client=async_http_client(source="autogen", tier=tier),  # forwarded to AsyncOpenAI
    )


def report_failure(exc: openai.APIError, base_url: str, tier: str | None) -> int:
    """AutoGen raises ``openai``'s exceptions: rebuild baicai's typed error from the answer, for its code and hint."""
    typed = exc if isinstance(exc, BaicaiError) else None
    if typed is None and isinstance(exc, openai.APIStatusError):
        try:
            body: object = exc.response.json()
        except ValueError:
            body = exc.response.text
        typed = error_from_response(exc.response, body)
    if isinstance(typed, QuotaExceeded):  # refused before sending, by the local quota gate
        print(f"\n本机额度保护拒绝了请求 / refused locally: {typed}\n提示 / hint: {typed.hint}", file=sys.stderr)
        if tier is None:
            print("若这是付费密钥，请加 --tier paid（或 baicai key tier NAME paid） / "
                  "if this is a paid key, pass --tier paid (or run: baicai key tier NAME paid)", file=sys.stderr)
    elif typed is not None:
        print(f"\n中转拒绝了请求 / the relay refused: {type(typed).__name__} ({typed.relay_code})\n{typed}\n"
              f"提示 / hint: {typed.hint}", file=sys.stderr)
    elif isinstance(exc, openai.APIConnectionError):
        print(f"\n连不上中转 {base_url}：请检查网络或代理 / cannot reach {base_url}: check the network or proxy",
              file=sys.stderr)
    else:
        print(f"\n请求失败 / request failed: {exc}", file=sys.stderr)
    return 3


# 4. The agent: call the tool, then answer from its result ----------------------------------------------------------
async def ask(question: str, model: str, tier: str | None) -> int:
    credentials = load_credentials()
    # The tier decides which hourly limits the local quota gate applies (unknown counts as free).
    tier = tier or (credentials.tier if credentials.tier in ("free", "paid") else None)
    print(f"中转 / relay: {credentials.base_url}  密钥 / key: {credentials.masked} ({credentials.key_source})  "
          f"等级 / tier: {tier or 'unknown'}  模型 / model: {model}")
    model_client = relay_model_client(credentials, model, tier)
    agent = AssistantAgent(
        "assistant",
        model_client=model_client,
        tools=[get_weather],
        reflect_on_tool_use=True,  # a second request turns the tool's raw result into a sentence
        system_message="回答天气问题时先调用 get_weather。 / Call get_weather before answering weather questions.",
    )
    try:
        result = await agent.run(task=question)
    except openai.APIError as exc:
        return report_failure(exc, credentials.base_url, tier)
    finally:
        await model_client.close()

    print(f"\n[user] {question}")
    for message in result.messages:
        if isinstance(message, ToolCallRequestEvent):
            for call in message.content:
                print(f"[工具调用 / tool call] {call.name}({call.arguments})")
        elif isinstance(message, ToolCallExecutionEvent):
            for outcome in message.content:
                print(f"[工具结果 / tool result] {outcome.content}")
        elif isinstance(message, TextMessage) and message.source == "assistant":
            print(f"[assistant] {message.content}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="AutoGen 工具调用 / an AutoGen tool-calling agent via BaicaiGPT")
    parser.add_argument("question", nargs="?", default="北京今天天气怎么样？ / What is the weather in Beijing today?")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"支持工具的模型 / a model with tools (default {DEFAULT_MODEL})")
    parser.add_argument("--tier", choices=["free", "paid"],
                        help="密钥等级（默认取自配置） / the key's tier (default: the profile's)")
    args = parser.parse_args()
    return asyncio.run(ask(args.question, args.model, args.tier))


if __name__ == "__main__":
    sys.exit(main())
