"""DALL·E 3 and DALL·E 2 through the BaicaiGPT relay with the baicai SDK: sizes, quality, ``n``, saving ``b64_json``
answers to PNG files and downloading ``url`` answers — with the price of each image from the catalogue.

白菜GPT 中转生成图片（DALL·E 3 / DALL·E 2）：不同尺寸、画质、张数；``b64_json`` 直接存成 PNG，``url`` 下载后保存；
每张图的价格来自价目表。DALL·E 只对付费密钥开放：免费密钥会收到 40050，本例把它显示为带提示的错误，而不是堆栈。

Run / 运行::

    export BAICAI_API_KEY=baicai-...          # 或 / or: baicai key add main && baicai key use main
    python examples/dalle/generate_images.py --out dalle-output
    python examples/dalle/generate_images.py --model dall-e-2      # 只跑 DALL·E 2（更便宜）/ DALL·E 2 only (cheaper)

Exit status: 0 done; 2 no key found; 3 the relay (or the local quota guard) refused.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Literal

import httpx2
import openai

from baicai_sdk._catalog import load_catalog
from baicai_sdk._client import Baicai
from baicai_sdk._errors import BaicaiError, MissingCredentials, ModelNotOnFreeTier, QuotaExceeded
from baicai_sdk._keys import KeyStoreError

# What to generate: (model, size, quality, n, response_format). DALL·E 3 makes one image per request (n=1) and has
# two qualities; DALL·E 2 makes up to 10 per request, in three sizes, with no quality setting.
JOBS: list[tuple[str, str, Literal["standard", "hd"] | None, int, Literal["b64_json", "url"]]] = [
    ("dall-e-3", "1024x1024", "standard", 1, "b64_json"),
    ("dall-e-3", "1792x1024", "hd", 1, "url"),
    ("dall-e-2", "512x512", None, 2, "b64_json"),
    ("dall-e-2", "256x256", None, 1, "url"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="DALL·E 生成图片 / DALL·E images via BaicaiGPT")
    parser.add_argument("--prompt", default="一棵水墨风格的大白菜 / a napa cabbage in Chinese ink-wash style")
    parser.add_argument("--out", type=Path, default=Path("dalle-output"), help="保存目录 / output folder")
    parser.add_argument("--model", choices=["dall-e-3", "dall-e-2"], help="只跑一个模型 / only this model")
    parser.add_argument("--tier", choices=["free", "paid"],
                        help="密钥等级；free 时本地拦截付费模型 / the key's tier; with free, paid-only models are stopped locally")
    args = parser.parse_args()

    # 1. The client: key and base URL from BAICAI_API_KEY / BAICAI_BASE_URL or the active profile. -----------------
    #    quota="raise": if the hourly DALL·E window (30 per hour) is full, say so now instead of sleeping.
    try:
        client = Baicai(quota="raise", tier=args.tier)
    except (MissingCredentials, KeyStoreError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"中转 / relay: {client.credentials.base_url}  密钥 / key: {client.credentials.masked} "
          f"({client.credentials.key_source})")

    catalog = load_catalog()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [job for job in JOBS if args.model in (None, job[0])]
    total = 0.0
    saved: list[Path] = []

    for model, size, quality, n, response_format in jobs:
        # 2. The price per image, from the catalogue (the relay's table; a user override applies). ------------------
        image_model = catalog.image(model)
        price = image_model.price(size, quality) if image_model is not None else None
        label = f"{model} {size}" + (f" {quality}" if quality else "") + f" ×{n} ({response_format})"
        shown = f"¥{price:.2f}/张 per image" if price is not None else "价格未知 / price unknown"
        print(f"\n{label}: {shown}")

        # 3. Generate. A relay refusal arrives as a typed exception with the relay's code and a bilingual hint. -----
        try:
            result = client.images.generate(
                model=model, prompt=args.prompt, size=size, n=n, response_format=response_format,
                quality=quality or openai.omit,  # omit: DALL·E 2 takes no quality
            )
        except ModelNotOnFreeTier as exc:  # 40050: DALL·E is for paid keys only
            print(f"✗ {type(exc).__name__} ({exc.relay_code}): 免费密钥不能使用 {model} / a free key cannot use {model}\n"
                  f"  提示 / hint: {exc.hint}", file=sys.stderr)
            return 3
        except QuotaExceeded as exc:  # refused locally before sending: the key is known free, or the window is full
            print(f"✗ {type(exc).__name__}: {exc}\n  提示 / hint: {exc.hint}", file=sys.stderr)
            return 3
        except BaicaiError as exc:  # any other relay code (hourly limit 40040/40041, busy -1, …)
            print(f"✗ {type(exc).__name__} ({exc.relay_code}): {exc}\n  提示 / hint: {exc.hint}", file=sys.stderr)
            return 3
        except openai.APIConnectionError:
            print(f"✗ 连不上中转 {client.credentials.base_url}：请检查网络或代理 / cannot reach "
                  f"{client.credentials.base_url}: check the network or proxy", file=sys.stderr)
            return 3
        except openai.APIError as exc:  # OpenAI's own error passed through (e.g. a content-policy refusal)
            print(f"✗ {type(exc).__name__}: {exc}", file=sys.stderr)
            return 3

        # 4. Save: b64_json is the PNG itself; url must be downloaded (OpenAI's links expire after about an hour). ----
        for index, image in enumerate(result.data or [], start=1):
            path = args.out / f"{model}-{size}{'-' + quality if quality else ''}-{index}.png"
            if image.b64_json:
                path.write_bytes(base64.b64decode(image.b64_json))
            elif image.url:
                try:  # a plain GET, without the relay key: the link itself is the permission
                    download = httpx2.get(image.url, timeout=60.0, follow_redirects=True)
                    download.raise_for_status()
                except httpx2.HTTPError as exc:
                    print(f"  下载失败（链接约一小时后失效，图片已计费）/ download failed (links expire after about an "
                          f"hour; the image was already billed): {type(exc).__name__}: {exc}", file=sys.stderr)
                    continue
                path.write_bytes(download.content)
            else:
                print(f"  第 {index} 张没有图片数据 / image {index} came back empty", file=sys.stderr)
                continue
            saved.append(path)
            print(f"  已保存 / saved {path} ({path.stat().st_size} bytes)")
            if image.revised_prompt:
                print(f"  改写后的提示词 / revised prompt: {image.revised_prompt}")
        if price is not None:
            total += price * n

    print(f"\n共 {len(saved)} 张图片，按价目表合计 / {len(saved)} images, catalogue total: ¥{total:.2f} CNY")
    return 0


if __name__ == "__main__":
    sys.exit(main())
