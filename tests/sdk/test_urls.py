"""Base-URL repair: the mistakes users make with the relay's API_BASE, and the one-line warning."""

from __future__ import annotations

import pytest

from baicai_sdk._urls import DEFAULT_BASE_URL, format_changes, has_double_v1, is_openai_url, normalise_base_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.baicaigpt.com/v1", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1/", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1///", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1/v1", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1/v1/v1/", "https://api.baicaigpt.com/v1"),
        ("api.baicaigpt.com/v1", "https://api.baicaigpt.com/v1"),
        ("  https://api.baicaigpt.com/v1\n", "https://api.baicaigpt.com/v1"),
        ("https://API.BaicaiGPT.com/v1", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1/chat/completions", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1/models", "https://api.baicaigpt.com/v1"),
        ("https://api.baicaigpt.com/v1/images/generations?x=1", "https://api.baicaigpt.com/v1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("localhost:8000", "http://localhost:8000/v1"),
        ("https://proxy.example.com/openai/v1/v1", "https://proxy.example.com/openai/v1"),
        ("https://proxy.example.com/openai", "https://proxy.example.com/openai/v1"),
    ],
)
def test_normalise(given: str, expected: str) -> None:
    fixed, changes = normalise_base_url(given)
    assert fixed == expected
    assert bool(changes) == (given != expected)


def test_normalising_twice_changes_nothing() -> None:
    for url in ("api.baicaigpt.com/v1/v1/", "http://127.0.0.1:9/v1/chat/completions", "https://a.b"):
        once, _ = normalise_base_url(url)
        assert normalise_base_url(once) == (once, [])


def test_each_change_is_named_bilingually() -> None:
    _, changes = normalise_base_url("api.baicaigpt.com/v1/v1/")
    assert [str(c) for c in changes] == [
        "补上 https:// / added https://",
        "去掉重复的 /v1 / removed a repeated /v1",
        "去掉末尾斜杠 / removed the trailing slash",
    ]


def test_warning_is_one_line_chinese_first() -> None:
    raw = "https://api.baicaigpt.com/v1/v1/"
    fixed, changes = normalise_base_url(raw)
    line = str(format_changes(raw, fixed, changes))
    assert "\n" not in line
    zh, en = line.split(" / base URL ", 1)
    assert zh.startswith("API_BASE 已自动修正为 https://api.baicaigpt.com/v1")
    assert "去掉重复的 /v1" in zh and "removed a repeated /v1" in en


@pytest.mark.parametrize("bad", ["", "   ", "ftp://api.baicaigpt.com/v1", "https:///v1"])
def test_unusable_urls_raise_bilingual_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match=" / "):
        normalise_base_url(bad)


def test_helpers() -> None:
    assert has_double_v1("https://api.baicaigpt.com/v1/v1")
    assert has_double_v1("https://api.baicaigpt.com/v1/v1/chat/completions")
    assert not has_double_v1("https://api.baicaigpt.com/v1")
    assert not has_double_v1("https://api.baicaigpt.com/v10/v1")
    assert is_openai_url("https://api.openai.com/v1")
    assert is_openai_url("https://API.OPENAI.COM")
    assert not is_openai_url(DEFAULT_BASE_URL)
    assert not is_openai_url("https://api.openai.com.evil.example/v1")
