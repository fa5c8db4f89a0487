"""The city view (/region) in a real browser against a real ``hall serve --region``: the
supervisor logs in, sees the city, the town and its villages with their halls; a ticket issued
in a village shows within a couple of seconds; a hall whose waiting exceeds its target is
coloured; the hall links to its manager view; the page greys when the server goes away."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import PASSWORD, screenshot
from tests.support.server import ROOT, ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("region")
    region = ROOT / "config" / "region.toml"
    process = ServerProcess(
        "--region", str(region), "--data", str(directory / "data"), "--no-speech",
        log=directory / "log",
    )  # fmt: skip
    with process as server:
        yield server


def test_the_city_view_is_live_and_drills_down(browser: Any, server: ServerProcess) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/region")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login input[name=username]", "city")
    page.fill("#login input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("body.feed-live", timeout=10_000)
    page.wait_for_selector("tr.hall[data-hall=demo-xishan]")
    assert page.locator("tr.unit").count() == 4  # the city, the town, two villages
    with httpx.Client(base_url=f"{server.url}/api/halls/demo-xishan", timeout=10) as http:
        body = {"username": "fanjun", "password": PASSWORD}
        token = http.post("/windows/1/login", json=body).json()["token"]
        for _ in range(3):
            made = http.post(
                "/tickets",
                json={"category": "social"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert made.status_code == 201, made.text
    row = page.locator("tr.hall[data-hall=demo-xishan]")
    waiting = "document.querySelector('tr.hall[data-hall=demo-xishan] td:nth-child(2)')"
    page.wait_for_function(f"{waiting}.textContent === '3'", timeout=3_000)
    assert "1 / 2" in row.inner_text()  # one of two windows open
    assert "3" in page.locator("tr.unit.town td:nth-child(2)").inner_text()
    screenshot(page, "region-city-view")
    link = row.locator("a")
    assert link.get_attribute("href") == "/manage/demo-xishan"
    # The drill-down: the hall's live view on the supervisor's login, read-only.
    link.click()
    page.wait_for_url(f"{server.url}/manage/demo-xishan")
    page.wait_for_selector("body.feed-live", timeout=10_000)
    assert "read-only" in page.locator("#who").inner_text()
    assert page.locator("section.actions").is_hidden()  # nothing a supervisor could do here
    assert page.locator("#who a").get_attribute("href") == "/region"  # the way back
    screenshot(page, "region-drill-down")
    page.go_back()
    page.wait_for_selector("body.feed-live", timeout=10_000)
    server.stop()
    page.wait_for_selector("body.feed-stale", timeout=10_000)
    screenshot(page, "region-city-view-stale")
    assert not errors, errors
    page.close()
