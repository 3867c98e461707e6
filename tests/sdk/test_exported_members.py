"""The public API is exactly ``__all__`` (as httpx's tests/test_exported_members.py), and stays lazy."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import baicai_sdk


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name in dir(baicai_sdk)
        if not name.startswith("_") and not isinstance(getattr(baicai_sdk, name), types.ModuleType)  # subpackages
    } | {"__version__"}
    assert set(baicai_sdk.__all__) == public
    assert len(baicai_sdk.__all__) == len(set(baicai_sdk.__all__))
    assert set(baicai_sdk._LAZY) | {"__version__"} == set(baicai_sdk.__all__)  # the lazy map and the list agree


def test_every_exported_name_resolves() -> None:
    for name in baicai_sdk.__all__:
        assert getattr(baicai_sdk, name) is not None, name
    assert baicai_sdk.Baicai.__module__ == "baicai_sdk._client"
    assert issubclass(baicai_sdk.QuotaExceeded, baicai_sdk.BaicaiError)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getattr(baicai_sdk, "NoSuchThing")  # noqa: B009 - the name must not be found statically either


@pytest.mark.slow  # a fresh interpreter imports openai
def test_import_is_light() -> None:
    code = (
        "import sys, baicai_sdk\n"
        "heavy = ['openai', 'tiktoken', 'sqlite3', 'keyring', 'starlette', 'textual', 'uvicorn']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "from baicai_sdk import Baicai, AsyncBaicai, BaicaiError, RetryPolicy\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == ""  # `import baicai_sdk` alone loads nothing heavy
    assert out[1] == "openai"  # the clients need openai, and nothing else heavy


def test_integration_names_resolve_and_do_not_repeat_the_user_api() -> None:
    """``baicai_sdk.integration`` is the seam the sidecar and the TUI import through (never ``baicai_sdk._*``)."""
    from baicai_sdk import integration

    assert len(integration.__all__) == len(set(integration.__all__))
    for name in integration.__all__:
        assert getattr(integration, name) is not None, name
    assert not set(integration.__all__) & set(baicai_sdk.__all__), "a user-facing name belongs in baicai_sdk only"
    public = {n for n in dir(integration) if not n.startswith("_") and n not in {"annotations"}}
    assert public == set(integration.__all__)


def test_integration_import_is_light() -> None:
    code = (
        "import sys, baicai_sdk.integration\n"
        "heavy = ['openai', 'tiktoken', 'sqlite3', 'keyring', 'httpx2', 'starlette', 'textual', 'uvicorn']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
