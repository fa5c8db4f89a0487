"""The manager's live view in a real browser against a real ``hall serve``: the manager logs in;
a window opened while a ticket waits raises an idle-window alert on the page within a second;
acknowledging it from the page greys it, and it goes once the window calls; a profile changed from
the page decides what that window calls next; the what-if answers on the page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import HALL, PASSWORD, Api, hall_file, hall_server, screenshot
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

MONITOR = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("manager")
    config = hall_file(directory)
    text = config.read_text(encoding="utf-8").replace(
        "[alerts]\nidle_seconds = 30", "[alerts]\nidle_seconds = 0"
    )
    config.write_text(text, encoding="utf-8")
    with hall_server(directory, config) as server:
        yield server


def open_live(browser: Any, server: ServerProcess, viewport: dict[str, int]) -> Any:
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(f"{server.url}/manage/{HALL}")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login input[name=username]", "manager")
    page.fill("#login input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("body.feed-live", timeout=10_000)
    page.wait_for_selector("#windows li")
    return page


def test_a_manager_sees_alerts_acknowledges_and_moves_a_profile(
    browser: Any, server: ServerProcess
) -> None:
    page = open_live(browser, server, MONITOR)
    assert page.locator("#windows li").count() == 16
    assert page.locator("#load tr.cat").count() > 5
    with Api(server.url) as api:
        tickets = f"{server.url}/api/halls/{HALL}/tickets"
        waiting = httpx.post(tickets, json={"category": "real-estate"}, headers=KIOSK)
        assert waiting.status_code == 201, waiting.text
        assert page.locator('#alerts li[data-id^="idle:10:"]').count() == 0
        api.login("10", "zhaolei")  # the window opens with a ticket it may call waiting
        opened = time.monotonic()
        alert = page.wait_for_selector('#alerts li.sev-high[data-id^="idle:10:"]', timeout=1500)
        assert time.monotonic() - opened < 1.0
        assert "10号窗口" in alert.inner_text()
        page.wait_for_selector('#windows li.s-open[data-id="10"]')
        screenshot(page, "manager-live-alert")

        alert.query_selector("button.ack").click()
        page.wait_for_selector('#alerts li.acknowledged[data-id^="idle:10:"]', timeout=3000)
        assert page.locator("#alert-count").inner_text() == "0"
        screenshot(page, "manager-live-acknowledged")
        api.call_next("10")
        page.wait_for_selector('#alerts li[data-id^="idle:10:"]', state="detached", timeout=3000)
        api.free("10")

        # Window 10 serves real-estate only; one real-estate and one general ticket wait (the
        # real-estate one longer). From the page it is given general only, general first.
        for category in ("real-estate", "general"):
            api.issue("10", category)
            time.sleep(0.05)
        page.click('#windows li[data-id="10"]')
        page.wait_for_selector('#profile li[data-id="general"]')
        page.check('#profile li[data-id="general"] input')
        while page.locator("#profile li").first.get_attribute("data-id") != "general":
            page.click('#profile li[data-id="general"] button.up')
        page.uncheck('#profile li[data-id="real-estate"] input')
        page.click("#profile-apply")
        page.wait_for_selector("#message:has-text('Profile changed')")
        snapshot = api.http.get("/snapshot").json()
        window = next(w for w in snapshot["windows"] if w["id"] == "10")
        assert window["categories"] == ["general"]
        called = api.act("10", "call-next")["ticket"]
        assert called["category"] == "general", called

        # What if window 11 (closed) opened: real-estate's longest wait before and after.
        page.click('#windows li[data-id="11"]')
        page.check("#whatif-open")
        page.click("#whatif")
        result = page.wait_for_selector("#whatif-result p.better")
        assert "→" in result.inner_text() and "Real Estate" in result.inner_text()
        screenshot(page, "manager-live-whatif")
    assert page.errors == []
    page.close()


def test_the_live_view_is_readable_on_a_laptop(browser: Any, server: ServerProcess) -> None:
    page = open_live(browser, server, LAPTOP)
    # Nothing is wider than the screen: the layout stacks instead of clipping.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= LAPTOP["width"], width
    for selector in (".load", ".alerts", ".actions", ".figures"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 400, selector
    screenshot(page, "manager-live-1366", full_page=True)
    assert page.errors == []
    page.close()
