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


def test_the_demos_exports_outlive_the_demo(baicai_home: Path, tmp_path: Path, monkeypatch) -> None:
    """The demo's data folder is deleted when it ends: an export written there was lost with no word. The demo
    writes exports to the folder it was started from; outside the demo they stay in the data folder."""
    from baicai_tui._demo import make_demo_app
    from baicai_tui.services import ReportLine

    started_in = tmp_path / "cwd"
    started_in.mkdir()
    monkeypatch.chdir(started_in)
    app = make_demo_app("http://127.0.0.1:9/v1", "baicai-demo-aaaaaaaaaaaaaaaa", tier="free", tz=TZ)
    normal = Services(clock=lambda: FIXED_NOW, tz=TZ, sidecar_url="http://127.0.0.1:9")
    line = ReportLine(label="gpt-4", requests=1, tokens=2, cost_cny=0.1)
    try:
        exported = app.services.export([line], "csv", by="model")
        assert exported.parent == started_in and exported.read_text("utf-8").splitlines()[1] == "gpt-4,1,2,0.100000"
        assert normal.export([line], "json").is_relative_to(baicai_home)
    finally:
        app.services.close()
        normal.close()
