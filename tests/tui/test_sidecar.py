"""Sidecar page: up/down from GET /sidecar/status over a real socket, per-app tokens issued and revoked."""

from __future__ import annotations

import socket
import time

import httpx2
import pytest
from conftest import FIXED_NOW, TZ, settle, table_rows, text_of

from baicai_sidecar._tokens import TokenStore
from baicai_tui import make_app
from baicai_tui.services import Services


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # waits for a connection to fail
async def test_down_sidecar_is_a_status() -> None:
    services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url=f"http://127.0.0.1:{_free_port()}")
    app = make_app(services=services)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        status = text_of(app.query_one("#sidecar-status"))
        assert status.startswith("○ 未运行 / down")
        # in words, with the way out — not "[Errno 111] Connection refused"
        assert "not running: press s to start it here, or run `baicai sidecar`" in status
        assert "Errno" not in status and "refused" not in status
        assert app.is_running


@pytest.mark.slow  # starts a real sidecar
async def test_up_sidecar_tokens_issue_and_revoke(emulator) -> None:
    from baicai_sidecar._server import SidecarServer
    from baicai_sidecar.app import SidecarConfig

    store = TokenStore()
    default = store.default_token()
    config = SidecarConfig(upstream=emulator.base_url, api_key=emulator.free_key, tokens=store)
    with SidecarServer(config) as sc:
        # one relay error through the sidecar, so "recent errors" has something to show
        httpx2.post(f"{sc.base_url}/chat/completions", headers={"Authorization": f"Bearer {default}"},
                    json={"model": "gpt-4-32k", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
        services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url=sc.origin)
        app = make_app(services=services)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("6")
            await settle(pilot)
            status = text_of(app.query_one("#sidecar-status"))
            assert status.startswith("● 运行中 / up")
            assert f"{sc.port}" in status
            rows = table_rows(app.query_one("#tokens-table"))
            assert rows == [["default", store.list()[0].masked]]
            assert default not in app.export_screenshot()
            errors = text_of(app.query_one("#sidecar-errors"))
            assert "48001" in errors or "gpt-4-32k" in errors or "404" in errors, errors

            await pilot.press("i")
            await pilot.pause()
            await pilot.press(*"chatbox", "enter")
            await settle(pilot)
            issued = TokenStore().get("chatbox")
            assert issued is not None
            assert text_of(app.screen.query_one("#notice-body")) == issued  # shown once, in the modal
            await pilot.press("escape")
            await settle(pilot)
            rows = table_rows(app.query_one("#tokens-table"))
            assert [r[0] for r in rows] == [t.app for t in TokenStore().list()]
            assert sorted(r[0] for r in rows) == ["chatbox", "default"]
            assert issued not in app.export_screenshot()

            app.query_one("#tokens-table").move_cursor(row=[r[0] for r in rows].index("chatbox"))
            await pilot.press("v", "y")
            await settle(pilot)
            assert TokenStore().get("chatbox") is None
            assert [r[0] for r in table_rows(app.query_one("#tokens-table"))] == ["default"]


@pytest.mark.slow  # starts a real sidecar
async def test_start_and_stop_from_the_tui(emulator) -> None:
    pytest.importorskip("baicai_sidecar._cli")
    from baicai_sdk import KeyStore

    KeyStore().add("default", emulator.free_key, tier="free", base_url=emulator.base_url)
    services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url=f"http://127.0.0.1:{_free_port()}")
    app = make_app(services=services)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("6")
            await settle(pilot)
            assert text_of(app.query_one("#sidecar-status")).startswith("○")
            await pilot.press("s")
            # `baicai sidecar` starts in a child process: ~1 s on an idle machine, and it went past 20 s under a
            # load of 15. The deadline only bounds a sidecar that never comes up.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await settle(pilot)
                app.page("sidecar").load()
                await settle(pilot)
                if text_of(app.query_one("#sidecar-status")).startswith("●"):
                    break
                await pilot.pause(0.2)
            status = text_of(app.query_one("#sidecar-status"))
            assert status.startswith("● 运行中 / up") and "由本界面启动 / started from here" in status
            await pilot.press("s")
            await settle(pilot)
            app.page("sidecar").load()
            await settle(pilot)
            assert text_of(app.query_one("#sidecar-status")).startswith("○")
    finally:
        services.close()


@pytest.mark.slow  # starts a real sidecar process, which stops at once
async def test_a_sidecar_that_cannot_start_says_why() -> None:
    """No key yet: `s` used to start a sidecar that exited at once, and the tab said "press s to start it" again."""
    pytest.importorskip("baicai_sidecar._cli")
    services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url=f"http://127.0.0.1:{_free_port()}")
    app = make_app(services=services)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("6")
            await settle(pilot)
            await pilot.press("s")
            deadline = time.monotonic() + 30
            status = ""
            while time.monotonic() < deadline and "exited" not in status:
                await pilot.pause(0.3)
                app.page("sidecar").load()
                await settle(pilot)
                status = text_of(app.query_one("#sidecar-status"))
            assert "the sidecar started here exited (code 2)" in status, status
            assert "baicai key add" in status and "press s to start it" not in status
    finally:
        services.close()


@pytest.mark.slow  # starts a real sidecar
async def test_the_demo_starts_a_sidecar_on_its_own_key(emulator) -> None:
    """In `baicai demo` there is no profile: `s` used to start a sidecar that exited at once with "no API key
    found … try `baicai demo`". It now gets the demo's key and emulator, and answers through them."""
    pytest.importorskip("baicai_sidecar._cli")
    url = f"http://127.0.0.1:{_free_port()}"
    services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url=url,
                        demo_credentials=(emulator.free_key, emulator.base_url, "free"))
    try:
        services.start_sidecar()
        view = wait_until_up(services)
        assert view.up, view.detail
        token = services.issue_token("demo-check")
        resp = httpx2.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                           json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
        assert resp.status_code == 200, resp.text
        assert any(r.authorization == f"Bearer {emulator.free_key}" for r in emulator.state.requests)
    finally:
        services.stop_sidecar()
        services.close()


def wait_until_up(services: Services):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    view = services.sidecar_status()
    while time.monotonic() < deadline and not view.up:
        time.sleep(0.2)
        view = services.sidecar_status()
    return view


@pytest.mark.slow  # starts a real sidecar process, which stops at once
def test_why_a_sidecar_stopped_is_said_once_in_both_languages(monkeypatch) -> None:
    """The child's last line is already bilingual: it used to be shown twice, once inside each half."""
    pytest.importorskip("baicai_sidecar._cli")
    monkeypatch.setenv("BAICAI_LANG", "both")
    services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url=f"http://127.0.0.1:{_free_port()}")
    try:
        services.start_sidecar()
        deadline = time.monotonic() + 30
        view = services.sidecar_status()
        while time.monotonic() < deadline and "exited" not in view.detail:
            time.sleep(0.2)
            view = services.sidecar_status()
        assert "从这里启动的边车已退出（代码 2） / the sidecar started here exited (code 2): " in view.detail, view.detail
        assert view.detail.count("baicai key add") == 2, view.detail  # once in Chinese, once in English
    finally:
        services.stop_sidecar()
        services.close()
