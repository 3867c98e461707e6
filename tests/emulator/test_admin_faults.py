"""Admin routes, fault parsing, seeded busy faults, latency, server lifecycle."""

from __future__ import annotations

import threading
import time

import httpx2
import pytest

from baicai_sdk.testing import EmulatorConfig, EmulatorServer, Faults, FaultSpecError
from tests import plain_http

from .conftest import chat_body, client_for


def test_fault_spec_round_trips_and_rejects_typos() -> None:
    faults = Faults.parse(" busy=0.2, latency=0.1,chunk_delay=0.05,truncate=1,reset=2,burst=5,seed=7")
    assert faults == Faults(busy=0.2, latency=0.1, chunk_delay=0.05, truncate=1, reset=2, burst=5, seed=7)
    assert Faults.parse(faults.spec()) == faults
    assert Faults.parse("") == Faults() and Faults().spec() == ""
    for bad in ("bussy=1", "busy", "busy=2", "reset=x"):
        with pytest.raises(FaultSpecError):
            Faults.parse(bad)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="error style"):
        EmulatorConfig(error_style="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tier"):
        EmulatorConfig(keys={"baicai-x": "gold"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown emulator settings"):
        EmulatorConfig().replace(colour="red")


def _busy_pattern(emu: EmulatorServer) -> list[int]:
    paid = client_for(emu, emu.paid_key)
    out = []
    for _ in range(20):
        response = paid.get("/models")
        out.append(200 if response.status_code == 200 else response.json()["error"]["code"])
    return out


def test_busy_is_probabilistic_but_reproducible(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    first = _busy_pattern(emulator_factory(faults="busy=0.5,seed=3"))
    second = _busy_pattern(emulator_factory(faults="busy=0.5,seed=3"))
    assert first == second
    assert set(first) == {200, -1}
    assert _busy_pattern(emulator_factory(faults="busy=0.5,seed=4")) != first


def test_latency_is_added(emulator: EmulatorServer) -> None:
    emulator.configure(faults="latency=0.2")
    started = time.monotonic()
    assert client_for(emulator, emulator.paid_key).get("/models").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_admin_routes_are_not_relay_traffic_and_mask_keys(emulator: EmulatorServer) -> None:
    client_for(emulator, emulator.paid_key).post("/chat/completions", json=chat_body())
    state = plain_http.get(emulator.url + "/_emulator/state").json()
    assert len(state["requests"]) == 1
    record = state["requests"][0]
    assert record["authorization"] == "Bearer baicai-…paid"
    assert emulator.paid_key not in str(state)
    assert record["prompt_tokens"] > 0 and record["cost"] > 0
    config = plain_http.post(emulator.url + "/_emulator/config",
                             json={"error_style": "errcode", "faults": "busy=1", "free_stream": "false"}).json()
    assert config["error_style"] == "errcode" and config["faults"] == "busy=1" and config["free_stream"] is False
    assert emulator.config.faults.busy == 1.0
    bad = plain_http.post(emulator.url + "/_emulator/config", json={"faults": "bussy=1"})
    assert bad.status_code == 400 and "bussy" in bad.json()["error"]
    assert plain_http.post(emulator.url + "/_emulator/reset").json() == {"ok": True}
    assert emulator.state.requests == [] and emulator.config.error_style == "errcode"  # reset keeps settings
    assert len(plain_http.get(emulator.url + "/_emulator/state").json()["requests"]) == 0


def test_record_repr_hides_the_key(emulator: EmulatorServer) -> None:
    client_for(emulator, emulator.paid_key).get("/models")
    record = emulator.state.requests[-1]
    assert record.authorization == f"Bearer {emulator.paid_key}"  # as received, for key-injection tests
    assert emulator.paid_key not in repr(record) and emulator.paid_key not in repr(emulator.config.public())


def test_server_starts_fast_and_leaves_nothing_behind() -> None:
    before = set(threading.enumerate())
    startups = []
    for _ in range(2):  # best of three: what the machine can do, not what a neighbour's load did to it
        started = time.monotonic()
        extra = EmulatorServer().start()
        startups.append(time.monotonic() - started)
        extra.stop()
    started = time.monotonic()
    server = EmulatorServer().start()
    startups.append(time.monotonic() - started)
    startup = min(startups)
    port = server.port
    assert plain_http.get(server.base_url + "/models",
                          headers={"authorization": f"Bearer {server.free_key}"}).status_code == 200
    server.stop()
    assert startup < 0.3, startups
    assert set(threading.enumerate()) <= before
    with pytest.raises(httpx2.ConnectError):
        plain_http.get(f"http://127.0.0.1:{port}/v1/models")
    # The port is free again.
    again = EmulatorServer(port=port).start()
    again.stop()


def test_stop_with_an_open_stream_is_prompt() -> None:
    server = EmulatorServer(chunk_delay=0.05, reply_tokens=500).start()
    client = client_for(server, server.paid_key)
    with client.stream("POST", "/chat/completions", json=chat_body(stream=True)) as response:
        next(response.iter_lines())
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        assert not server.running


def test_emulator_fixture_is_fresh_each_test(pytester: pytest.Pytester) -> None:
    """One server serves the whole session; what a test did to it (faults, clock, records) is gone in the next.
    Two tests in one inner session, in order, so this does not depend on how the outer run orders tests."""
    pytester.makeconftest('pytest_plugins = ["baicai_sdk.testing.pytest_plugin"]')
    pytester.makepyfile(
        """
        import httpx2
        from baicai_sdk.testing import EmulatorConfig

        def test_first_leaves_a_mess(emulator):
            emulator.configure(error_style="code-msg", faults="busy=1")
            emulator.clock.advance(99_999)
            headers = {"authorization": f"Bearer {emulator.paid_key}"}
            httpx2.get(emulator.base_url + "/models", headers=headers, timeout=10)
            assert emulator.state.requests

        def test_second_sees_none_of_it(emulator):
            assert emulator.state.requests == []
            assert emulator.config == EmulatorConfig()
            assert abs(emulator.clock.offset) < 1
        """
    )
    # in-process: the textual-snapshot plugin keeps one temp dir per process, which an inner session would delete
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:textual-snapshot", "-p", "no:asyncio")
    result.assert_outcomes(passed=2)
