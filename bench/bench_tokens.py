"""Token counting throughput: ``count_chat`` against the cookbook loop on plain tiktoken, same messages.

    python bench/bench_tokens.py [--seconds 2]

Both use the same ``tiktoken.Encoding`` (ours, loaded from the bundled files), so the difference is our overhead:
message framing, part handling, the model → encoding lookup.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baicai_sdk._tokens import count_chat, encoding_for_model  # noqa: E402

CONVERSATION = [
    {"role": "system", "content": "你是一个乐于助人的助手。You are a helpful assistant that answers briefly."},
    {"role": "user", "name": "xiaoming", "content": "请解释一下什么是中转 API，以及为什么国内用户需要它？" * 3},
    {"role": "assistant", "content": "A relay forwards OpenAI-compatible requests. 中转服务把请求转发给 OpenAI。" * 4},
    {"role": "user", "content": "Give me three bullet points, in English and Chinese, about rate limits per hour."},
] * 3


def plain(encoding, messages):  # the cookbook's loop
    n = 0
    for m in messages:
        n += 3
        for k, v in m.items():
            n += len(encoding.encode(v))
            if k == "name":
                n += 1
    return n + 3


def rate(fn, seconds):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for model in ("gpt-3.5-turbo", "gpt-4o"):
        enc = encoding_for_model(model)
        ours_n, plain_n = count_chat(CONVERSATION, model), plain(enc, CONVERSATION)
        assert ours_n == plain_n, (ours_n, plain_n)
        ours = rate(lambda model=model: count_chat(CONVERSATION, model), args.seconds)
        base = rate(lambda enc=enc: plain(enc, CONVERSATION), args.seconds)
        print(f"{model:<14} {len(CONVERSATION)} messages, {ours_n} tokens: count_chat {ours:8.0f} req/s "
              f"({ours * ours_n / 1e6:.2f} M tok/s) | plain tiktoken {base:8.0f} req/s -> overhead "
              f"{(base / ours - 1) * 100:+.1f} %")
    t0 = time.perf_counter()
    count_chat([{"role": "user", "content": "字" * 100_000}], "gpt-4")
    print(f"one 100,000-character Chinese message: {(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
