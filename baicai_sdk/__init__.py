"""baicai_sdk — the BaicaiGPT relay from Python, as a drop-in ``openai`` client.

Usage::

    from baicai_sdk import Baicai
    client = Baicai()                       # key: api_key= > BAICAI_API_KEY > the active profile

Public names are exactly ``__all__`` (tests/sdk/test_exported_members.py). Every name is loaded on first
access (module ``__getattr__``), so ``import baicai_sdk`` imports neither ``openai`` nor tiktoken, sqlite or
keyring; ``from baicai_sdk import Baicai`` costs about what ``from openai import OpenAI`` does
(``bench/bench_import.py`` measures it).
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

# name -> private module that defines it
_LAZY: "dict[str, str]" = {
    # the clients (issue 3)
    "Baicai": "._client",
    "AsyncBaicai": "._client",
    # retry policy
    "RetryPolicy": "._retry",
    "DEFAULT_RETRY_POLICY": "._retry",
    # errors: see the tree in baicai_sdk/_errors.py
    "parse_relay_error": "._errors",
    "RelayAnswer": "._errors",
    "MissingCredentials": "._errors",
    "BaicaiError": "._errors",
    "RelayAuthenticationError": "._errors",
    "InvalidKey": "._errors",
    "MissingKey": "._errors",
    "MalformedAuthorization": "._errors",
    "RelayPermissionError": "._errors",
    "KeyFrozen": "._errors",
    "TierNotAllowed": "._errors",
    "ModelNotOnFreeTier": "._errors",
    "FreeTierStreamNotAllowed": "._errors",
    "RelayBadRequestError": "._errors",
    "EmptyBody": "._errors",
    "ModelMissing": "._errors",
    "RelayNotFoundError": "._errors",
    "ModelNotSupported": "._errors",
    "EndpointNotSupported": "._errors",
    "HourlyLimitError": "._errors",
    "RequestLimitReached": "._errors",
    "FreeGpt35RequestLimit": "._errors",
    "FreeGpt4RequestLimit": "._errors",
    "PaidGpt35RequestLimit": "._errors",
    "PaidGpt4RequestLimit": "._errors",
    "PaidDalle2RequestLimit": "._errors",
    "PaidDalle3RequestLimit": "._errors",
    "TokenLimitReached": "._errors",
    "FreeGpt35TokenLimit": "._errors",
    "FreeGpt4TokenLimit": "._errors",
    "QuotaExceeded": "._errors",
    "RelayBusyError": "._errors",
    "SystemBusy": "._errors",
    "TooFrequent": "._errors",
    "UnknownRelayError": "._errors",
    # ---- LEAD: other parts' public names go here, one line each, e.g.
    # "KeyStore": "._keys", "Profile": "._keys", "mask_key": "._keys", "resolve_credentials": "._keys",
    # "UsageStore": "._usage", "count_tokens": "._tokens", "estimate": "._meter",
    # "http_client": "._transport", "async_http_client": "._transport", "balance": "._billing",
    # (tests/sdk/test_exported_members.py checks that every name here resolves and __all__ matches)
}

__all__ = ["__version__", *_LAZY]

if _typing.TYPE_CHECKING:
    from ._client import AsyncBaicai, Baicai
    from ._errors import (
        BaicaiError,
        EmptyBody,
        EndpointNotSupported,
        FreeGpt4RequestLimit,
        FreeGpt4TokenLimit,
        FreeGpt35RequestLimit,
        FreeGpt35TokenLimit,
        FreeTierStreamNotAllowed,
        HourlyLimitError,
        InvalidKey,
        KeyFrozen,
        MalformedAuthorization,
        MissingCredentials,
        MissingKey,
        ModelMissing,
        ModelNotOnFreeTier,
        ModelNotSupported,
        PaidDalle2RequestLimit,
        PaidDalle3RequestLimit,
        PaidGpt4RequestLimit,
        PaidGpt35RequestLimit,
        QuotaExceeded,
        RelayAnswer,
        RelayAuthenticationError,
        RelayBadRequestError,
        RelayBusyError,
        RelayNotFoundError,
        RelayPermissionError,
        RequestLimitReached,
        SystemBusy,
        TierNotAllowed,
        TokenLimitReached,
        TooFrequent,
        UnknownRelayError,
        parse_relay_error,
    )
    from ._retry import DEFAULT_RETRY_POLICY, RetryPolicy


def __getattr__(name: str) -> "_typing.Any":
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'baicai_sdk' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))
