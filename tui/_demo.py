"""``baicai demo``: the TUI against an embedded emulator, with sample traffic so the figures move.

The lead's ``baicai demo`` starts the emulator and calls :func:`run_demo`. Nothing here writes the user's
profiles: the demo key is handed to the services directly, and requests go through ``baicai_sdk.Baicai``
exactly like a user's script, so every figure on screen comes from the real ledger.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import BaicaiApp

__all__ = ["run_demo", "make_demo_app", "SampleTraffic"]

_PROMPTS = (
    "用一句话介绍白菜。",
    "Write a haiku about cabbages.",
    "把 'hello world' 翻译成中文。",
    "List three uses of a relay API.",
    "解释什么是滑动窗口限流。",
)


class SampleTraffic:
    """Sends a small chat request every ``interval`` seconds until ``should_stop()`` says so.

    Mostly gpt-3.5 (cheap, and the free tier allows it), now and then gpt-4 and a streamed answer, so the
    quota bars fill, a limit code shows up in the log on the free tier, and costs differ by model.
    """

    def __init__(self, base_url: str, key: str, *, tier: str = "free", interval: float = 2.0,
                 seed: int | None = None, paid_key: str | None = None) -> None:
        self.base_url = base_url
        self.key = key
        self.tier = tier
        self.paid_key = paid_key
        """When given, every other request uses this paid key: the free key's hour fills up (and is then refused
        locally), while the paid traffic keeps the spend and usage figures moving."""
        self.interval = interval
        self.sent = 0
        self.failed = 0
        self._random = random.Random(seed)

    def _client(self, key: str, tier: str) -> object:
        from baicai_sdk import Baicai

        # quota="raise": refuse locally rather than sleep through a full window, so the demo keeps moving
        chosen: Any = tier if tier in ("free", "paid") else None
        return Baicai(api_key=key, base_url=self.base_url, max_retries=0, quota="raise", tier=chosen)

    def send_one(self, client: object, *, paid: bool | None = None) -> None:
        paid = self.tier == "paid" if paid is None else paid
        roll = self._random.random()
        model = "gpt-4-0125-preview" if roll < 0.1 else "gpt-3.5-turbo"
        stream = paid and roll > 0.8
        messages = [{"role": "user", "content": self._random.choice(_PROMPTS)}]
        try:
            completions = client.chat.completions  # type: ignore[attr-defined]
            if stream:
                for _ in completions.create(model=model, messages=messages, max_tokens=60, stream=True):
                    pass
            else:
                completions.create(model=model, messages=messages, max_tokens=60)
            self.sent += 1
        except Exception:  # a limit or a refusal is part of the show: it lands in the ledger either way
            self.failed += 1

    def run(self, should_stop: Callable[[], bool]) -> None:
        clients = [(self._client(self.key, self.tier), self.tier == "paid")]
        if self.paid_key:
            clients.append((self._client(self.paid_key, "paid"), True))
        turn = 0
        while not should_stop():
            client, paid = clients[turn % len(clients)]
            turn += 1
            self.send_one(client, paid=paid)
            deadline = time.monotonic() + self.interval * (0.5 + self._random.random())
            while time.monotonic() < deadline and not should_stop():
                time.sleep(0.05)


def make_demo_app(base_url: str, key: str, *, tier: str, interval: float = 2.0, paid_key: str | None = None,
                  **kwargs: Any) -> BaicaiApp:
    """The demo app without running it (tests drive it headless)."""
    from .app import make_app
    from .services import Services

    # Its own sidecar address, never the user's: on the default port (or BAICAI_SIDECAR_URL) the demo polled the
    # user's real sidecar, whose console then filled with "refused GET /sidecar/status" (the demo has no token).
    # Exports go to the folder the demo was started from: the demo's own data folder is deleted when it ends.
    services = Services(demo_credentials=(key, base_url, tier), clock=kwargs.pop("clock", None),
                        tz=kwargs.pop("tz", None), sidecar_url=kwargs.pop("sidecar_url", None) or _free_local_url(),
                        export_dir=kwargs.pop("export_dir", None) or Path.cwd())
    traffic = SampleTraffic(base_url, key, tier=tier, interval=interval, paid_key=paid_key)
    return make_app(services=services, demo=traffic, **kwargs)


def _free_local_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def run_demo(base_url: str, key: str, *, tier: str, paid_key: str | None = None) -> int:
    """Open the TUI on the running emulator at ``base_url`` with sample traffic; returns the exit status."""
    app = make_demo_app(base_url, key, tier=tier, paid_key=paid_key)
    app.run()
    return int(app.return_code or 0)


