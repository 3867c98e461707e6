"""The language setting: BAICAI_LANG, else the locale; errors and error bodies follow it (issue 12)."""

from __future__ import annotations

import pytest

from baicai_sdk._text import Text, current_lang
from baicai_sdk._transport._wire import error_body, parse_relay_error, relay_error_message

HAN = range(0x4E00, 0xA000)


def _has_chinese(text: str) -> bool:
    return any(ord(ch) in HAN for ch in text)


@pytest.mark.parametrize("env, expected", [
    ({"BAICAI_LANG": "zh"}, "zh"), ({"BAICAI_LANG": "en"}, "en"), ({"BAICAI_LANG": "both"}, "both"),
    ({"BAICAI_LANG": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),  # the setting wins over the locale
    ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "zh_TW.UTF-8"}, "zh"), ({"LANG": "en_GB.UTF-8"}, "en"),
    ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL > LANG, as for every program
    ({"LANG": "C.UTF-8"}, "both"), ({"LANG": "de_DE.UTF-8"}, "both"), ({}, "both"),
    ({"BAICAI_LANG": "klingon", "LANG": "zh_CN"}, "zh"),  # an unknown setting falls back to the locale
])
def test_the_language_comes_from_baicai_lang_else_the_locale(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for name in ("BAICAI_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert current_lang() == expected


def test_text_renders_one_language_or_both_chinese_first(monkeypatch: pytest.MonkeyPatch) -> None:
    text = Text("额度已满", "the window is full")
    assert text.render("both") == "额度已满 / the window is full"
    assert text.render("zh") == "额度已满" and text.render("en") == "the window is full"
    monkeypatch.setenv("BAICAI_LANG", "en")
    assert str(text) == "the window is full" and (text + Text("。", ".")).en == "the window is full."


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_relay_errors_and_error_bodies_follow_the_setting(monkeypatch: pytest.MonkeyPatch, lang: str,
                                                          emulator: object) -> None:
    from baicai_sdk import Baicai, InvalidKey

    monkeypatch.setenv("BAICAI_LANG", lang)
    answer = parse_relay_error({"code": 40020, "msg": ""})
    assert answer is not None
    for shown in (relay_error_message(answer), error_body("中文", "English", type="t")["error"]["message"]):
        assert _has_chinese(shown) is (lang == "zh") and " / " not in shown
    with pytest.raises(InvalidKey) as caught:
        Baicai(base_url=emulator.base_url, api_key="baicai-" + "w" * 40).models.list()  # type: ignore[attr-defined]
    assert _has_chinese(caught.value.message) is (lang == "zh") and _has_chinese(caught.value.hint) is (lang == "zh")
    assert "40001" in caught.value.message


# One setting for every command: in one language a line never carries the other one (no "中文 / English" left).
_COMMANDS = [
    ["doctor", "--offline"],
    ["key", "list"],
    ["key", "show"],
    ["usage", "report"],
    ["usage", "log"],
    ["usage", "windows"],
    ["usage", "topup", "-1"],
    ["estimate", "-", "--model", "gpt-3.5-turbo"],
    ["--help"],
    ["doctor", "--help"],
    ["usage", "--help"],
    ["apply", "--list"],
    ["apply", "env", "--dry-run"],
    ["sidecar", "token", "list"],
    ["sidecar", "--help"],
    ["tui", "--help"],
]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("argv", _COMMANDS, ids=" ".join)
def test_cli_output_is_in_one_language(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       lang: str, argv: list[str]) -> None:
    import io

    from baicai_sdk import cli

    monkeypatch.setenv("BAICAI_LANG", lang)
    monkeypatch.setattr("sys.stdin", io.StringIO('[{"role": "user", "content": "hi"}]'))
    try:
        cli.main(argv)
    except SystemExit:  # --help
        pass
    out = capsys.readouterr()
    shown = out.out + out.err
    assert shown.strip()
    if lang == "en":
        assert not _has_chinese(shown), shown
    else:
        assert " / " not in shown.replace("https://", "").replace("http://", ""), shown


def test_an_indent_or_list_number_both_halves_share_is_shown_once() -> None:
    assert Text("  1) 免费 KEY", "  1) free key").render("both") == "  1) 免费 KEY / free key"
    # Halves on separate lines (the sidecar banner's token note) both keep the indent.
    assert Text("    （本地令牌）", "    (a local token)").render("both", sep="\n") == "    （本地令牌）\n    (a local token)"
    assert Text("\n已中断", "\ninterrupted").render("both") == "\n已中断 / interrupted"
    assert Text("  中文", "English").render("both") == "  中文 / English"  # not shared: left as written
    assert Text("1/1 已用", "1/1 used").render("both") == "1/1 已用 / 1/1 used"  # a figure is not a list mark
