"""The stable API that the sidecar, the TUI and third-party tools build on, beyond what ``baicai_sdk`` exports.

``baicai_sdk`` exports what a user's program needs (the clients, the errors, keys, the ledger). A tool that runs
*next to* the SDK — ``baicai_sidecar``, ``baicai_tui``, or yours — needs a few more pieces: where the files live,
how a base URL is repaired, how a key is hidden, how a local server is bound, whether the relay answers. They are
here, under one public name, so the SDK's private modules (``baicai_sdk._*``) can be reorganised without breaking
the layers above: nothing outside ``baicai_sdk`` imports a ``baicai_sdk._*`` module (import-linter checks it;
see ``[tool.importlinter]`` in pyproject.toml and docs/internals.md, "Seams").

Names a user program also needs stay in ``baicai_sdk`` and are imported from there, not repeated here.
Every name is loaded on first access, so ``import baicai_sdk.integration`` costs nothing until a name is used
(the sidecar's and the TUI's start-up time depends on it).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

__all__ = [
    # where the SDK keeps its files
    "config_dir",
    "data_dir",
    "ledger_path",
    # base URLs
    "DEFAULT_BASE_URL",
    "normalise_base_url",
    "is_loopback_host",
    # writing files: atomic, locked across processes (Windows too), watched for changes
    "TEMP_SUFFIX",
    "FileWatch",
    "LockTimeout",
    "atomic_write",
    "commit_temp",
    "default_mode",
    "file_lock",
    "fsync_dir",
    "real_path",
    "stale_temps",
    "temp_path",
    "write_temp",
    # talking to the relay: the proxy the environment names for a URL (urllib's rules)
    "env_proxy_for",
    # the wire protocol (_transport/_wire.py): header names, SSE, relay errors, Retry-After, the error body
    "APP_HEADER",
    "LOCAL_QUOTA_HEADER",
    "SHOULD_RETRY_HEADER",
    "STREAM_TALLY",
    "RELAY_ANSWER",
    "SETTLE_AFTER",
    "read_response",
    "SSEDecoder",
    "SSEEvent",
    "iter_sse",
    "is_event_stream",
    "documented_status",
    "parse_retry_after",
    "error_body",
    "relay_error_body",
    "relay_error_message",
    # bilingual text shown per BAICAI_LANG, else the locale
    "LANGS",
    "Lang",
    "Text",
    "current_lang",
    "head_rows",
    "ljust",
    "labelled",
    "set_lang",
    "tr",
    # keys and secrets
    "KeyStoreError",
    "redact",
    # relay codes
    "relay_code",
    # the expense log: why a cost is marked estimated
    "COST_MARKS",
    "COST_MARK_NOTES",
    # offline token counting
    "TokenizerUnavailable",
    "get_encoding",
    "is_loaded",
    # serving on 127.0.0.1 (the emulator, the sidecar)
    "BackgroundServer",
    "bind_socket",
    "serve_forever",
    # is the relay usable with this key?
    "Check",
    "probe_relay",
]

# name -> private module that defines it
_LAZY: dict[str, str] = {
    "config_dir": "._paths",
    "data_dir": "._paths",
    "ledger_path": "._paths",
    "DEFAULT_BASE_URL": "._urls",
    "normalise_base_url": "._urls",
    "is_loopback_host": "._urls",
    "TEMP_SUFFIX": "._files",
    "FileWatch": "._files",
    "LockTimeout": "._files",
    "atomic_write": "._files",
    "commit_temp": "._files",
    "default_mode": "._files",
    "file_lock": "._files",
    "fsync_dir": "._files",
    "real_path": "._files",
    "stale_temps": "._files",
    "temp_path": "._files",
    "write_temp": "._files",
    "env_proxy_for": "._transport",
    "APP_HEADER": "._transport._wire",
    "LOCAL_QUOTA_HEADER": "._transport._wire",
    "SHOULD_RETRY_HEADER": "._transport._wire",
    "STREAM_TALLY": "._transport._metered",
    "RELAY_ANSWER": "._transport._metered",
    "SETTLE_AFTER": "._transport._metered",
    "read_response": "._transport._metered",
    "SSEDecoder": "._transport._wire",
    "SSEEvent": "._transport._wire",
    "iter_sse": "._transport._wire",
    "is_event_stream": "._transport._wire",
    "documented_status": "._transport._wire",
    "parse_retry_after": "._transport._wire",
    "error_body": "._transport._wire",
    "relay_error_body": "._transport._wire",
    "relay_error_message": "._transport._wire",
    "LANGS": "._text",
    "Lang": "._text",
    "Text": "._text",
    "current_lang": "._text",
    "head_rows": "._text",
    "ljust": "._commands._cells",
    "labelled": "._text",
    "set_lang": "._text",
    "tr": "._text",
    "KeyStoreError": "._keys",
    "redact": "._transport._wire",
    "relay_code": "._codes",
    "COST_MARKS": "._usage",
    "COST_MARK_NOTES": "._usage",
    "TokenizerUnavailable": "._tokens",
    "get_encoding": "._tokens",
    "is_loaded": "._tokens",
    "BackgroundServer": "._serving",
    "bind_socket": "._serving",
    "serve_forever": "._serving",
    "Check": "._probe",
    "probe_relay": "._probe",
}

if _typing.TYPE_CHECKING:
    from ._codes import relay_code
    from ._commands._cells import ljust
    from ._files import (
        TEMP_SUFFIX,
        FileWatch,
        LockTimeout,
        atomic_write,
        commit_temp,
        default_mode,
        file_lock,
        fsync_dir,
        real_path,
        stale_temps,
        temp_path,
        write_temp,
    )
    from ._keys import KeyStoreError
    from ._paths import config_dir, data_dir, ledger_path
    from ._probe import Check, probe_relay
    from ._serving import BackgroundServer, bind_socket, serve_forever
    from ._text import LANGS, Lang, Text, current_lang, head_rows, labelled, set_lang, tr
    from ._tokens import TokenizerUnavailable, get_encoding, is_loaded
    from ._transport import env_proxy_for
    from ._transport._metered import RELAY_ANSWER, SETTLE_AFTER, STREAM_TALLY, read_response
    from ._transport._wire import (
        APP_HEADER,
        LOCAL_QUOTA_HEADER,
        SHOULD_RETRY_HEADER,
        SSEDecoder,
        SSEEvent,
        documented_status,
        error_body,
        is_event_stream,
        iter_sse,
        parse_retry_after,
        redact,
        relay_error_body,
        relay_error_message,
    )
    from ._urls import DEFAULT_BASE_URL, is_loopback_host, normalise_base_url
    from ._usage import COST_MARK_NOTES, COST_MARKS


def __getattr__(name: str) -> _typing.Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'baicai_sdk.integration' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module_name, "baicai_sdk"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
