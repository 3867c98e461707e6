"""Images (real PNGs of the requested size, url or b64_json, prices) and the one-api style billing endpoints."""

from __future__ import annotations

import base64
import io

import httpx2
import pytest
from PIL import Image

from baicai_sdk.testing import EmulatorServer
from tests import plain_http


def _decode(png: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every row: a broken IDAT would raise here
    assert image.format == "PNG"
    return image.size


@pytest.mark.parametrize(
    ("model", "size", "quality", "price"),
    [("dall-e-2", "256x256", None, 0.16), ("dall-e-2", "512x512", None, 0.18), ("dall-e-2", "1024x1024", None, 0.2),
     ("dall-e-3", "1024x1024", "standard", 0.4), ("dall-e-3", "1792x1024", "standard", 0.8),
     ("dall-e-3", "1024x1792", "hd", 1.2), ("dall-e-3", "1024x1024", "hd", 0.8)],
)
def test_b64_images_have_the_size_and_price(emulator: EmulatorServer, paid: httpx2.Client, model: str, size: str,
                                            quality: str | None, price: float) -> None:
    body = {"model": model, "prompt": "a white cabbage", "size": size, "response_format": "b64_json"}
    if quality:
        body["quality"] = quality
    answer = paid.post("/images/generations", json=body).json()
    png = base64.b64decode(answer["data"][0]["b64_json"])
    assert _decode(png) == tuple(int(x) for x in size.split("x"))
    assert len(png) < 20_000
    assert emulator.state.spent(emulator.paid_key) == pytest.approx(price)
    assert ("revised_prompt" in answer["data"][0]) == (model == "dall-e-3")
    assert emulator.state.requests[-1].images == 1


@pytest.mark.slow  # > 2 s
def test_url_images_are_served_by_the_emulator(emulator: EmulatorServer, paid: httpx2.Client) -> None:
    answer = paid.post("/images/generations", json={"model": "dall-e-2", "prompt": "cabbages", "n": 3,
                                                    "size": "512x512"}).json()
    urls = [item["url"] for item in answer["data"]]
    assert len(set(urls)) == 3 and all(u.startswith(emulator.url + "/files/") for u in urls)
    for url in urls:
        response = plain_http.get(url)  # no key needed, like OpenAI's blob URLs
        assert response.headers["content-type"] == "image/png"
        assert _decode(response.content) == (512, 512)
    assert emulator.state.spent(emulator.paid_key) == pytest.approx(3 * 0.18)
    assert plain_http.get(emulator.url + "/files/nope.png").status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [({"model": "dall-e-3", "prompt": "x", "n": 2}, "n"), ({"model": "dall-e-2", "prompt": "x", "size": "1792x1024"}, "size"),
     ({"model": "dall-e-3", "prompt": "x", "quality": "ultra"}, "quality"), ({"model": "dall-e-2"}, "prompt"),
     ({"model": "dall-e-2", "prompt": "x", "response_format": "gif"}, "response_format"),
     ({"model": "dall-e-2", "prompt": "x", "n": 11}, "n")],
)
def test_bad_image_requests_are_openai_400s_and_free(emulator: EmulatorServer, paid: httpx2.Client,
                                                     body: dict[str, object], param: str) -> None:
    response = paid.post("/images/generations", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert emulator.state.spent(emulator.paid_key) == 0


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_billing_endpoints_follow_new_api(emulator: EmulatorServer, paid: httpx2.Client, prefix: str) -> None:
    headers = {"authorization": f"Bearer {emulator.paid_key}"}
    paid.post("/images/generations", json={"model": "dall-e-2", "prompt": "x", "size": "256x256"})
    paid.post("/chat/completions", json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})
    spent = emulator.state.spent(emulator.paid_key)
    sub = plain_http.get(f"{emulator.url}{prefix}/dashboard/billing/subscription", headers=headers).json()
    usage = plain_http.get(f"{emulator.url}{prefix}/dashboard/billing/usage?start_date=2024-01-01&end_date=2024-02-01",
                           headers=headers).json()
    assert sub["hard_limit_usd"] == pytest.approx(10.0)  # CNY granted (balance + spent), as new-api shows it
    assert usage["total_usage"] == pytest.approx(spent * 100)
    # NextChat's formula: balance = hard_limit_usd - total_usage / 100.
    assert sub["hard_limit_usd"] - usage["total_usage"] / 100 == pytest.approx(emulator.state.balance(emulator.paid_key))
    # Billing calls are relay traffic (recorded) but neither priced nor windowed.
    assert emulator.state.requests[-1].path == f"{prefix}/dashboard/billing/usage"
    assert emulator.state.spent(emulator.paid_key) == spent


def test_billing_for_free_keys_is_zero_and_top_ups_count(emulator: EmulatorServer) -> None:
    free = {"authorization": f"Bearer {emulator.free_key}"}
    subscription = plain_http.get(emulator.base_url + "/dashboard/billing/subscription", headers=free).json()
    assert subscription["hard_limit_usd"] == 0
    assert plain_http.get(emulator.base_url + "/dashboard/billing/usage", headers=free).json()["total_usage"] == 0
    emulator.state.top_up(emulator.paid_key, 5)
    paid = {"authorization": f"Bearer {emulator.paid_key}"}
    subscription = plain_http.get(emulator.base_url + "/dashboard/billing/subscription", headers=paid).json()
    assert subscription["hard_limit_usd"] == 15
    assert plain_http.get(emulator.base_url + "/dashboard/billing/usage").json()["error"]["code"] == 41001
