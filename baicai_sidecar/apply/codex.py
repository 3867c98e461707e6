"""``codex`` (OpenAI Codex CLI): a ``[model_providers.baicai]`` provider in ``config.toml``, through the sidecar.

Written for codex-cli 0.171.0 (npm ``@openai/codex``, checked with ``npm view @openai/codex version`` on
2026-12-01) from openai/codex's ``codex-rs`` model provider definitions (``ModelProviderInfo``: ``base_url``,
``wire_api``, ``env_key``, ``experimental_bearer_token``, ``requires_openai_auth``) and its config documentation,
and checked by running that codex against a local endpoint that logged every request:

* Since 0.95.0 codex speaks only the Responses API: ``wire_api = "chat"`` is refused at start, and it posts to
  ``{base_url}/responses``. The relay speaks only Chat Completions, so ``--target relay`` is refused with a pointer
  to the sidecar, which serves ``/v1/responses`` by translating (``baicai_sidecar/_responses.py``).
* The credential is the provider's own ``experimental_bearer_token`` (the sidecar's local token for codex, not the
  real key): codex sends it as ``Authorization: Bearer …`` and leaves ``auth.json`` alone. With
  ``requires_openai_auth = true`` (what this adapter wrote before) a ChatGPT login in ``auth.json`` wins and its
  token goes to the configured base URL; ``forced_login_method = "api"`` logs the user out and deletes
  ``auth.json``. So nothing here reads or writes ``auth.json`` any more (the ``auth`` remover stays, for undoing an
  apply made by an older baicai).
* ``model_provider``/``model`` at the top level are switched too, and given back on undo. ``CODEX_HOME`` moves
  ``~/.codex``. ``codex --strict-config`` accepts the result (tests/sidecar/test_codex_e2e.py). Without
  ``--model`` the model is ``gpt-4-0125-preview``: codex's instructions and tools alone exceed gpt-3.5-turbo's window.
  A key known to be free tier keeps it too (gpt-3.5-turbo could not hold a turn either) and the plan says that the
  free tier's hourly limits (RELAY.md: gpt-4 1 request and 1,000 tokens, gpt-3.5 10,000 tokens) cannot serve codex.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from baicai_sdk.integration import Text

from ._base import Adapter, Extras, Options, OursLine, Remover
from ._edit import json_remove_member, toml_load
from ._model import ApplyError, Env, FileEdit, Message, Target, UnparseableFile

PROVIDER_ID = "baicai"
FREE_TIER_NOTE = Text(
    "这个密钥是免费会员：codex 每一轮的提示（指令和工具）就超过 1 万 token，而免费额度每小时只有 gpt-4-0125-preview 1 次"
    "、1,000 token，gpt-3.5 的上下文只有 4k（每小时 1 万 token），codex 的请求会因免费额度被拒绝。换成 gpt-3.5-turbo 也装不下"
    "一轮，所以默认模型保持 gpt-4-0125-preview；充值（任意金额即升级为付费会员）后即可正常使用 codex。",
    "this key is on the free tier: every codex turn (its instructions and tools) is over 10,000 tokens, while the "
    "free tier allows gpt-4-0125-preview once and 1,000 tokens an hour, and gpt-3.5 has a 4k window (10,000 tokens "
    "an hour), so codex's requests will be refused for the free tier's limits. gpt-3.5-turbo cannot hold one turn either, so the model "
    "stays gpt-4-0125-preview; any top-up makes the key paid, and codex then works.",
)
AUTH_KEY = "OPENAI_API_KEY"


def codex_home(env: Env) -> Path:
    override = env.environ.get("CODEX_HOME", "").strip()
    return Path(override).expanduser() if override else env.home / ".codex"


def _providers(doc: Any, path: Path, create: bool) -> Any:
    import tomlkit

    providers = doc.get("model_providers")
    if providers is None and create:
        providers = tomlkit.table(is_super_table=True)
        doc["model_providers"] = providers
    if providers is not None and not isinstance(providers, dict):
        raise UnparseableFile(path, Text("model_providers 不是表", "model_providers is not a table"))
    return providers


class CodexAdapter(Adapter):
    name = "codex"
    title = "Codex CLI (OpenAI)"
    summary = (Text("config.toml 加 [model_providers.baicai]（Responses API，经本地 sidecar）并切换 model_provider",
                    "config.toml gets [model_providers.baicai] (Responses API, through the sidecar) and becomes the provider"))

    default_model = "gpt-4-0125-preview"
    """codex's own instructions and tools alone are over 10k tokens: gpt-3.5-turbo's 4k window cannot hold one turn."""

    def detect(self, env: Env) -> tuple[bool, Message]:
        return self._found(env, ("codex",), (codex_home(env),))

    def edits(self, target: Target, env: Env, options: Options) -> list[FileEdit]:
        if target.kind != "sidecar":
            raise ApplyError(
                Text("当前的 codex（0.95.0 起）只使用 Responses API（POST /v1/responses），而白菜GPT 中转只支持 Chat Completions，直连中转的 codex 无法工作。请改用本地代理：`baicai apply codex --target sidecar`，再运行 `baicai sidecar`（它把 Responses 请求转换为 Chat Completions 并计入账本）。",
                     "Current codex (0.95.0 and later) speaks only the Responses API (POST /v1/responses) and the BaicaiGPT relay only Chat Completions, so codex cannot talk to the relay directly. Use the sidecar instead: `baicai apply codex --target sidecar`, then run `baicai sidecar` (it translates Responses requests to Chat Completions and books them in the ledger).")
            )
        config = codex_home(env) / "config.toml"
        provider = {
            "name": "BaicaiGPT (sidecar)",
            "base_url": target.base_url,
            "wire_api": "responses",
            "experimental_bearer_token": target.key,
        }

        def add_config(old: str | None) -> str:
            import tomlkit

            doc = toml_load(old, config)
            providers = _providers(doc, config, create=True)
            current = providers.get(PROVIDER_ID)
            changed = False
            if current is None or dict(current) != provider:
                inline = isinstance(providers, tomlkit.items.InlineTable)  # model_providers = { other = {…} }
                table: Any = tomlkit.inline_table() if inline else tomlkit.table()
                for k, v in provider.items():
                    table[k] = v
                if not inline and current is None and len(providers) and list(doc.keys())[-1] != "model_providers":
                    table.add(tomlkit.nl())  # a blank line before the next table, as the user's file has
                # a whole new table: keys an older baicai wrote (requires_openai_auth) must not linger
                providers[PROVIDER_ID] = table
                changed = True
            for key, value in (("model_provider", PROVIDER_ID), ("model", target.model)):
                if doc.get(key) != value:
                    doc[key] = value  # tomlkit files a new top-level key before the first table
                    changed = True
            if not changed:
                return old or ""
            text = tomlkit.dumps(doc)
            toml_load(text, config)  # never write TOML we could not read back
            return text

        # secret: the file now holds a (local) bearer token
        return [FileEdit(config, "config", add_config, self._remove_config(config), secret=True)]

    @staticmethod
    def _remove_config(path: Path) -> Remover:
        def remove(current: str, original: str | None, ours: OursLine) -> str:
            import tomlkit

            doc = toml_load(current, path)
            before = doc.as_string()
            orig = toml_load(original, path) if original else {}
            providers = _providers(doc, path, create=False)
            if providers is not None and PROVIDER_ID in providers:
                del providers[PROVIDER_ID]
                if not providers:
                    del doc["model_providers"]
            if doc.get("model_provider") == PROVIDER_ID:  # still ours: give back what the user had
                for key in ("model_provider", "model"):
                    if key in orig:
                        doc[key] = orig[key]
                    elif key in doc:
                        del doc[key]
            after = tomlkit.dumps(doc)
            return current if after == before else after

        return remove

    @staticmethod
    def _remove_auth(path: Path) -> Remover:
        return lambda current, original, ours: json_remove_member(current, original, AUTH_KEY, path, ours)

    def remover(self, part: str, path: Path) -> Remover | None:
        if part == "config":
            return self._remove_config(path)
        if part == "auth":
            return self._remove_auth(path)
        return None

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        notes: list[Message] = []
        auth = codex_home(env) / "auth.json"
        try:
            data = json.loads(auth.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("tokens"):
            notes.append(
                Text("auth.json 里的 ChatGPT 登录保持不变；使用 baicai 时 codex 只发送本地令牌，不会把登录令牌发给本地代理",
                     "the ChatGPT login in auth.json stays as it is; with the baicai provider codex sends only the local token, never the login token")
            )
        if isinstance(data, dict) and str(data.get(AUTH_KEY) or "").startswith("baicai-"):
            notes.append(
                Text("auth.json 里还有旧版 baicai 写入的白菜GPT 真实密钥，codex 已不再需要：先运行 `baicai apply codex --undo` 再重新应用，即可移除",
                     "auth.json still holds a real BaicaiGPT key written by an older baicai; codex no longer needs it: run `baicai apply codex --undo`, then apply again, to remove it")
            )
        if target.tier == "free":
            notes.append(FREE_TIER_NOTE)
        return Extras(
            instructions=[Text("baicai sidecar   # 保持运行", "baicai sidecar   # keep it running"),
                          f'codex "你好"     # model_provider = "{PROVIDER_ID}", model = "{target.model}"'],
            notes=notes,
        )
