"""``Services``: the TUI's one door to the SDK, the sidecar and apply — built without side effects."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import FIXED_NOW, TZ

from baicai_tui.app import make_app
from baicai_tui.services import Services


def test_building_the_services_leaves_the_environment_alone(baicai_home: Path) -> None:
    """Services() used to set BAICAI_HOME from a constructor argument: every other part of the process (a
    sidecar started from the TUI, an SDK client in the same program) then moved its files too."""
    before = dict(os.environ)
    services = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url="http://127.0.0.1:9")
    demo = Services(demo_credentials=("baicai-demo-aaaaaaaaaaaaaaaa", "http://127.0.0.1:9/v1", "paid"))
    app = make_app(clock=lambda: FIXED_NOW, tz=TZ)
    try:
        assert dict(os.environ) == before
        assert services.profiles() == [] and demo.active_profile() is not None and app is not None
        assert Path(os.environ["BAICAI_HOME"]) == baicai_home  # the process's home is the one every part reads
    finally:
        services.close()
        demo.close()
