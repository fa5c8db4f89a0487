"""The report pages' server side: the chart route (manager only, SVG of the hall's own figures,
clear refusals) and the page shells."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import msgspec
from litestar import Litestar
from litestar.testing import TestClient

from displays import charts
from hall.reports.model import Report
from tests.api.conftest import BASE, PASSWORD, act, issue, login

PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}


def manager(client: TestClient[Litestar]) -> dict[str, str]:
    response = client.post(
        f"{BASE}/managers/login", json={"username": "manager", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_charts_draw_the_halls_figures_for_managers_only(client: TestClient[Litestar]) -> None:
    auth = login(client, "1")
    for level in (5, 4, 4, 1):
        ticket = issue(client)
        act(client, "1", "call-next", auth)
        act(client, "1", "start", auth)
        act(client, "1", "finish", auth, {"outcome": "done"})
        body = {"level": level, "reasons": ["slow"] if level == 1 else []}
        rated = client.post(f"{BASE}/tickets/{ticket['id']}/rating", json=body, headers=PAD_1)
        assert rated.status_code == 200, rated.text
    boss = manager(client)
    url = f"{BASE}/reports/charts/ratings.svg?period=today&by=window"
    response = client.get(url, headers=boss)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    ET.fromstring(response.text)  # well-formed
    # The very drawing of the figures the JSON report gives: 1 非常满意, 2 满意, 1 非常不满意.
    answer = client.get(f"{BASE}/reports?period=today&by=window", headers=boss)
    report = msgspec.json.decode(answer.content, type=Report)
    assert report.total.levels == (1, 2, 0, 0, 1)
    assert response.text == charts.ratings(report)
    hours = client.get(f"{BASE}/reports/charts/hours.svg?period=today", headers=boss)
    assert hours.status_code == 200 and "取号 Issued" in hours.text

    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth).status_code == 403  # staff
    unknown = client.get(f"{BASE}/reports/charts/pie.svg?period=today", headers=boss)
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_chart"
    bad = client.get(f"{BASE}/reports/charts/hours.svg?period=someday", headers=boss)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_query"


def test_the_office_pages_are_shells_that_log_in_on_the_page(client: TestClient[Litestar]) -> None:
    for path in ("cases", "reports?period=2026-10&by=window"):
        page = client.get(f"/manage/demo-county/{path}")
        assert page.status_code == 200 and 'id="login"' in page.text
        assert "示范县" in page.text and "/manage/demo-county" in page.text
    assert client.get("/manage/nowhere/cases").status_code == 404
