"""``baicai doctor``: what is configured, where each value came from, and what is wrong — with the fix.

Every check runs offline except the last one (``GET {base}/models`` with a short timeout; ``--offline`` skips it).
Problems a user can make in their setup are each named in plain words, Chinese first: ``/v1`` twice, the key changed
but the base URL still OpenAI's, an ``sk-`` key sent to the relay, no key at all, the relay unreachable (proxy?).
Exit status: 0 when nothing is broken (warnings allowed), 1 when something is.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._probe import Check, Status, _hide_userinfo, probe, proxy_env
from .._text import Text, tr

__all__ = ["register", "run_checks", "Check"]

_MARK = {"ok": "✓", "info": "·", "warn": "!", "problem": "✗"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help=tr("检查配置与连通性", "check configuration and connectivity"),
        description=tr("显示密钥、API_BASE 及其来源，检查密钥环、分词器、代理，并试连中转站。",
                       "Shows the key, base URL and where they came from, checks keyring, tokenizer and proxy, and tries the relay."),
    )
    parser.add_argument("--json", action="store_true", help=tr("JSON 输出", "machine-readable output"))
    parser.add_argument("--offline", action="store_true", help=tr("不连接中转站", "do not contact the relay"))
    parser.add_argument("--timeout", type=float, default=5.0, help=tr("连接超时秒数", "relay timeout in seconds (5)"))
    parser.add_argument("--profile", default=None, help=tr("检查指定配置", "check this profile instead of the active one"))
    parser.add_argument("--repair", action="store_true",
                        help=tr("修复损坏的用量账本：原文件改名保留，能读出的记录搬到新账本",
                                "repair a damaged usage ledger: the file is renamed and kept, readable rows move to a fresh one"))
    parser.set_defaults(func=_run)


def _route(url: str) -> Text:
    """How the transport will reach ``url``, by its own rules (``env_proxy_for``: urllib's reading of the proxy
    variables and of NO_PROXY), so doctor says what requests will actually do."""
    import urllib.request

    from .._transport import env_proxy_for

    via = env_proxy_for(url)
    if via is not None:
        return Text(f"经代理 {_hide_userinfo(via)}", f"via the proxy {_hide_userinfo(via)}")
    scheme = urlsplit(url).scheme
    named = urllib.request.getproxies_environment()
    if scheme in named or "all" in named:
        return Text("直连（NO_PROXY）", "direct (NO_PROXY)")
    return Text(f"直连（没有适用于 {scheme} 的代理变量）", f"direct (no proxy variable applies to {scheme})")


class _Report:
    """The checks so far, in report order, and the configuration as data (for ``--json``)."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.config: dict[str, Any] = {}

    def add(self, name: str, status: Status, summary: Text, fix: Text | str = "") -> None:
        self.checks.append(Check(name, status, str(summary), str(fix)))


def run_checks(*, offline: bool = False, timeout: float = 5.0, profile: str | None = None) -> tuple[list[Check], dict[str, Any]]:
    """Every check, in report order, plus the configuration as data (for ``--json``)."""
    report = _Report()
    config_dir = _check_places(report)
    store, profiles = _check_profiles(report)
    _check_secret_store(report, store, profiles, config_dir)
    creds = _check_credentials(report, store, profile)
    _check_openai_base_url(report, creds)
    proxies = _check_proxies(report, creds)
    report.checks.extend(_tokenizer_checks())
    if offline:
        report.add("relay", "info", Text("未连接中转站（--offline）", "relay not contacted (--offline)"))
    elif creds is not None:
        report.checks.extend(_relay_checks(creds, timeout, proxies))
    report.config["ok"] = not any(c.status == "problem" for c in report.checks)
    return report.checks, report.config


def _check_places(report: _Report) -> Path:
    """Where the configuration and the data live, and the ledger's health. Returns the config folder."""
    from .. import _paths

    config_dir, data_dir, ledger = _paths.config_dir(), _paths.data_dir(), _paths.ledger_path()
    home = _paths.home_override()
    where = f" (BAICAI_HOME={home})" if home else ""
    report.add("config_dir", "info", Text(f"配置目录：{config_dir}{where}", f"config dir: {config_dir}{where}"))
    report.add("data_dir", "info", Text(f"数据目录：{data_dir}", f"data dir: {data_dir}"))
    report.checks.append(_ledger_check(ledger))
    report.config.update(config_dir=str(config_dir), data_dir=str(data_dir), ledger=str(ledger),
                         ledger_exists=ledger.exists())
    return config_dir


def _check_profiles(report: _Report) -> tuple[Any, list[Any]]:
    """The saved profiles (the active one starred). Returns the key store (None when unusable) and the profiles."""
    from .._keys import ConfigCorrupt, KeyStore, KeyStoreError

    try:
        store = KeyStore()
        profiles = store.list()
    except ConfigCorrupt as exc:
        report.add("profiles", "problem", Text("密钥配置文件损坏", "the profiles file is damaged"), str(exc))
        return None, []
    except KeyStoreError as exc:  # e.g. a bad BAICAI_SECRET_STORE value
        report.add("profiles", "problem", Text("密钥配置不可用", "profiles unavailable"), str(exc))
        return None, []
    active = next((p for p in profiles if p.active), None)
    names = ", ".join(p.name + ("*" if p.active else "") for p in profiles)
    report.add("profiles", "ok" if profiles else "info",
               Text(f"密钥配置：{names or '（无）'}", f"profiles: {names or '(none)'}"))
    report.config["profiles"] = [p.as_dict() for p in profiles]
    report.config["active_profile"] = active.name if active else None
    return store, profiles


def _check_secret_store(report: _Report, store: Any, profiles: list[Any], config_dir: Path) -> None:
    """The OS keyring, when a profile keeps its key there or the next ``key add`` would; the 0600 file when used."""
    from .._keys import SECRET_STORE_ENV, keyring_in_words, keyring_status

    chosen_store = os.environ.get(SECRET_STORE_ENV, "").strip().lower() or "keyring"
    uses_keyring = any(p.store == "keyring" for p in profiles)
    secrets_path = store.secrets_path if store is not None else config_dir / "secrets.json"
    # The keyring matters when a profile keeps its key there, or when the next `key add` would (no profile yet and
    # no file store chosen); profiles kept with --store file never touch it.
    if uses_keyring or (chosen_store == "keyring" and not profiles):
        usable, description = keyring_status()
        report.config["keyring"] = {"usable": usable, "backend": description}  # the class name: for bug reports
        words = keyring_in_words()[1]  # for people: the words `key add` uses, not the class name
        if usable:
            report.add("keyring", "ok", Text(f"密钥保存在{words.zh}", f"keys are kept in {words.en}"))
        else:
            report.add(
                "keyring", "problem" if uses_keyring else "warn", words,
                Text(f"设置 {SECRET_STORE_ENV}=file 或用 `baicai key add NAME --store file`，密钥将保存在 {secrets_path}（0600）。",
                     f"Set {SECRET_STORE_ENV}=file or use `baicai key add NAME --store file` to keep keys in "
                     f"{secrets_path} (mode 0600)."),
            )
    if chosen_store == "file" or any(p.store == "file" for p in profiles):
        report.add("secret_file", "info", Text(f"密钥文件：{secrets_path}（明文，0600）",
                                               f"secrets file: {secrets_path} (plain text, mode 0600)"))
    report.config["secret_store"] = chosen_store


def _check_credentials(report: _Report, store: Any, profile: str | None) -> Any:
    """The key and the base URL a client would use, where each came from, and what is wrong with them.
    Returns the credentials, or None when there is no usable key."""
    from .._keys import KeyStoreError, MissingKeyError, resolve_credentials
    from .._urls import DEFAULT_BASE_URL, has_double_v1, is_openai_url

    try:
        creds = resolve_credentials(profile=profile, store=store, warn=False)
    except MissingKeyError:
        report.add(
            "key", "problem", Text("没有配置 API 密钥", "no API key configured"),
            Text("运行 `baicai key add NAME` 保存白菜GPT 的 baicai-… 密钥（或设置 BAICAI_API_KEY）；还没有密钥时，"
                 "`baicai demo` 用本地模拟中转站离线演示全部功能。",
                 "Run `baicai key add NAME` to save your baicai-… key (or set BAICAI_API_KEY); with no key yet, "
                 "`baicai demo` shows everything offline against a local emulator of the relay."),
        )
        return None
    except KeyStoreError as exc:
        report.add("key", "problem", Text("无法读取密钥", "cannot read the key"), str(exc))
        return None
    report.config.update(
        key=creds.masked, key_source=creds.key_source, fingerprint=creds.fingerprint, tier=creds.tier,
        profile=creds.profile, base_url=creds.base_url, base_url_source=creds.base_url_source,
        raw_base_url=creds.raw_base_url, warnings=[str(w) for w in creds.warnings],
    )
    report.add("key", "ok", Text(f"密钥：{creds.masked}（来源：{creds.key_source}；等级：{creds.tier}）",
                                 f"key: {creds.masked} (from {creds.key_source}; tier {creds.tier})"))
    report.checks.extend(_key_checks(creds.key, creds.base_url))
    report.add("base_url", "ok", Text(f"API_BASE：{creds.base_url}（来源：{creds.base_url_source}）",
                                      f"base URL: {creds.base_url} (from {creds.base_url_source})"))
    report.checks.append(_relay_rules_check(creds.base_url, creds.key))
    if creds.base_url_changes:
        double = Text("重复的 /v1 会让中转站返回 48004（接口暂未支持）。",
                      "A repeated /v1 makes the relay answer 48004 (endpoint not supported). ")
        detail = (double if has_double_v1(creds.raw_base_url) else Text("", "")) + Text(
            f"请把 {creds.base_url_source} 改为 {creds.base_url}。", f"Set {creds.base_url_source} to {creds.base_url}.")
        report.add(
            "base_url_fixed", "warn",
            Text(f"配置的 API_BASE {creds.raw_base_url!r} 有误，baicai 已自行修正",
                 f"the configured base URL {creds.raw_base_url!r} has mistakes; baicai corrects it for itself"),
            detail + Text("其他读取该设置的工具不会自动修正。", " Other tools reading it do not correct it."),
        )
    if is_openai_url(creds.base_url):
        report.add(
            "base_url_openai", "problem", Text("API_BASE 仍是 OpenAI 官方地址", "the base URL is still OpenAI's"),
            Text(f"换了白菜GPT 的密钥也要同时换 API_BASE：{DEFAULT_BASE_URL}。",
                 f"When you switch to a BaicaiGPT key, switch the base URL too: {DEFAULT_BASE_URL}."),
        )
    return creds


def _check_openai_base_url(report: _Report, creds: Any) -> None:
    """OPENAI_BASE_URL pointing elsewhere than baicai's base URL: other tools reading it go there."""
    from .._urls import DEFAULT_BASE_URL, is_openai_url, normalise_base_url

    openai_base = os.environ.get("OPENAI_BASE_URL", "").strip() or os.environ.get("OPENAI_API_BASE", "").strip()
    if not openai_base:
        return
    try:
        other = normalise_base_url(openai_base)[0]
    except ValueError:
        other = openai_base
    ours = creds.base_url if creds is not None else DEFAULT_BASE_URL
    if other == ours:
        return
    where = Text(
        "它指向 OpenAI 官方：用 OPENAI_BASE_URL 的工具会把白菜GPT 的密钥发到那里而失败（40001 类错误）。",
        "It points at OpenAI: tools that read OPENAI_BASE_URL will send your BaicaiGPT key there and fail. ",
    ) if is_openai_url(other) else Text("用 OPENAI_BASE_URL 的工具会连到那里。", "Tools that read OPENAI_BASE_URL will go there. ")
    report.add(
        "openai_base_url", "warn",
        Text(f"OPENAI_BASE_URL={openai_base} 与 baicai 的 API_BASE 不同",
             f"OPENAI_BASE_URL={openai_base} differs from baicai's base URL"),
        where + Text(f"若要让它们走白菜GPT，请设为 {ours}，或取消该变量。",
                     f"To send them through the relay, set it to {ours}, or unset it."),
    )


def _check_proxies(report: _Report, creds: Any) -> dict[str, str]:
    """The proxy variables (httpx2 honours them, so they decide whether the relay is reachable) and the route
    requests to the base URL take. Returns them, for the relay check's advice."""
    from .._urls import DEFAULT_BASE_URL

    proxies = proxy_env()
    report.config["proxies"] = proxies
    if proxies:
        shown = "  ".join(f"{k}={v}" for k, v in proxies.items())
        base = creds.base_url if creds else DEFAULT_BASE_URL
        base_host = urlsplit(base).hostname or ""
        routed = _route(base)
        report.add("proxy", "info", Text(f"代理：{shown} — {base_host}：{routed.zh}",
                                         f"proxy: {shown} — {base_host}: {routed.en}"))
    else:
        report.add("proxy", "info", Text("代理：未设置（HTTP(S)_PROXY、ALL_PROXY、NO_PROXY 都未设置）",
                                         "proxy: none (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY unset)"))
    return proxies


def _ledger_check(ledger: Any) -> Check:
    """Integrity (``PRAGMA quick_check``), schema and a real write to the folder: a ledger that fails any of them
    makes requests run on an in-memory ledger whose usage is lost, so it is a problem, with its fix."""
    from .._ledger_health import advice, check

    found = check(ledger)
    if found.status == "missing":
        return Check("ledger", "info", tr(f"账本：{ledger}（尚未创建：还没有请求）",
                                          f"ledger: {ledger} (not created yet: no request made)"))
    if found.status == "ok":
        rows = Text(f"，{found.rows} 行", f", {found.rows} rows") if found.rows is not None else Text("", "")
        return Check("ledger", "ok", tr(f"账本：{ledger}（{found.size} 字节{rows.zh}；完整）",
                                        f"ledger: {ledger} ({found.size} bytes{rows.en}; intact)"))
    what = Text("账本已损坏", "the ledger is damaged") if found.status == "damaged" else \
        Text("账本无法写入", "the ledger cannot be written")
    fix, fix_en = advice(found.kind or "other", ledger)
    return Check("ledger", "problem", tr(f"{what.zh}：{ledger}（{found.detail[:120]}）",
                                         f"{what.en}: {ledger} ({found.detail[:120]})"),
                 tr(f"{fix}。", f"To fix: {fix_en}."))


def _repair(ledger: Any) -> int:
    from .._ledger_health import check, repair

    found = check(ledger)
    if found.status != "damaged":
        state = Text("完整", "intact") if found.ok else Text("无法写入，移走也无济于事", "not writable: moving it would not help")
        print(Text(f"账本无需修复（{state.zh}）：{ledger}", f"nothing to repair ({state.en}): {ledger}"))
        return 0 if found.ok else 1
    result = repair(ledger)
    print(Text(f"已把损坏的账本移到：{result.moved_to}（未删除）",
               f"moved the damaged ledger to: {result.moved_to} (kept, not deleted)"))
    salvaged = f" (requests {result.salvaged.get('requests', 0)})" if result.salvaged else ""
    print(Text(f"新账本：{ledger}；救回记录：{result.rows}{salvaged}",
               f"fresh ledger: {ledger}; rows salvaged: {result.rows}{salvaged}"))
    return 0


def _relay_rules_check(base_url: str, key: str) -> Check:
    """Whether the quota gate applies the relay's hourly limits to this base URL, and why."""
    try:
        from .._meter import Meter

        applies, reason = Meter().relay_rules_for(base_url, key)
    except Exception as exc:  # an unreadable ledger: the gate's rules are then moot for this report
        return Check("relay_rules", "info", tr(f"无法判断限额规则（{exc}）", f"cannot tell the quota rules ({exc})"))
    if applies:
        return Check("relay_rules", "ok", tr(f"每小时限额：按白菜GPT 中转的规则在本机把关 — {reason.zh}",
                                             f"hourly limits: the relay's, enforced locally — {reason.en}"))
    return Check("relay_rules", "info", tr(f"每小时限额：不适用，只记账 — {reason.zh}（可用 BAICAI_RELAY_RULES=on 开启）",
                                           f"hourly limits: not applied, usage recorded only — {reason.en} "
                                           "(set BAICAI_RELAY_RULES=on to apply them)"))


def _key_checks(key: str, base_url: str) -> list[Check]:
    from .._keys import key_warnings, mask_key

    masked = mask_key(key)
    if key.startswith("sk-") and not key.startswith("sk-baicai-"):
        return [Check(
            "key_shape", "problem", tr(f"{masked} 是 OpenAI 的 sk- 密钥", f"{masked} is an OpenAI sk- key"),
            tr("白菜GPT 只接受 baicai-… 密钥：到 https://shop.baicaigpt.com 的「我的KEY」复制，然后 `baicai key add NAME`。",
               "The relay only accepts baicai-… keys: copy yours from the shop's 'My KEY' page, then `baicai key add NAME`."),
        )]
    return [Check("key_shape", "warn", str(w)) for w in key_warnings(key, base_url)]


def _tokenizer_checks() -> list[Check]:
    from .._tokens import BUNDLED_ENCODINGS, verify_bundled

    checks = []
    for name in BUNDLED_ENCODINGS:
        started = time.perf_counter()
        try:
            verify_bundled(name)  # the checksum, not the BPE table: building both took most of doctor's time
        except Exception as exc:  # a damaged install must be reported, not crash the doctor
            checks.append(Check(
                f"tokenizer:{name}", "problem", tr(f"离线分词器 {name} 不可用", f"offline tokenizer {name} unavailable"),
                tr(f"{exc}；请重新安装 baicai（pip install --force-reinstall baicai）。",
                   f"{exc}; reinstall baicai (pip install --force-reinstall baicai)."),
            ))
            continue
        elapsed = (time.perf_counter() - started) * 1000
        checks.append(Check(f"tokenizer:{name}", "ok",
                            tr(f"离线分词器 {name}：可用（校验通过，{elapsed:.0f} 毫秒）",
                               f"offline tokenizer {name}: ok (checksum verified, {elapsed:.0f} ms)")))
    return checks


def _relay_checks(creds: Any, timeout: float, proxies: dict[str, str]) -> list[Check]:
    checks = [probe(creds.base_url, creds.key, timeout, proxies, label="relay")]
    if checks[0].status == "ok" and creds.base_url_changes and creds.raw_base_url.strip():
        # Show what tools that do not repair the URL get with the setting as written (48004 for /v1 twice).
        raw = creds.raw_base_url.strip().rstrip("/")
        if "://" in raw:
            result = probe(raw, creds.key, timeout, proxies, label="relay_as_configured")
            if result.status == "problem":
                result.summary = tr("按原样使用 API_BASE 时：", "with the base URL as configured: ") + result.summary
                changes_zh = "；".join(c.zh for c in creds.base_url_changes)
                changes_en = "; ".join(c.en for c in creds.base_url_changes)
                result.fix = tr(
                    f"把 {creds.base_url_source} 改为 {creds.base_url}（{changes_zh}）：baicai 会自行修正，但其他工具不会。",
                    f"Set {creds.base_url_source} to {creds.base_url} ({changes_en}): baicai corrects it for itself, "
                    "other tools do not.",
                )
                checks.append(result)
    return checks


def _print_report(checks: list[Check]) -> None:
    for check in checks:
        print(f" {_MARK[check.status]} {check.summary}")
    problems = [c for c in checks if c.status in ("problem", "warn")]
    if problems:
        print()
        print(Text("需要处理：", "to fix:"))
        for check in problems:
            tag = Text("问题", "problem") if check.status == "problem" else Text("提醒", "warning")
            print(f" {_MARK[check.status]} [{tag}] {check.summary}")
            if check.fix:
                print(f"     → {check.fix}")
    broken = sum(c.status == "problem" for c in checks)
    print()
    if broken:
        print(Text(f"发现 {broken} 个问题。", f"{broken} problem(s) found."))
    else:
        print(Text("一切正常。", "Everything looks fine."))


def _run(args: argparse.Namespace) -> int:
    if args.repair:
        from .. import _paths

        status = _repair(_paths.ledger_path())
        print()
        if status:
            return status
    checks, config = run_checks(offline=args.offline, timeout=args.timeout, profile=args.profile)
    if args.json:
        print(json.dumps({"ok": config["ok"], "checks": [asdict(c) for c in checks], "config": config},
                         ensure_ascii=False, indent=2))
    else:
        _print_report(checks)
    return 0 if config["ok"] else 1
