"""The text editors on their own: one entry changes, every other byte stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from baicai_sidecar.apply import UnparseableFile
from baicai_sidecar.apply._edit import (
    env_remove,
    env_set,
    json_remove_item,
    json_remove_member,
    json_set_member,
    json_upsert_item,
)

P = Path("f")


def test_env_set_changes_lines_in_place_and_keeps_the_rest() -> None:
    old = '# secrets\r\nexport OPENAI_API_KEY="sk-old"\r\nFOO = bar # note\r\nMULTI="a\r\nb"\r\n'
    new = env_set(old, {"OPENAI_API_KEY": "baicai-1", "OPENAI_BASE_URL": "http://x/v1"}, P)
    assert new.startswith('# secrets\r\nexport OPENAI_API_KEY=baicai-1\r\nFOO = bar # note\r\nMULTI="a\r\nb"\r\n')
    assert new.endswith("OPENAI_BASE_URL=http://x/v1\r\n")  # appended with the file's own line ending
    assert env_set(new, {"OPENAI_API_KEY": "baicai-1", "OPENAI_BASE_URL": "http://x/v1"}, P) == new
    assert env_remove(new, old, ("OPENAI_API_KEY", "OPENAI_BASE_URL"), P) == old


def test_env_value_already_right_in_other_quoting_is_left_alone() -> None:
    old = "OPENAI_API_KEY='baicai-1'\n"
    assert env_set(old, {"OPENAI_API_KEY": "baicai-1"}, P) == old


@pytest.mark.parametrize("text", ["just words\n", 'A="unclosed\nB=1\n'])
def test_env_unparseable(text: str) -> None:
    with pytest.raises(UnparseableFile):
        env_set(text, {"A": "1"}, P)


def test_json_member_edits_keep_formatting() -> None:
    old = '{\n    "openai":   "sk-1",\n    "nested": {"a": [1,2]}\n}'
    new = json_set_member(old, "baicai", "k", P)
    assert new == '{\n    "openai":   "sk-1",\n    "nested": {"a": [1,2]},\n    "baicai": "k"\n}'
    assert json_set_member(new, "baicai", "k", P) == new
    assert json_remove_member(new, old, "baicai", P) == old
    compact = '{"a":1}'
    assert json_set_member(compact, "b", 2, P) == '{"a":1, "b": 2}'


def test_json_remove_member_gives_back_the_original_value() -> None:
    original = '{"OPENAI_API_KEY": "sk-user", "x": 1}\n'
    ours = json_set_member(original, "OPENAI_API_KEY", "baicai-1", P)
    edited = ours.replace('"x": 1', '"x": 2')  # someone else edits after us
    assert json_remove_member(edited, original, "OPENAI_API_KEY", P) == '{"OPENAI_API_KEY": "sk-user", "x": 2}\n'


def test_json_array_items() -> None:
    old = '[\n  {"model": "gpt-4", "api_key": "sk-a"}\n]\n'
    ours = lambda item: "baicai" in item.get("tags", [])  # noqa: E731
    new = json_upsert_item(old, {"model": "m", "tags": ["baicai"]}, ours, P)
    assert new.startswith('[\n  {"model": "gpt-4", "api_key": "sk-a"},\n  {\n')
    assert json_remove_item(new, ours, P) == old


@pytest.mark.parametrize("text", ['{"a": 1,}', "// comment\n{}", "[1, 2]"])
def test_json_unparseable_or_wrong_shape(text: str) -> None:
    with pytest.raises(UnparseableFile):
        json_set_member(text, "k", "v", P)
