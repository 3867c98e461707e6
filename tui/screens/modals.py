"""Modal screens: help, confirm, a small form, a diff to approve, and a secret shown once."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from .._i18n import Key, Text, tr

__all__ = ["HelpScreen", "ConfirmModal", "FormModal", "Field", "DiffModal", "NoticeModal"]


_KEY_NAMES = {"pagedown": "pgdn", "pageup": "pgup", "slash": "/", "delete": "del", "question_mark": "?"}
_PAGE_TABLES = (("用量", "Usage", "usage", "UsageTable"), ("明细", "Log", "ledger", "LedgerTable"),
                ("密钥", "Keys", "keys", "KeysTable"), ("边车", "Sidecar", "sidecar", "TokensTable"),
                ("接入", "Apply", "apply", "AppsTable"))


def _page_key_rows() -> list[str]:
    """One help row per page, made from the page table's own bindings: the help says what the footer says."""
    import importlib

    rows = []
    for zh, en, module, name in _PAGE_TABLES:
        table = getattr(importlib.import_module(f".{module}", __package__), name)
        keys = " · ".join(
            f"`{'/'.join(_KEY_NAMES.get(k.strip(), k.strip()) for k in b.key.split(','))}` {b.description}"
            for b in table.BINDINGS
        )
        rows.append(f"| {tr(zh, en)} | {keys} |")
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Key("escape,q,question_mark", "dismiss", label=Text("关闭", "Close"))]

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # loaded on first help, not at start-up

        text = "\n".join([
            f"# {tr('白菜GPT 终端面板 · 帮助', 'BaicaiGPT dashboard · help')}",
            "",
            f"| {tr('按键', 'Key')} | {tr('作用', 'Action')} |",
            "| --- | --- |",
            f"| 1–7 | {tr('切换页面：总览 额度 用量 明细 密钥 边车 接入', 'switch page: overview quota usage log keys sidecar apply')} |",
            f"| r | {tr('立即刷新', 'refresh now')} |",
            f"| l | {tr('切换语言（中英 / 中 / 英）', 'switch language (both / zh / en)')} |",
            f"| ? | {tr('帮助', 'help')} |",
            f"| q | {tr('退出', 'quit')} |",
            *_page_key_rows(),
            "",
            tr("鼠标同样可用：点击标签页、表格行和按钮。", "The mouse works too: click tabs, table rows and buttons."),
        ])
        with VerticalScroll(id="help-body", classes="modal-body"):
            yield Markdown(text)
            yield Button(tr("关闭", "Close"), id="help-close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class _YesNoModal(ModalScreen[bool]):
    """A question answered with y/n, the buttons ``#yes`` / ``#no``, or escape (no)."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class ConfirmModal(_YesNoModal):
    BINDINGS = [Key("escape,n", "no", label=Text("取消", "Cancel")), Key("y", "yes", label=Text("确认", "Confirm"))]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-body"):
            yield Label(self.question, id="confirm-question")
            with Horizontal(classes="modal-buttons"):
                yield Button(tr("确认 (y)", "Yes (y)"), id="yes", variant="error")
                yield Button(tr("取消 (n)", "No (n)"), id="no")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    password: bool = False
    choices: tuple[str, ...] = ()
    value: str = ""
    choice_labels: tuple[str, ...] = ()
    """What each choice is called on screen (the values stay ``choices``); empty: the choices themselves."""


class FormModal(ModalScreen["dict[str, str] | None"]):
    """A few inputs and OK/Cancel; dismisses with the values, or None when cancelled."""

    BINDINGS = [Key("escape", "cancel", label=Text("取消", "Cancel"))]

    def __init__(self, title: str, fields: list[Field]) -> None:
        super().__init__()
        self.form_title = title
        self.fields = fields

    def compose(self) -> ComposeResult:
        from textual.widgets import Select

        with Vertical(classes="modal-body"):
            yield Label(self.form_title, classes="modal-title")
            for f in self.fields:
                yield Label(f.label)
                if f.choices:
                    yield Select(list(zip(f.choice_labels or f.choices, f.choices, strict=True)),
                                 value=f.value or f.choices[0], allow_blank=False,
                                 id=f"field-{f.name}")
                else:
                    yield Input(value=f.value, password=f.password, id=f"field-{f.name}")
            with Horizontal(classes="modal-buttons"):
                yield Button(tr("确定", "OK"), id="ok", variant="primary")
                yield Button(tr("取消", "Cancel"), id="cancel")

    def _values(self) -> dict[str, str]:
        from textual.widgets import Select

        values = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.name}", Input | Select)  # type: ignore[arg-type]
            value = widget.value
            values[f.name] = "" if isinstance(widget, Select) and widget.is_blank() else str(value)
        return values

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self._values())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._values() if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DiffModal(_YesNoModal):
    """The change ``apply`` would make, shown before anything is written."""

    BINDINGS = [Key("escape,n", "no", label=Text("取消", "Cancel")), Key("y", "yes", label=Text("写入", "Write"))]

    def __init__(self, title: str, diff: str) -> None:
        super().__init__()
        self.diff_title = title
        self.diff = diff

    def compose(self) -> ComposeResult:
        from rich.syntax import Syntax

        with Vertical(classes="modal-body wide"):
            yield Label(self.diff_title, classes="modal-title")
            with VerticalScroll(id="diff-scroll"):
                yield Static(Syntax(self.diff or tr("（无改动）", "(no change)"), "diff", theme="ansi_dark"),
                             id="diff-text")
            with Horizontal(classes="modal-buttons"):
                yield Button(tr("写入 (y)", "Write (y)"), id="yes", variant="warning")
                yield Button(tr("取消 (n)", "Cancel (n)"), id="no")


class NoticeModal(ModalScreen[None]):
    """Shows something once (a new sidecar token): it is not kept on any screen afterwards."""

    BINDINGS = [Key("escape,enter", "dismiss", label=Text("关闭", "Close"))]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.notice_title = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-body"):
            yield Label(self.notice_title, classes="modal-title")
            yield Static(self.body, id="notice-body")
            yield Button(tr("关闭", "Close"), id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)
