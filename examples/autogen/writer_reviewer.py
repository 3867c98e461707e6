"""Two AutoGen agents — a writer and a reviewer — take turns through the BaicaiGPT relay until the reviewer approves
(or a turn limit is reached); then the run's requests, tokens and CNY cost are read back from the local ledger.

白菜GPT 中转 + AutoGen：写手与审稿人轮流发言，审稿人说 APPROVE（或达到轮数上限）即停止；最后从本地账本读出本次
运行的请求数、令牌数和人民币花费。

Run / 运行::

    export BAICAI_API_KEY=baicai-...          # 或 / or: baicai key add main && baicai key use main
    python examples/autogen/writer_reviewer.py "为一家卖白菜的小店写一句广告语"

The cost comes from the ledger (every request AutoGen sends passes the SDK's metered ``http_client``), so it is what
baicai recorded for this run's requests — the same figures `baicai usage` shows — not an estimate made afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

import httpx2
import openai
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.models import ModelFamily, ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient

from baicai_sdk._catalog import load_catalog
from baicai_sdk._errors import BaicaiError, MissingCredentials, QuotaExceeded, error_from_response
from baicai_sdk._keys import Credentials, KeyStoreError, resolve_credentials
from baicai_sdk._transport import async_http_client
from baicai_sdk._usage import Totals, UsageStore

DEFAULT_MODEL = "gpt-3.5-turbo-0125"  # dated: AutoGen warns when an answer names another version
SOURCE = "autogen"  # the ledger's "source" column for this example's requests


# 1. Credentials ---------------------------------------------------------------------------------------------------
def load_credentials() -> Credentials:
    """Key and base URL, or a clear bilingual message and exit status 2 (never a traceback)."""
    try:
        return resolve_credentials()
    except (MissingCredentials, KeyStoreError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


# 2. The model client ----------------------------------------------------------------------------------------------
def relay_model_info(model: str) -> ModelInfo:
    """AutoGen's ``model_info`` for a relay model: family from the baicai catalogue, capabilities from OpenAI's docs."""
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
        function_calling=not vision,
        json_output=name == "gpt-3.5-turbo" or any(tag in name for tag in ("1106", "0125", "turbo-preview")),
        family=ModelFamily.GPT_35 if known.family == "gpt-3.5" else ModelFamily.GPT_4,
        structured_output=False,
        multiple_system_messages=True,
    )


def relay_model_client(credentials: Credentials, model: str, tier: str | None,
                       failures: list[httpx2.Response]) -> OpenAIChatCompletionClient:
    """One client shared by both agents. Its ``http_client`` meters every request into the ledger, and keeps the
    failed answers since the last success: a team reports an agent's exception only as text, the answer explains it."""
    http_client = async_http_client(source=SOURCE, tier=tier)

    async def keep_failure(response: httpx2.Response) -> None:
        if response.status_code < 400:
            failures.clear()
        else:
            await response.aread()
            failures.append(response)

    http_client.event_hooks["response"].append(keep_failure)
    return OpenAIChatCompletionClient(  # type: ignore[call-arg]  # http_client: see below
        model=model,
        base_url=credentials.base_url,
        api_key=credentials.key,
        model_info=relay_model_info(model),
        http_client=http_client,  # forwarded to AsyncOpenAI (not in AutoGen's TypedDict)
    )


def report_failure(exc: Exception, answer: httpx2.Response | None, base_url: str, tier: str | None) -> int:
    """Explain why the run stopped: baicai's typed error (code, hint) rebuilt from the failed answer, if any."""
    typed: BaicaiError | None = None
    if answer is not None:
        try:
            body: object = answer.json()
        except ValueError:
            body = answer.text
        typed = error_from_response(answer, body)
    if isinstance(typed, QuotaExceeded):  # refused before sending, by the local quota gate
        print(f"\n本机额度保护拒绝了请求 / refused locally: {typed}\n提示 / hint: {typed.hint}", file=sys.stderr)
        if tier is None:
            print("若这是付费密钥，请加 --tier paid（或 baicai key tier NAME paid） / "
                  "if this is a paid key, pass --tier paid (or run: baicai key tier NAME paid)", file=sys.stderr)
    elif typed is not None:
        print(f"\n中转拒绝了请求 / the relay refused: {type(typed).__name__} ({typed.relay_code})\n{typed}\n"
              f"提示 / hint: {typed.hint}", file=sys.stderr)
    elif "APIConnectionError" in str(exc) or isinstance(exc, openai.APIConnectionError):
        print(f"\n连不上中转 {base_url}：请检查网络或代理 / cannot reach {base_url}: check the network or proxy",
              file=sys.stderr)
    else:
        print(f"\n对话中断 / the run stopped: {exc}", file=sys.stderr)
    return 3


# 3. The team ------------------------------------------------------------------------------------------------------
async def run(task: str, model: str, max_turns: int, tier: str | None) -> int:
    credentials = load_credentials()
    # The key's tier decides which hourly limits the local quota gate applies; an unknown one is judged by the
    # limits both tiers share until the relay's answer tells the tier, so say "free" or "paid" when you know it.
    tier = tier or (credentials.tier if credentials.tier in ("free", "paid") else None)
    print(f"中转 / relay: {credentials.base_url}  密钥 / key: {credentials.masked} ({credentials.key_source})  "
          f"等级 / tier: {tier or 'unknown'}  模型 / model: {model}")
    failures: list[httpx2.Response] = []
    # AutoGen's runtime logs every agent error with a full traceback; this script explains the error itself.
    logging.getLogger("autogen_core").setLevel(logging.CRITICAL)
    model_client = relay_model_client(credentials, model, tier, failures)
    writer = AssistantAgent(
        "writer",
        model_client=model_client,
        system_message="你是文案写手。按要求写一版短文案；收到审稿意见后只输出修改后的文案。 / "
        "You are a copywriter. Write one short draft; after feedback, output only the revised draft.",
    )
    reviewer = AssistantAgent(
        "reviewer",
        model_client=model_client,
        system_message="你是审稿人。文案合格就只回复 APPROVE；否则给出一条具体修改意见。 / "
        "You are a reviewer. If the draft is good reply only APPROVE; otherwise give one concrete suggestion.",
    )
    # Stop when the reviewer (not the task text, not the writer) says APPROVE, or after max_turns agent turns
    # (+1: the task itself counts as a message).
    termination = TextMentionTermination("APPROVE", sources=["reviewer"]) | MaxMessageTermination(max_turns + 1)
    team = RoundRobinGroupChat([writer, reviewer], termination_condition=termination)

    started = time.time()
    status = 0
    try:
        result = await team.run(task=task)
    except (openai.APIError, RuntimeError) as exc:  # a team re-raises an agent's error as RuntimeError("Type: text")
        status = report_failure(exc, failures[-1] if failures else None, credentials.base_url, tier)
    else:
        turns = [m for m in result.messages if isinstance(m, TextMessage) and m.source != "user"]
        print(f"\n[task] {task}")
        for number, message in enumerate(turns, start=1):
            print(f"[turn {number}] {message.source}: {message.content}")
        print(f"\n停止原因 / stopped: {result.stop_reason}")
    finally:
        await model_client.close()

    # 4. What the run cost, from the ledger (also when it stopped early: what was sent was spent) --------------------
    # The ledger is shared by every process on this machine (sidecar, other scripts): count only rows written
    # since this run started, under this example's source.
    by_source = UsageStore().report(by="source", since=started)
    totals = next((row for row in by_source if row.key == SOURCE), Totals())
    print(f"本次运行 / this run: {totals.requests} 次请求 / requests, {totals.tokens} 令牌 / tokens "
          f"(prompt {totals.prompt_tokens}, completion {totals.completion_tokens}), "
          f"花费 / cost ¥{totals.cost_cny:.4f} CNY (按价目表 / at catalogue prices)")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description="AutoGen 写手与审稿人 / AutoGen writer and reviewer via BaicaiGPT")
    parser.add_argument("task", nargs="?",
                        default="为一家卖白菜的小店写一句广告语。 / Write a one-line slogan for a shop selling napa cabbage.")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"中转上的模型 / relay model (default {DEFAULT_MODEL})")
    parser.add_argument("--max-turns", type=int, default=4, help="最多几轮发言 / most agent turns (default 4)")
    parser.add_argument("--tier", choices=["free", "paid"],
                        help="密钥等级（默认取自配置） / the key's tier (default: the profile's)")
    args = parser.parse_args()
    return asyncio.run(run(args.task, args.model, args.max_turns, args.tier))


if __name__ == "__main__":
    sys.exit(main())
