"""The region's report as CSV (``GET /api/region/reports.csv``) on the demo region: supervisors
only, the JSON's figures row for row (a total per city, town and village, then its halls, each
with its unit path), and a unit's total the sum of the halls under it."""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from hall.api.region import CSV_COLUMNS
from tests.api.conftest import PASSWORD
from tests.api.test_region import bearer, supervise, units
from tests.api.test_region import client as client  # the fixture: a demo region app

EAST = "/api/halls/demo-east"
XISHAN = "/api/halls/demo-xishan"


def serve(
    client: TestClient[Litestar], hall: str, who: str, levels: list[int], waiting: int
) -> None:
    """At ``hall``'s window 1: a ticket served and rated at each of ``levels``, then
    ``waiting`` more issued and left waiting."""
    staff = client.post(f"{hall}/windows/1/login", json={"username": who, "password": PASSWORD})
    assert staff.status_code == 200, staff.text
    desk = bearer(staff.json()["token"])
    for level in levels:
        ticket = client.post(f"{hall}/tickets", json={"category": "social"}, headers=desk).json()
        for action, body in (("call-next", {}), ("start", {}), ("finish", {"outcome": "done"})):
            done = client.post(f"{hall}/windows/1/{action}", json=body, headers=desk)
            assert done.status_code == 200, done.text
        rated = client.post(
            f"{hall}/tickets/{ticket['id']}/visitor-rating",
            json={"secret": ticket["secret"], "level": level, "reasons": ["wait"] * (level < 3)},
        )
        assert rated.status_code == 200, rated.text
    for _ in range(waiting):
        made = client.post(f"{hall}/tickets", json={"category": "social"}, headers=desk)
        assert made.status_code == 201, made.text


def rows(answer: Any) -> list[dict[str, str]]:
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff")  # as the hall's CSV: Excel reads it as UTF-8
    table = list(csv.reader(io.StringIO(text[1:])))
    assert tuple(table[0]) == CSV_COLUMNS
    return [dict(zip(table[0], row, strict=True)) for row in table[1:]]


def test_only_supervisors_download_the_region_csv(client: TestClient[Litestar]) -> None:
    boss = client.post(
        f"{EAST}/managers/login", json={"username": "manager", "password": PASSWORD}
    ).json()["token"]
    for headers in ({}, bearer("not-a-token"), bearer(boss)):
        answer = client.get("/api/region/reports.csv?period=today", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized", headers
    token = supervise(client)
    bad = client.get("/api/region/reports.csv?period=someday", headers=bearer(token))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_query"
    quarter = client.get("/api/region/reports.csv?period=2026-Q4", headers=bearer(token))
    assert quarter.status_code == 200, quarter.text
    assert quarter.headers["content-type"].startswith("text/csv")
    disposition = quarter.headers["content-disposition"]
    assert disposition == 'attachment; filename="report-demo-city-2026-Q4.csv"'
    # A relative period's file names its days, not "this-week" again every week.
    week = client.get("/api/region/reports.csv?period=this-week", headers=bearer(token))
    first = rows(week)[0]
    start, end = first["start"], first["end"]
    assert f'filename="report-demo-city-{start}..{end}.csv"' in week.headers["content-disposition"]


def test_the_csv_gives_the_json_figures_with_unit_paths(client: TestClient[Litestar]) -> None:
    token = supervise(client)
    serve(client, EAST, "lixiu", [5, 4, 1], waiting=2)
    serve(client, XISHAN, "fanjun", [2], waiting=1)
    body = client.get("/api/region/reports?period=today", headers=bearer(token)).json()
    answer = client.get("/api/region/reports.csv?period=today", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    lines = rows(answer)
    # The tree in order: each unit's total, then its halls, then the units under it.
    assert [(r["row"], r["path"], r["hall"]) for r in lines] == [
        ("total", "demo-city", ""),
        ("hall", "demo-city", "demo-county"),
        ("total", "demo-city/demo-town", ""),
        ("hall", "demo-city/demo-town", "demo-town"),
        ("total", "demo-city/demo-town/east", ""),
        ("hall", "demo-city/demo-town/east", "demo-east"),
        ("total", "demo-city/demo-town/xishan", ""),
        ("hall", "demo-city/demo-town/xishan", "demo-xishan"),
    ]
    assert lines[4]["unit"] == "示范市 / 示范镇 / 东村" and lines[4]["kind"] == "village"
    east = next(r for r in lines if r["hall"] == "demo-east")
    assert (east["issued"], east["served"], east["rated"]) == ("5", "3", "3")
    assert (east["level_5"], east["level_4"], east["level_1"], east["rating_mean"]) == (
        *("1", "1", "1"),
        "3.33",
    )
    assert east["satisfaction"] == "0.6667" and east["bad_rate"] == "0.3333"
    assert east["within_target"] == "1.0000" and east["wait_mean_min"] != ""
    # Every hall's row is its JSON figures, with the hall CSV's formatting.
    json_halls = {h["id"]: h for u in units(body).values() for h in u["halls"]}
    for line in (r for r in lines if r["row"] == "hall"):
        figures = json_halls[line["hall"]]["figures"]
        assert line["name"] == figures["name"] and line["version"] == str(
            json_halls[line["hall"]]["version"]
        )
        for name in ("issued", "served", "no_shows", "rated", "breaches", "cases"):
            assert line[name] == str(figures[name]), (line["hall"], name)
    # A unit's total: its JSON sums, and the sum of the hall rows at or under its path.
    for unit_id, unit in units(body).items():
        total = next(r for r in lines if r["row"] == "total" and r["path"].endswith(unit_id))
        under = [
            r
            for r in lines
            if r["row"] == "hall"
            and (r["path"] == total["path"] or r["path"].startswith(total["path"] + "/"))
        ]
        for name in ("issued", "served", "rated", "level_5", "level_1", "breaches"):
            assert int(total[name]) == sum(int(r[name]) for r in under), (unit_id, name)
        for name in ("issued", "served", "rated", "breaches", "cases"):
            assert total[name] == str(unit["total"][name]), (unit_id, name)
        # Waits need each ticket: a total has none; ratings' mean and shares add up.
        assert total["wait_mean_min"] == "" and total["within_target"] == ""
    town = units(body)["demo-town"]["total"]
    assert town["bad"] == 2 and town["rating_mean"] == 3.0 and town["satisfaction"] == 0.5
    town_line = next(r for r in lines if r["path"] == "demo-city/demo-town" and r["row"] == "total")
    assert town_line["rating_mean"] == "3.00" and town_line["bad_rate"] == "0.5000"
