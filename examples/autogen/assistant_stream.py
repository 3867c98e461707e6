"""An AutoGen assistant that answers through the BaicaiGPT relay, streaming its reply as it arrives.

白菜GPT 中转 + AutoGen：一个助手智能体，边生成边输出（流式）。

Run / 运行::

    export BAICAI_API_KEY=baicai-...          # 或 / or: baicai key add main && baicai key use main
    python examples/autogen/assistant_stream.py "用一句话介绍白菜GPT"

What it shows, top to bottom:
1. where the key and base URL come from (BAICAI_API_KEY / BAICAI_BASE_URL, else the active profile);
2. ``OpenAIChatCompletionClient`` pointed at the relay, with ``model_info`` filled in (AutoGen cannot guess what a
   relay serves under a model name), and the SDK's metered ``http_client`` so the requests land in the ledger;
3. ``AssistantAgent(model_client_stream=True)``: print each chunk as it comes (a free key after the relay's beta
   may not stream, 48005: then ask again without streaming);
4. what the ledger recorded for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import openai
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ModelClientStreamingChunkEvent, TextMessage
from autogen_core.models import ModelFamily, ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient

from baicai_sdk._catalog import load_catalog
from baicai_sdk._errors import (
    BaicaiError,
    FreeTierStreamNotAllowed,
    MissingCredentials,
    QuotaExceeded,
    error_from_response,
)
from baicai_sdk._keys import Credentials, KeyStoreError, resolve_credentials
from baicai_sdk._transport import async_http_client
from baicai_sdk._usage import Totals, UsageStore

DEFAULT_MODEL = "gpt-3.5-turbo-0125"  # dated: AutoGen warns when an answer names another version


# 1. Credentials ---------------------------------------------------------------------------------------------------
def load_credentials() -> Credentials:
    """Key and base URL, or a clear bilingual message and exit status 2 (never a traceback)."""
    try:
        return resolve_credentials()
    except (MissingCredentials, KeyStoreError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


# 2. What the relay serves under each model name -------------------------------------------------------------------
def relay_model_info(model: str) -> ModelInfo:
    """AutoGen's ``model_info`` for a relay model: family from the baicai catalogue, capabilities from OpenAI's docs.

    Without it AutoGen would look the name up in its own table (and refuse names it does not know).
    """
    known = load_catalog().chat(model)
    if known is None:
        print(f"白菜GPT 价目表里没有模型 {model}，请换一个（如 {DEFAULT_MODEL}） / "
              f"model {model} is not in the relay's catalogue; pick another (e.g. {DEFAULT_MODEL})",
              file=sys.stderr)
        sys.exit(2)
    name = model.lower()
    vision = "vision" in name
    return ModelInfo(
        vision=vision,
        function_calling=not vision,  # the -vision-preview models take no tools
        json_output=name == "gpt-3.5-turbo" or any(tag in name for tag in ("1106", "0125", "turbo-preview")),
        family=ModelFamily.GPT_35 if known.family == "gpt-3.5" else ModelFamily.GPT_4,
        structured_output=False,  # json_schema response formats came after every model the relay lists
        multiple_system_messages=True,
    )


def relay_model_client(credentials: Credentials, model: str, tier: str | None) -> OpenAIChatCompletionClient:
    """The model client. ``http_client`` is forwarded to ``AsyncOpenAI``: every request passes the quota gate and is
    recorded (tokens, CNY) in the local ledger under the source ``autogen``."""
    return OpenAIChatCompletionClient(  # type: ignore[call-arg]  # http_client: see below
        model=model,
        base_url=credentials.base_url,
        api_key=credentials.key,
        model_info=relay_model_info(model),
        http_client=async_http_client(source="autogen", tier=tier),  # forwarded to AsyncOpenAI
    )


def as_baicai_error(exc: openai.APIError) -> BaicaiError | None:
    """AutoGen raises ``openai``'s exceptions; rebuild baicai's typed error (code, hint) from the relay's answer."""
    if isinstance(exc, BaicaiError):
        return exc
    if not isinstance(exc, openai.APIStatusError):
        return None
    try:
        body: object = exc.response.json()
    except ValueError:
        body = exc.response.text
    return error_from_response(exc.response, body)


def report_failure(exc: openai.APIError, base_url: str, tier: str | None) -> int:
    typed = as_baicai_error(exc)
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


# 3. The agent, streaming ------------------------------------------------------------------------------------------
def make_agent(model_client: OpenAIChatCompletionClient, *, stream: bool) -> AssistantAgent:
    return AssistantAgent(
        "assistant",
        model_client=model_client,
        system_message="你是一个简洁的助手，用提问的语言回答。 / You are a concise assistant; answer in the asker's language.",
        model_client_stream=stream,
    )


async def stream_answer(agent: AssistantAgent, question: str) -> int:
    """Print each chunk as it arrives; return how many there were."""
    chunks = 0
    async for event in agent.run_stream(task=question):
        if isinstance(event, ModelClientStreamingChunkEvent):
            chunks += 1
            print(event.content, end="", flush=True)
    print(f"\n\n流式片段 / streamed chunks: {chunks}")
    return chunks


async def ask(question: str, model: str, tier: str | None) -> int:
    credentials = load_credentials()
    # The tier decides which hourly limits the local quota gate applies (unknown counts as free).
    tier = tier or (credentials.tier if credentials.tier in ("free", "paid") else None)
    print(f"中转 / relay: {credentials.base_url}  密钥 / key: {credentials.masked} ({credentials.key_source})  "
          f"等级 / tier: {tier or 'unknown'}  模型 / model: {model}")
    model_client = relay_model_client(credentials, model, tier)
    started = time.time()
    print(f"\n[user] {question}\n[assistant] ", end="", flush=True)
    try:
        try:
            await stream_answer(make_agent(model_client, stream=True), question)
        except openai.APIError as exc:
            # After the relay's beta, free keys may not stream (48005): ask again without streaming.
            if not isinstance(as_baicai_error(exc), FreeTierStreamNotAllowed):
                raise
            print("\n免费密钥不能流式输出（48005），改为一次性返回： / free keys may not stream (48005); "
                  "asking again without streaming:\n[assistant] ", end="", flush=True)
            result = await make_agent(model_client, stream=False).run(task=question)
            reply = result.messages[-1]
            print(reply.content if isinstance(reply, TextMessage) else reply)
    except openai.APIError as exc:
        return report_failure(exc, credentials.base_url, tier)
    finally:
        await model_client.close()

    # What baicai recorded for this run (tokens counted from the stream as it passed, cost from the catalogue).
    by_source = UsageStore().report(by="source", since=started)
    totals = next((row for row in by_source if row.key == "autogen"), Totals())
    print(f"账本 / ledger: {totals.requests} 次请求 / requests, {totals.tokens} 令牌 / tokens, ¥{totals.cost_cny:.4f} CNY "
          "(按价目表 / at catalogue prices)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="AutoGen 流式助手 / a streaming AutoGen assistant via BaicaiGPT")
    parser.add_argument("question", nargs="?", default="用一句话介绍你自己。 / Introduce yourself in one sentence.")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"中转上的模型 / relay model (default {DEFAULT_MODEL})")
    parser.add_argument("--tier", choices=["free", "paid"],
                        help="密钥等级（默认取自配置） / the key's tier (default: the profile's)")
    args = parser.parse_args()
    return asyncio.run(ask(args.question, args.model, args.tier))


if __name__ == "__main__":
    sys.exit(main())
