"""devicelink.js, the module device pages keep their health with, in headless Chromium against a
real ``hall serve`` (heartbeats every half second): a page that opens the link keeps its device
online in the snapshot, beat after beat, and offline once the page is closed; it comes back by
itself after a server restart; a wrong token is refused and the page can tell."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import HALL, PASSWORD, hall_file
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

OPEN = """([hall, token]) => import("/static/devices/devicelink.js").then(({ openDeviceLink }) => {
  window.states = [];
  window.link = openDeviceLink(hall, token, {
    onState: (state, detail) => window.states.push([state, detail && detail.code]),
  });
})"""


BEAT = 0.5


def beating_server(directory: Path) -> ServerProcess:
    config, data = hall_file(directory), directory / "data"
    options = ("--config", str(config), "--data", str(data), "--device-heartbeat", str(BEAT))
    return ServerProcess(*options, log=directory / "log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with beating_server(tmp_path_factory.mktemp("device-link")) as server:
        yield server


def journaled(server: ServerProcess, device: str) -> list[str]:
    """The device's health events, from the journal as a manager reads it."""
    api = f"{server.url}/api/halls/{HALL}"
    login = httpx.post(
        f"{api}/managers/login", json={"username": "manager", "password": PASSWORD}, timeout=10
    )
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    events = httpx.get(f"{api}/journal?limit=1000", headers=auth, timeout=10).json()
    return [
        e["event"]["status"]
        for e in events
        if e["event"]["type"] == "device_reported" and e["event"]["device"] == device
    ]


def status(server: ServerProcess, device: str) -> str:
    snapshot = httpx.get(f"{server.url}/api/halls/{HALL}/snapshot", timeout=10).json()
    found: str = next(d["status"] for d in snapshot["devices"] if d["id"] == device)
    return found


def wait_status(server: ServerProcess, device: str, wanted: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while status(server, device) != wanted:
        assert time.monotonic() < deadline, f"{device} never {wanted}"
        time.sleep(0.05)


def test_a_page_keeps_its_device_online_until_it_closes(
    browser: Any, server: ServerProcess
) -> None:
    assert status(server, "pad-1") == "offline"
    page = browser.new_page()
    page.goto(server.url + "/")
    page.evaluate(OPEN, [HALL, "demo-pad-1-token"])
    page.wait_for_function("window.link.state === 'online'", timeout=10_000)
    assert page.evaluate("window.link.device") == {"device": "pad-1", "kind": "pad", "window": "1"}
    wait_status(server, "pad-1", "online")
    time.sleep(8 * BEAT)  # heartbeats keep it there
    assert page.evaluate("window.states") == [["connecting", None], ["online", None]]
    assert journaled(server, "pad-1") == ["online"]
    page.close()
    wait_status(server, "pad-1", "offline")
    assert journaled(server, "pad-1") == ["online", "offline"]


def test_a_page_comes_back_online_after_a_server_restart(browser: Any, tmp_path: Path) -> None:
    with beating_server(tmp_path) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.evaluate(OPEN, [HALL, "demo-caller-1-token"])
        page.wait_for_function("window.link.state === 'online'", timeout=10_000)
        server.stop()
        page.wait_for_function("window.link.state === 'offline'", timeout=10_000)
        server.start()
        page.wait_for_function("window.link.state === 'online'", timeout=15_000)
        wait_status(server, "caller-1", "online")
        states = page.evaluate("window.states")
        assert states == [
            ["connecting", None],
            ["online", None],
            ["offline", 1001],
            ["online", None],
        ]
        # A stopping server journals nothing; the restarted one may have given up on the page
        # (three half-second beats are less than the page's backoff) before it came back.
        assert journaled(server, "caller-1") in (["online"], ["online", "offline", "online"])
        page.close()


def test_a_wrong_token_is_refused(browser: Any, server: ServerProcess) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    page.evaluate(OPEN, [HALL, "not-a-token"])
    page.wait_for_function("window.link.state === 'refused'", timeout=10_000)
    assert page.evaluate("window.states") == [["connecting", None], ["refused", 4401]]
    page.close()
