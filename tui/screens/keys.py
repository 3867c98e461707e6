"""密钥 / Keys: profiles from the SDK's key store, masked; add (hidden input), tier, switch, remove."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from .._i18n import Key, Text, tr
from ..services import ProfileView
from ._base import Page
from .modals import ConfirmModal, Field, FormModal

TIERS = ("unknown", "free", "paid")


class KeysTable(DataTable[str]):
    BINDINGS = [
        Key("a", "add", label=Text("添加", "Add")),
        Key("t", "tier", label=Text("档位", "Tier")),
        Key("u", "use", label=Text("启用", "Use")),
        Key("x,delete", "remove", label=Text("删除", "Remove")),
    ]

    @property
    def page(self) -> KeysPage:
        return self.query_ancestor(KeysPage)

    def action_add(self) -> None:
        self.page.add()

    def action_tier(self) -> None:
        self.page.cycle_tier()

    def action_use(self) -> None:
        self.page.use()

    def action_remove(self) -> None:
        self.page.remove_selected()


class KeysPage(Page):
    profiles: list[ProfileView] = []

    def build(self) -> ComposeResult:
        yield Static("", id="keys-backend")
        table = KeysTable(id="keys-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("", tr("名称", "Name"), tr("密钥", "Key"), tr("档位", "Tier"), tr("接口地址", "Base URL"))
        yield table

    def focus_main(self) -> None:
        self.query_one("#keys-table").focus()

    def load(self) -> None:
        super().load()
        self.in_thread(lambda: (self.services.profiles(), self.services.key_backend()), self._show_pair)

    def _show_pair(self, pair: tuple[list[ProfileView], str]) -> None:
        profiles, backend = pair
        self.query_one("#keys-backend", Static).update(f"{tr('存储', 'Stored in')}: {backend}")
        self.show(profiles)

    def show(self, profiles: list[ProfileView]) -> None:
        before = self.selected()
        self.profiles = profiles
        table = self.query_one("#keys-table", KeysTable)
        table.clear()
        for p in profiles:
            table.add_row("●" if p.active else "", p.name, p.masked, p.tier, p.base_url or "", key=p.name)
        names = [p.name for p in profiles]
        if before is not None and before.name in names:  # keep the cursor on the same profile after a change
            table.move_cursor(row=names.index(before.name))

    def changeable(self) -> ProfileView | None:
        """The selected profile, if it may be changed; the demo's own key is in no key store, so changing it
        would fail with "no profile named 'demo' … add it" — it is said to be fixed instead."""
        p = self.selected()
        if p is not None and p.demo:
            self.notify(tr("演示密钥不能修改：它只用于本次演示，不在密钥存储中",
                           "the demo's key cannot be changed: it is for this demo only, in no key store"),
                        severity="warning")
            return None
        return p

    def selected(self) -> ProfileView | None:
        table = self.query_one("#keys-table", KeysTable)
        if not self.profiles or table.cursor_row < 0 or table.cursor_row >= len(self.profiles):
            return None
        return self.profiles[table.cursor_row]

    def _then_reload(self, action: object, done: str) -> None:
        def fetch() -> None:
            action()  # type: ignore[operator]

        def show(_: None) -> None:
            self.notify(done)
            self.load()
            self.baicai.reload_overview()

        self.in_thread(fetch, show, group="change")

    def add(self) -> None:
        self.in_thread(self.services.key_store_choice, self._add_form, group="change")

    def _add_form(self, choice: tuple[str, bool]) -> None:
        default_store, keyring_works = choice
        keyring_label = tr("系统密钥环", "OS keyring") if keyring_works else \
            tr("系统密钥环（本机没有）", "OS keyring (none here)")
        fields = [Field("name", tr("名称", "Name"), value="default" if not self.profiles else ""),
                  Field("key", tr("密钥（输入不显示）", "Key (hidden)"), password=True),
                  Field("tier", tr("档位", "Tier"), choices=TIERS),
                  Field("store", tr("存放处", "Stored in"), choices=("keyring", "file"), value=default_store,
                        choice_labels=(keyring_label, tr("文件（明文，仅本人可读）", "a file (plain text, 0600)")))]

        def done(values: dict[str, str] | None) -> None:
            if not values or not values.get("name") or not values.get("key"):
                return
            name, key, tier = values["name"].strip(), values["key"].strip(), values.get("tier") or "unknown"
            store = values.get("store") or None
            self._then_reload(lambda: self.services.add_key(name, key, tier, store),
                              tr(f"已添加 {name}", f"Added {name}"))

        self.app.push_screen(FormModal(tr("添加密钥", "Add a key"), fields), done)

    def cycle_tier(self) -> None:
        p = self.changeable()
        if p is None:
            return
        tier = TIERS[(TIERS.index(p.tier) + 1) % len(TIERS)] if p.tier in TIERS else "unknown"
        self._then_reload(lambda: self.services.set_tier(p.name, tier), tr(f"{p.name} → {tier}", f"{p.name} → {tier}"))

    def use(self) -> None:
        p = self.changeable()
        if p is not None:
            self._then_reload(lambda: self.services.use_profile(p.name),
                              tr(f"当前档案：{p.name}", f"Active profile: {p.name}"))

    def remove_selected(self) -> None:
        """Ask, then delete the selected profile. (Not `remove`: that is Textual's "take this widget off the screen",
        which Textual itself calls — it must never delete a key.)"""
        p = self.changeable()
        if p is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._then_reload(lambda: self.services.remove_profile(p.name),
                                  tr(f"已删除 {p.name}", f"Removed {p.name}"))

        self.app.push_screen(ConfirmModal(tr(f"删除密钥 {p.name}（{p.masked}）？", f"Remove key {p.name} ({p.masked})?")),
                             done)
