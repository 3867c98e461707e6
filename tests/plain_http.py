"""Clients for the servers the tests start — all on 127.0.0.1 over plain ``http://`` — that skip the CA bundle.

httpx2, and openai through it, reads the system's CA bundle for every client it builds: ~60 ms of CPU each, ~15 s
over the quick run, for servers that never speak TLS. These pass one context that trusts no certificate at all: it
costs nothing, and were a test ever to use it for TLS the handshake would fail, never pass unverified. (The SDK's
own transport does the same for plain-HTTP routes: ``baicai_sdk._transport._proxies``.)
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx2
import openai

PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def client(**options: Any) -> httpx2.Client:
    return httpx2.Client(verify=PLAIN_HTTP, **options)


def get(url: str, **options: Any) -> httpx2.Response:
    return httpx2.get(url, verify=PLAIN_HTTP, **options)


def post(url: str, **options: Any) -> httpx2.Response:
    return httpx2.post(url, verify=PLAIN_HTTP, **options)


def openai_client(**options: Any) -> openai.OpenAI:
    """``openai.OpenAI(**options)`` with openai's own default HTTP client settings, minus the CA bundle."""
    return openai.OpenAI(http_client=openai.DefaultHttpxClient(verify=PLAIN_HTTP), **options)


def async_openai_client(**options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(http_client=openai.DefaultAsyncHttpxClient(verify=PLAIN_HTTP), **options)
