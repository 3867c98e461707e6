"""baicai_sdk — the BaicaiGPT relay from Python, as a drop-in ``openai`` client.

Usage::

    from baicai_sdk import Baicai
    client = Baicai()                       # key: api_key= > BAICAI_API_KEY > the active profile

Public names are exactly ``__all__`` (tests/sdk/test_exported_members.py). It is a literal list, and the names are
imported under ``TYPE_CHECKING``, so mypy and pyright read them (``from baicai_sdk import Baicai`` passes
``mypy --strict`` in a user's project: tests/test_typing.py). Every name is loaded on first
access (module ``__getattr__``), so ``import baicai_sdk`` imports neither ``openai`` nor tiktoken, sqlite or
keyring; ``from baicai_sdk import Baicai`` costs about what ``from openai import OpenAI`` does
(``bench/bench_import.py`` measures it).
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # the clients (issue 3)
    "Baicai",
    "AsyncBaicai",
    # retry policy
    "RetryPolicy",
    "DEFAULT_RETRY_POLICY",
    # errors: see the tree in baicai_sdk/_errors.py
    "parse_relay_error",
    "RelayAnswer",
    "MissingCredentials",
    "IncompleteStream",
    "BaicaiError",
    "RelayAuthenticationError",
    "InvalidKey",
    "MissingKey",
    "MalformedAuthorization",
    "RelayPermissionError",
    "KeyFrozen",
    "TierNotAllowed",
    "ModelNotOnFreeTier",
    "FreeTierStreamNotAllowed",
    "RelayBadRequestError",
    "EmptyBody",
    "ModelMissing",
    "RelayNotFoundError",
    "ModelNotSupported",
    "EndpointNotSupported",
    "HourlyLimitError",
    "RequestLimitReached",
    "FreeGpt35RequestLimit",
    "FreeGpt4RequestLimit",
    "PaidGpt35RequestLimit",
    "PaidGpt4RequestLimit",
    "PaidDalle2RequestLimit",
    "PaidDalle3RequestLimit",
    "TokenLimitReached",
    "FreeGpt35TokenLimit",
    "FreeGpt4TokenLimit",
    "QuotaExceeded",
    "RelayBusyError",
    "SystemBusy",
    "TooFrequent",
    "UnknownRelayError",
    # relay codes, models and prices
    "RELAY_CODES",
    "RelayCode",
    "Catalog",
    "load_catalog",
    # keys and profiles
    "KeyStore",
    "Profile",
    "Credentials",
    "resolve_credentials",
    "mask_key",
    # offline token counting
    "count_chat",
    "count_text",
    "StreamCounter",
    # the pipeline: quota gate + ledger, for any httpx2-based client (AutoGen, LangChain…)
    "http_client",
    "async_http_client",
    "MeteredTransport",
    "AsyncMeteredTransport",
    "Meter",
    "Decision",
    "RequestInfo",
    "describe_request",
    # reading the ledger; balance
    "UsageStore",
    "Totals",
    "ReportRow",
    "LedgerRow",
    "WindowStatus",
    "balance",
    "Balance",
]

# name -> private module that defines it (the same names as __all__, checked by tests/sdk/test_exported_members.py)
_LAZY: "dict[str, str]" = {
    # the clients (issue 3)
    "Baicai": "._client",
    "AsyncBaicai": "._client",
    # retry policy
    "RetryPolicy": "._retry",
    "DEFAULT_RETRY_POLICY": "._retry",
    # errors: see the tree in baicai_sdk/_errors.py
    # defined with the wire protocol: reading an answer must not import openai (the sidecar never needs it)
    "parse_relay_error": "._transport._wire",
    "RelayAnswer": "._transport._wire",
    "MissingCredentials": "._errors",
    "IncompleteStream": "._errors",
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
    # relay codes, models and prices
    "RELAY_CODES": "._codes",
    "RelayCode": "._codes",
    "Catalog": "._catalog",
    "load_catalog": "._catalog",
    # keys and profiles
    "KeyStore": "._keys",
    "Profile": "._keys",
    "Credentials": "._keys",
    "resolve_credentials": "._keys",
    "mask_key": "._keys",
    # offline token counting
    "count_chat": "._tokens",
    "count_text": "._tokens",
    "StreamCounter": "._tokens",
    # the pipeline: quota gate + ledger, for any httpx2-based client (AutoGen, LangChain…)
    "http_client": "._transport",
    "async_http_client": "._transport",
    "MeteredTransport": "._transport",
    "AsyncMeteredTransport": "._transport",
    "Meter": "._meter",
    "Decision": "._quota",
    "RequestInfo": "._quota",
    "describe_request": "._quota",
    # reading the ledger; balance
    "UsageStore": "._usage",
    "Totals": "._usage",
    "ReportRow": "._usage",
    "LedgerRow": "._usage",
    "WindowStatus": "._usage",
    "balance": "._billing",
    "Balance": "._billing",
}


if _typing.TYPE_CHECKING:
    from ._billing import Balance, balance
    from ._catalog import Catalog, load_catalog
    from ._client import AsyncBaicai, Baicai
    from ._codes import RELAY_CODES, RelayCode
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
        IncompleteStream,
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
    )
    from ._keys import Credentials, KeyStore, Profile, mask_key, resolve_credentials
    from ._meter import Meter
    from ._quota import Decision, RequestInfo, describe_request
    from ._retry import DEFAULT_RETRY_POLICY, RetryPolicy
    from ._tokens import StreamCounter, count_chat, count_text
    from ._transport import AsyncMeteredTransport, MeteredTransport, async_http_client, http_client
    from ._transport._wire import RelayAnswer, parse_relay_error
    from ._usage import LedgerRow, ReportRow, Totals, UsageStore, WindowStatus


def __getattr__(name: str) -> "_typing.Any":
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'baicai_sdk' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))
