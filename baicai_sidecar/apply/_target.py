"""Build the one thing every adapter needs: where to point the app, and with which key.

One function so the CLI and the TUI agree, and so tests can skip it and hand a ready ``Target`` to ``plan``.
"""

from __future__ import annotations

import os

from baicai_sdk.integration import Text

from ._model import NEW_TOKEN_PLACEHOLDER, ApplyError, Message, Target, TargetKind, mask_secret

__all__ = ["build_target", "DEFAULT_MODEL", "DEFAULT_SIDECAR_PORT"]

DEFAULT_MODEL = "gpt-3.5-turbo"
from .._state import DEFAULT_PORT as DEFAULT_SIDECAR_PORT  # noqa: E402 - the one place the port is written


def _key_tier(profile: str | None) -> str:
    """The tier of the key the sidecar would use (``--profile``, else BAICAI_API_KEY or the active profile):
    "unknown" when nothing says, or when there is no key yet (apply to the sidecar does not need one)."""
    from baicai_sdk import resolve_credentials

    try:
        return str(resolve_credentials(profile=profile, warn=False).tier or "unknown")
    except Exception:  # no key, a damaged config: only the tier-specific advice is lost
        return "unknown"


def _relay_credentials(profile: str | None) -> tuple[str, str, tuple[str, ...], str]:
    import warnings

    from baicai_sdk import resolve_credentials

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            creds = resolve_credentials(profile=profile, key_argument=None)
    except Exception as exc:  # the SDK's own bilingual message says what to do
        raise ApplyError(str(exc)) from exc
    key, base = creds.key or "", creds.base_url or ""
    notes = tuple(str(w.message) for w in caught)  # e.g. a corrected base URL: shown with the plan
    if not key:
        raise ApplyError(
            Text("没有找到白菜GPT 密钥：先运行 `baicai key add NAME`（或设置 BAICAI_API_KEY），或用 --target sidecar 只给应用一个本地令牌。",
                 "no BaicaiGPT key found: run `baicai key add NAME` (or set BAICAI_API_KEY), or use --target sidecar to give the app only a local token.")
        )
    from baicai_sdk.integration import DEFAULT_BASE_URL, normalise_base_url

    base_url, _ = normalise_base_url(base or DEFAULT_BASE_URL)
    return key, base_url, notes, str(creds.tier or "unknown")


def build_target(
    kind: TargetKind = "relay",
    *,
    app: str,
    profile: str | None = None,
    port: int | None = None,
    model: str | None = None,
    issue_token: bool = True,
) -> Target:
    """``relay``: the profile's base URL and real key. ``sidecar``: 127.0.0.1 and a local token for ``app`` only.

    The sidecar token is issued here (idempotent: the same app gets the same token on every run). With
    ``issue_token=False`` (``--dry-run``) nothing is saved: an app without a token yet is shown a placeholder.
    """
    if model is None:  # an app whose prompts outgrow the general default names its own (codex: 128k context)
        from . import ADAPTERS

        model = getattr(ADAPTERS.get(app), "default_model", None) or DEFAULT_MODEL
    if kind == "relay":
        key, base_url, notes, tier = _relay_credentials(profile)
        label = Text(f"白菜GPT 中转 {base_url}（{mask_secret(key)}）", f"the relay {base_url} ({mask_secret(key)})")
        return Target("relay", base_url, key, label, model, notes, tier)
    if kind == "sidecar":
        from baicai_sidecar._tokens import TokenStore

        from .._state import current_port, read_state

        new_token_note: tuple[Message, ...] = ()
        if not port:
            port = current_port()  # BAICAI_SIDECAR_PORT, else the running sidecar's own port, else the default
            if read_state() is None and not os.environ.get("BAICAI_SIDECAR_PORT", "").strip():
                new_token_note = (Text(f"没有检测到运行中的 sidecar，使用默认端口 {port}；换端口请用 --port",
                                       f"no running sidecar found: using the default port {port} (--port to choose)"),)
        from baicai_sidecar._tokens import TokenFileDamaged

        store = TokenStore()
        try:
            token = store.issue(app) if issue_token else store.get(app)
        except TokenFileDamaged as exc:
            raise ApplyError(str(exc)) from None
        if token is None:
            token = NEW_TOKEN_PLACEHOLDER
            new_token_note += (Text(f"将为 {app} 新建本地令牌", f"a new local token will be issued for {app}"),)
        base_url = f"http://127.0.0.1:{port}/v1"
        label = Text(f"本地 sidecar {base_url}（{mask_secret(token)}）", f"the local sidecar {base_url} ({mask_secret(token)})")
        return Target("sidecar", base_url, token, label, model, new_token_note, _key_tier(profile))
    raise ApplyError(Text(f"未知目标 {kind!r}，可选 relay 或 sidecar", f"unknown target {kind!r}: use relay or sidecar"))
