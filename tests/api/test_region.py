"""The city view's API on the demo region (config/region.toml, a SQLite journal): supervisors
only; every hall's live figures from its engine, rolled up by town and city; the period's
reports with their sums; and the feed /ws/region, live over a real WebSocket and coalesced."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar
from litestar.testing import TestClient

from hall.api.app import create_app
from hall.settings import ROOT, Settings
from tests.api.conftest import PASSWORD, make_app
from tests.api.test_screens import refused
from tests.support.inloop import uvicorn_serving

REGION = ROOT / "config" / "region.toml"
EAST = "/api/halls/demo-east"


def region_app(data_dir: Path) -> Litestar:
    cache = os.environ.get("HALL_VOICE_CACHE")
    voice_cache = Path(cache) if cache else None
    return create_app(Settings(region=REGION, data_dir=data_dir, voice_cache=voice_cache))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with TestClient(region_app(tmp_path)) as client:
        yield client


def supervise(client: TestClient[Litestar] | httpx.Client) -> str:
    answer = client.post("/api/region/login", json={"username": "city", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "市政务服务管理办公室"
    return str(answer.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def units(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(unit: dict[str, Any]) -> None:
        found[unit["id"]] = unit
        for child in unit["units"]:
            walk(child)

    walk(view["city"])
    return found


def halls(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["id"]: h for unit in units(view).values() for h in unit["halls"]}


def test_only_supervisors_see_the_city(client: TestClient[Litestar]) -> None:
    wrong = client.post("/api/region/login", json={"username": "city", "password": "nope-nope"})
    assert wrong.status_code == 401
    # A hall's manager is not a supervisor, and a supervisor is no hall's manager.
    boss = client.post(
        f"{EAST}/managers/login", json={"username": "manager", "password": PASSWORD}
    ).json()["token"]
    for token in ("", "not-a-token", boss):
        answer = client.get("/api/region", headers=bearer(token) if token else {})
        assert answer.status_code == 401, token
        assert client.get("/api/region/reports?period=today", headers=bearer(token)).status_code
    token = supervise(client)
    # A supervisor drills down into any hall of the region to look (its manager views, journal
    # and reports), never to act there.
    assert client.get(f"{EAST}/journal", headers=bearer(token)).status_code == 200
    assert client.get(f"{EAST}/reports?period=today", headers=bearer(token)).status_code == 200
    with client.websocket_connect(f"/ws/halls/demo-east/screens/manager?token={token}") as ws:
        assert ws.receive_json()["type"] == "view"
    acting = client.post(
        f"{EAST}/staff/lixiu/logout",
        json={"note": "looking"},
        headers={**bearer(token), "Idempotency-Key": "k1"},
    )
    assert acting.status_code == 403 and acting.json()["error"] == "forbidden", acting.text
    assert refused(client, f"/ws/region?token={boss}")[1] == 4401
    assert refused(client, "/ws/region")[1] == 4401
    assert client.get("/api/region", headers=bearer(token)).status_code == 200
    assert client.post("/api/region/logout", headers=bearer(token)).json()["sessions_ended"] == 1
    assert client.get("/api/region", headers=bearer(token)).status_code == 401


def test_the_city_view_rolls_the_halls_up(client: TestClient[Litestar]) -> None:
    token = supervise(client)
    staff = client.post(f"{EAST}/windows/1/login", json={"username": "lixiu", "password": PASSWORD})
    assert staff.status_code == 200, staff.text
    desk = bearer(staff.json()["token"])
    tickets = []
    for category in ("social", "certificates", "social", "social"):
        made = client.post(f"{EAST}/tickets", json={"category": category}, headers=desk)
        assert made.status_code == 201, made.text
        tickets.append(made.json())
    by_number = {t["number"]: t for t in tickets}
    for level in (5, 4):
        called = client.post(f"{EAST}/windows/1/call-next", json={}, headers=desk)
        assert called.status_code == 200, called.text
        ticket = by_number[called.json()["window"]["ticket"]]
        for action, body in (("start", {}), ("finish", {"outcome": "done"})):
            done = client.post(f"{EAST}/windows/1/{action}", json=body, headers=desk)
            assert done.status_code == 200, done.text
        rated = client.post(
            f"{EAST}/tickets/{ticket['id']}/visitor-rating",
            json={"secret": ticket["secret"], "level": level},
        )
        assert rated.status_code == 200, rated.text
    view = client.get("/api/region", headers=bearer(token)).json()
    east = halls(view)["demo-east"]
    assert east["waiting"] == 2 and east["served"] == 2
    assert east["windows_open"] == 1 and east["windows"] == 1
    assert east["rated"] == 2 and east["rating_mean"] == 4.5 and east["bad"] == 0
    assert east["leading"] is True and east["version"] > 0 and east["stale"] is False
    assert east["longest_wait_minutes"] is not None and 0 <= east["longest_wait_minutes"] < 1
    # The same figures as the hall's manager sees.
    snapshot = client.get(f"{EAST}/snapshot").json()
    assert sum(q["waiting"] for q in snapshot["queues"]) == east["waiting"]
    town, city = units(view)["demo-town"]["total"], view["city"]["total"]
    assert town["halls"] == 3 and city["halls"] == 4
    assert town["waiting"] == city["waiting"] == 2
    assert town["windows"] == 4 + 1 + 2 and city["windows"] == 16 + 7
    assert town["rated"] == 2 and town["rating_mean"] == 4.5
    assert units(view)["xishan"]["total"]["waiting"] == 0
    report = client.get("/api/region/reports?period=today", headers=bearer(token))
    assert report.status_code == 200, report.text
    body = report.json()
    assert units(body)["east"]["halls"][0]["figures"]["issued"] == 4
    assert units(body)["demo-town"]["total"]["served"] == 2
    assert body["city"]["total"]["issued"] == 4 and body["city"]["total"]["levels"][:2] == [1, 1]
    bad = client.get("/api/region/reports?period=someday", headers=bearer(token))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_query"


def test_a_server_without_a_region_says_so(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        answer = client.post("/api/region/login", json={"username": "city", "password": PASSWORD})
        assert answer.status_code == 404 and answer.json()["error"] == "no_region"
        assert client.get("/region").status_code == 404


async def test_the_feed_follows_every_hall_live_and_coalesced(tmp_path: Path) -> None:
    """A ticket issued in a village shows in the feed's next view, within a second; a burst
    of tickets in several halls comes as a few views, at most about two a second."""
    app = region_app(tmp_path)
    async with uvicorn_serving(app) as server:
        base = f"http://127.0.0.1:{server.config.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.post(
                "/api/region/login", json={"username": "city", "password": PASSWORD}
            )
            token = answer.json()["token"]
            desks = {}
            for hall, who in (("demo-east", "lixiu"), ("demo-xishan", "fanjun")):
                body = {"username": who, "password": PASSWORD}
                login = await http.post(f"/api/halls/{hall}/windows/1/login", json=body)
                desks[hall] = bearer(login.json()["token"])
            async with websockets.connect(
                f"ws://127.0.0.1:{server.config.port}/ws/region?token={token}"
            ) as ws:
                first = json.loads(await ws.recv())
                assert first["type"] == "view"
                before = halls(first["view"])["demo-xishan"]["waiting"]
                issued = time.monotonic()
                made = await http.post(
                    "/api/halls/demo-xishan/tickets", json={"category": "social"},
                    headers=desks["demo-xishan"],
                )  # fmt: skip
                assert made.status_code == 201
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 2))
                    if frame["type"] == "view":
                        break
                assert time.monotonic() - issued < 1.0
                assert frame["version"] > first["version"]
                assert halls(frame["view"])["demo-xishan"]["waiting"] == before + 1
                assert units(frame["view"])["demo-town"]["total"]["waiting"] == before + 1
                # A burst: 20 tickets over about a second in two halls.
                start = time.monotonic()
                for n in range(20):
                    hall = ("demo-east", "demo-xishan")[n % 2]
                    made = await http.post(
                        f"/api/halls/{hall}/tickets", json={"category": "certificates"},
                        headers=desks[hall],
                    )  # fmt: skip
                    assert made.status_code == 201
                    await asyncio.sleep(0.05)
                views = []
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
                    views.append(frame)
                    if units(frame["view"])["demo-town"]["total"]["waiting"] == before + 21:
                        break
                took = time.monotonic() - start
                assert len(views) <= 2 * took + 2, (len(views), took)
