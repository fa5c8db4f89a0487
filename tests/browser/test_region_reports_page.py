"""The region's reports (/region/reports) in a real browser against a real ``hall serve
--region``: a supervisor sent there logs in on the city view and comes back, picks a period,
sees the figures of the tickets served in a village, the halls ranked, and downloads the CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import PASSWORD, screenshot
from tests.browser.test_region_page import server as server  # the fixture: the demo region
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser


def served_in_xishan(url: str, levels: list[int], waiting: int) -> None:
    """At 西山村's window 1: a ticket served and rated per level; ``waiting`` more left waiting."""
    with httpx.Client(base_url=f"{url}/api/halls/demo-xishan", timeout=10) as http:
        login = {"username": "fanjun", "password": PASSWORD}
        desk = {
            "Authorization": f"Bearer {http.post('/windows/1/login', json=login).json()['token']}"
        }
        for level in levels:
            ticket = http.post("/tickets", json={"category": "social"}, headers=desk).json()
            for action, body in (("call-next", {}), ("start", {}), ("finish", {"outcome": "done"})):
                assert http.post(f"/windows/1/{action}", json=body, headers=desk).status_code == 200
            rating = {"secret": ticket["secret"], "level": level, "reasons": ["wait"] * (level < 3)}
            rated = http.post(f"/tickets/{ticket['id']}/visitor-rating", json=rating)
            assert rated.status_code == 200, rated.text
        for _ in range(waiting):
            made = http.post("/tickets", json={"category": "social"}, headers=desk)
            assert made.status_code == 201, made.text


def cells(page: Any, selector: str) -> list[str]:
    texts: list[str] = page.locator(f"{selector} td").all_inner_texts()
    return texts


def test_a_supervisor_compares_the_halls(browser: Any, server: ServerProcess) -> None:
    served_in_xishan(server.url, [5, 2], waiting=1)
    page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # No login yet: the city view's form, then back to the reports.
    page.goto(f"{server.url}/region/reports?period=this-week")
    page.wait_for_selector("#login:not([hidden])")
    assert "/region?next=" in page.url
    page.fill("#login input[name=username]", "city")
    page.fill("#login input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("body[data-loaded=this-week]", timeout=10_000)
    # Today, from the quick choices.
    page.click("#quick button[data-period=today]")
    page.wait_for_selector("body[data-loaded=today]")
    xishan = cells(page, "#units tr.hall[data-hall=demo-xishan]")
    assert xishan[1:3] == ["3", "2"]  # issued, served
    assert xishan[6:9] == ["2", "3.50", "1"]  # rated, mean, bad
    assert xishan[9] == "50.0%"  # satisfaction
    town = cells(page, "#units tr.unit[data-unit=demo-town]")
    assert town[1:3] == ["3", "2"] and town[3] == "—"  # a total has no waits of its own
    # Ranked by satisfaction, the weakest first: the only rated hall, then those with none.
    page.select_option("#rank-by", "satisfaction")
    first = page.locator("#ranking tbody tr").first
    assert first.get_attribute("data-hall") == "demo-xishan" and "50.0%" in first.inner_text()
    assert page.locator("#ranking tbody tr").count() == 4
    screenshot(page, "region-reports", full_page=True)
    # A day from the picker: today by its date.
    today = page.evaluate("JSON.parse(document.getElementById('settings').textContent).today")
    page.select_option("#kind", "day")
    page.fill("#picker input[name=day]", today)
    page.click("#picker button[type=submit]")
    page.wait_for_selector(f"body[data-loaded='{today}']")
    assert cells(page, "#units tr.hall[data-hall=demo-xishan]")[1] == "3"
    assert f"period={today}" in page.url
    # A hall's name opens its own report for the period (read-only on this login).
    link = page.locator("#units tr.hall[data-hall=demo-xishan] a")
    assert link.get_attribute("href") == f"/manage/demo-xishan/reports?period={today}"
    with page.expect_download() as download:
        page.click("#csv")
    saved = download.value
    assert saved.suggested_filename == f"report-demo-city-{today}.csv"
    text = Path(saved.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    row = next(
        line for line in text.splitlines() if ",hall,village,demo-city/demo-town/xishan," in line
    )
    assert ",demo-xishan,西山村" in row and f"{today},{today},{today},hall" in row
    # The city view is a click away, on the same login.
    page.click("nav a[href='/region']")
    page.wait_for_selector("body.feed-live", timeout=10_000)
    assert page.locator("#login").is_hidden()
    assert not errors, errors
    page.close()
