"""The TUI's labels in the user's language: the SDK's one bilingual text type, named for the screens.

Every label in the app is written inline as ``tr(zh, en)`` next to where it is shown, so a screen reads like the
screen it draws; switching the language (``--lang``, the ``l`` key) is one ``set_lang`` plus a recompose. The
setting is the SDK's (``baicai_sdk.integration.set_lang``), so messages the SDK and the sidecar build for the TUI
follow it too.
"""

from __future__ import annotations

from baicai_sdk.integration import LANGS, Lang, Text, set_lang, tr
from baicai_sdk.integration import current_lang as get_lang

__all__ = ["LANGS", "Lang", "Text", "get_lang", "set_lang", "tr"]
