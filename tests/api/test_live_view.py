"""The manager's live view over HTTP and its feed: who may open it, opening a window for someone,
acknowledging an alert, and the what-if and suggestions (numbers that make sense)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar
from litestar.testing import TestClient

from hall.settings import DEFAULT_CONFIG
from tests.api.conftest import BASE, HALL, KIOSK, PASSWORD, act, issue, login, make_app
from tests.api.test_screens import frame, manager, refused, until
from tests.support.inloop import uvicorn_serving

FEED = f"/ws/halls/{HALL}/screens/manager"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """The demo hall with idle-window alerts at once."""
    config = tmp_path / "hall.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        "[alerts]\nidle_seconds = 30", "[alerts]\nidle_seconds = 0"
    )
    config.write_text(text, encoding="utf-8")
    with TestClient(make_app(tmp_path / "data", config)) as client:
        yield client


def token(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


def post(client: TestClient[Litestar], path: str, auth: dict[str, str], body: Any = None) -> Any:
    return client.post(f"{BASE}{path}", json=body if body is not None else {}, headers=auth)


def test_only_a_manager_opens_the_feed_and_acts(client: TestClient[Litestar]) -> None:
    staff = login(client, "1")
    assert refused(client, FEED)[1] == 4401
    assert refused(client, f"{FEED}?token=not-a-token")[1] == 4401
    assert refused(client, f"{FEED}?token={token(staff)}")[1] == 4403
    for path, body in (
        ("/windows/2/open", {"staff": "lina"}),
        ("/alerts/idle:1:x/acknowledge", {}),
        ("/what-if", {"window": "2", "open": True}),
    ):
        assert post(client, path, staff, body).status_code == 403, path
        assert post(client, path, {}, body).status_code == 401, path
    assert client.get(f"{BASE}/what-if/suggestions", headers=staff).status_code == 403
    with client.websocket_connect(f"{FEED}?token={token(manager(client))}") as ws:
        view = frame(ws)
        assert view["type"] == "view"
        windows = {w["id"]: w for w in view["view"]["windows"]}
        assert windows["1"]["staff"] == "zhangwei" and windows["1"]["staff_name"] == "张伟"


async def test_the_feed_ends_with_4401_soon_after_the_session_does(app: Litestar) -> None:
    """The session is checked while the feed runs, not only at connect: the manager logging out
    from another tab (any of their sessions: all end) closes this one's feed within seconds;
    another manager logging out does not."""
    async with uvicorn_serving(app) as server:
        port = server.config.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}{BASE}") as http:

            async def log_in(username: str) -> str:
                body = {"username": username, "password": PASSWORD}
                answer = await http.post("/managers/login", json=body)
                assert answer.status_code == 200, answer.text
                return str(answer.json()["token"])

            here, elsewhere, deputy = (
                await log_in("manager"),
                await log_in("manager"),
                await log_in("deputy"),
            )
            url = f"ws://127.0.0.1:{port}{FEED}?token={here}"
            async with websockets.connect(url) as ws:
                assert json.loads(await ws.recv())["type"] == "view"
                bye = {"Authorization": f"Bearer {deputy}"}
                assert (await http.post("/logout", json={}, headers=bye)).status_code == 200
                await asyncio.sleep(1.5)  # more than a re-check apart: still fed
                made = await http.post("/tickets", json={"category": "general"}, headers=KIOSK)
                assert made.status_code == 201, made.text
                while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "delta":
                    pass
                bye = {"Authorization": f"Bearer {elsewhere}"}
                ended = time.monotonic()
                assert (await http.post("/logout", json={}, headers=bye)).status_code == 200
                refusal: dict[str, Any] = {}
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:  # pings, perhaps a frame, then the refusal and the close
                        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                        if message["type"] == "error":
                            refusal = message
                assert time.monotonic() - ended < 3.0
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
                assert refusal["error"] == "unauthorized", refusal
            # And it cannot come back with that token.
            async with websockets.connect(url) as ws:
                assert json.loads(await ws.recv())["type"] == "error"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_opening_a_window_for_someone(client: TestClient[Litestar]) -> None:
    boss = manager(client)
    opened = post(client, "/windows/10/open", boss, {"staff": "zhaolei"})
    assert opened.status_code == 200, opened.text
    assert opened.json()["window"]["state"] == "open"
    again = post(client, "/windows/10/open", boss, {"staff": "lina"})
    assert again.status_code == 409 and again.json()["error"] == "window_busy"
    assert post(client, "/windows/99/open", boss, {"staff": "lina"}).status_code == 404
    unknown = post(client, "/windows/2/open", boss, {"staff": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_staff"
    # zhaolei may work at 10 and 11 only.
    assert post(client, "/windows/1/open", boss, {"staff": "zhaolei"}).status_code in (403, 409)
    journal = client.get(f"{BASE}/journal", headers=boss).json()
    opening = [e["event"] for e in journal if e["event"]["type"] == "window_opened"]
    assert opening[-1]["staff"] == "zhaolei" and opening[-1]["by"] == "manager"


def test_an_idle_window_alert_is_acknowledged_and_ends(client: TestClient[Litestar]) -> None:
    boss = manager(client)
    staff = login(client, "10", "zhaolei")
    with client.websocket_connect(f"{FEED}?token={token(boss)}") as ws:
        first = frame(ws)["view"]
        assert not [a for a in first["alerts"] if a["kind"] == "idle"]
        issue(client, "real-estate")

        def idle(message: dict[str, Any]) -> bool:
            alerts = message.get("changes", {}).get("alerts", [])
            return any(a["kind"] == "idle" and not a["acknowledged"] for a in alerts)

        alert = next(a for a in until(ws, idle)[-1]["changes"]["alerts"] if a["kind"] == "idle")
        assert alert["id"].startswith("idle:10:") and alert["severity"] == "high"
        assert post(client, "/alerts/no-such-alert/acknowledge", boss).status_code == 404
        too_long = post(client, f"/alerts/{'a' * 121}/acknowledge", boss)
        assert (too_long.status_code, too_long.json()["error"]) == (404, "not_found")
        done = post(client, f"/alerts/{alert['id']}/acknowledge", boss)
        assert done.status_code == 200, done.text
        assert done.json() == {"alert": alert["id"], "by": "manager"}
        assert post(client, f"/alerts/{alert['id']}/acknowledge", boss).status_code == 200

        def seen(message: dict[str, Any]) -> bool:
            alerts = message.get("changes", {}).get("alerts", [])
            return any(a["id"] == alert["id"] and a["acknowledged"] for a in alerts)

        until(ws, seen)
        act(client, "10", "call-next", staff)

        def ended(message: dict[str, Any]) -> bool:
            alerts = message.get("changes", {}).get("alerts")
            return alerts is not None and all(a["id"] != alert["id"] for a in alerts)

        until(ws, ended)
    # Ended: acknowledging it now is refused.
    assert post(client, f"/alerts/{alert['id']}/acknowledge", boss).status_code == 404


def test_what_if_opening_a_window_never_makes_its_categories_wait_longer(
    client: TestClient[Litestar],
) -> None:
    boss = manager(client)
    staff = login(client, "10", "zhaolei")
    for _ in range(8):  # by staff: no kiosk's limit
        made = client.post(f"{BASE}/tickets", json={"category": "real-estate"}, headers=staff)
        assert made.status_code == 201, made.text
        time.sleep(0.01)  # one instant apart: none would count as ahead of another
    answer = post(client, "/what-if", boss, {"window": "11", "open": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["open"] is True and body["categories"] == ["real-estate"]
    [estate] = body["waits"]
    assert estate["category"] == "real-estate" and estate["target_minutes"] == 30
    assert estate["before"] > 0 and estate["after"] < estate["before"]
    # Eight 20-minute transactions on one window, more coming at the rate they came: the runs
    # stop following the last of them at two hours, still waiting: "at least".
    assert estate["before_capped"] is True and estate["before"] >= 119
    # A window of another zone given real-estate first: never worse for it, and what it
    # served before is shown too.
    change = post(client, "/what-if", boss, {"window": "12", "categories": ["real-estate"]})
    waits = {w["category"]: w for w in change.json()["waits"]}
    assert set(waits) == {"household", "real-estate"}
    assert waits["real-estate"]["after"] == waits["real-estate"]["before"]  # 12 is closed
    opened = post(
        client, "/what-if", boss, {"window": "12", "categories": ["real-estate"], "open": True}
    ).json()["waits"]
    estate_after = next(w for w in opened if w["category"] == "real-estate")
    assert estate_after["after"] <= estate_after["before"]
    # Nothing changed for real.
    windows = {w["id"]: w for w in client.get(f"{BASE}/snapshot").json()["windows"]}
    assert windows["11"]["state"] == "closed" and windows["12"]["categories"] == ["household"]
    found = client.get(f"{BASE}/what-if/suggestions", headers=boss)
    assert found.status_code == 200, found.text
    best = found.json()[0]
    assert best["wait"]["category"] == "real-estate" and best["window"] == "11" and best["open"]
    assert best["wait"]["after"] < best["wait"]["before"]
    # Window 11 opens as it is; any other window would serve real-estate first.
    assert best["categories"] == ["real-estate"] and best["profile_changed"] is False
    for other in found.json()[1:]:
        assert other["categories"][0] == "real-estate", other
        profile = windows[other["window"]]["categories"]
        assert other["profile_changed"] is (other["categories"] != profile), (other, profile)


def test_what_if_counts_who_waits_and_who_is_expected(client: TestClient[Litestar]) -> None:
    """A category's longest wait over the next hour counts its tickets waiting now and those
    expected at today's rates. Seen on the demo hall with the old estimate: "longest wait 0 → 60"
    for categories nobody waited in (a ticket taken now, behind business-start). Now a category
    nobody waits in and nobody came for today is 0 on both sides."""
    boss = manager(client)
    staff = login(client, "1", "zhangwei")
    issue(client, "collection")
    act(client, "1", "call-next", staff)
    for _ in range(6):
        made = client.post(f"{BASE}/tickets", json={"category": "business-start"}, headers=staff)
        assert made.status_code == 201, made.text
    issue(client, "general")
    profile = ["collection", "general", "social", "medical", "business-start"]
    answer = post(client, "/what-if", boss, {"window": "1", "categories": profile})
    assert answer.status_code == 200, answer.text
    waits = {w["category"]: w for w in answer.json()["waits"]}
    for category in ("social", "medical"):
        assert (waits[category]["waiting"], waits[category]["before"]) == (0, 0), category
        assert waits[category]["after"] == 0, category
    for wait in waits.values():  # figures are floats, zeros too (0.0, never 0)
        for side in ("before", "after"):
            assert wait[side] is None or isinstance(wait[side], float), wait
            assert isinstance(wait[f"{side}_capped"], bool), wait

    # Nobody waits for collection, but one came a minute ago: more are expected, and they wait
    # longer once window 1, the only one serving it, also takes 15-minute business start-ups.
    collection = waits["collection"]
    assert collection["waiting"] == 0 and 0 < collection["before"] < collection["after"]
    # So does general: window 1 is the only one serving it too.
    assert waits["general"]["waiting"] == 1
    assert waits["general"]["before"] < waits["general"]["after"]
    start = waits["business-start"]
    assert start["waiting"] == 6 and start["before"] is None and start["after"] > 0
    # Window 5 opening adds a window for business start-ups and for general.
    opened = post(client, "/what-if", boss, {"window": "5", "open": True}).json()["waits"]
    for wait in opened:
        if wait["category"] == "business-start":
            assert wait["before"] is None and wait["after"] > 0
        elif wait["category"] == "general":
            assert 0 < wait["after"] <= wait["before"]
        else:
            assert (wait["waiting"], wait["before"], wait["after"]) == (0, 0, 0), wait


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"window": "99", "open": True}, 404, "unknown_window"),
        ({"window": "99"}, 404, "unknown_window"),  # unknown, whatever else is asked
        ({"window": "99", "categories": ["nothing"]}, 404, "unknown_window"),
        ({"window": "10", "open": True}, 409, "window_busy"),  # open already
        ({"window": "11", "categories": ["nothing"]}, 422, "unknown_category"),
        ({"window": "11", "categories": ["tax", "tax"]}, 422, "invalid_input"),
        ({"window": "11"}, 422, "invalid_input"),  # says nothing
        ({"window": "11", "categories": []}, 400, "invalid_request"),
    ],
)
def test_what_if_refusals(
    client: TestClient[Litestar], body: dict[str, Any], status: int, error: str
) -> None:
    boss = manager(client)
    login(client, "10", "zhaolei")
    answer = post(client, "/what-if", boss, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error


async def test_a_what_if_runs_beside_the_hall_and_one_at_a_time(app: Litestar) -> None:
    """The runs of a what-if go on outside the hall's writer: while one is computing (held here
    by a policy that waits when asked from the what-if's thread, and only there), tickets are
    issued and the snapshot answers; a second what-if of the hall is refused busy, not queued."""
    async with uvicorn_serving(app) as server:
        engine = app.state.service.engine(HALL)
        loop_thread = threading.get_ident()
        inside, release = threading.Event(), threading.Event()
        real = engine.policy

        def held(state: Any, window: str, now: Any) -> Any:
            if threading.get_ident() != loop_thread:  # the what-if's runs, not the writer
                inside.set()
                assert release.wait(10)
            return real(state, window, now)

        engine.policy = held
        port = server.config.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}{BASE}") as http:
            body = {"username": "manager", "password": PASSWORD}
            boss_token = (await http.post("/managers/login", json=body)).json()["token"]
            boss = {"Authorization": f"Bearer {boss_token}"}
            body = {"username": "zhaolei", "password": PASSWORD}
            staff = await http.post("/windows/10/login", json=body)
            assert staff.status_code == 200, staff.text
            made = await http.post("/tickets", json={"category": "real-estate"}, headers=KIOSK)
            assert made.status_code == 201, made.text
            first = asyncio.create_task(
                http.post("/what-if", json={"window": "11", "open": True}, headers=boss)
            )
            assert await asyncio.to_thread(inside.wait, 10)
            try:
                issued = await http.post("/tickets", json={"category": "general"}, headers=KIOSK)
                assert issued.status_code == 201, issued.text
                snapshot = await http.get("/snapshot")
                assert snapshot.status_code == 200, snapshot.text
                second = await http.get("/what-if/suggestions", headers=boss)
                assert second.status_code == 503, second.text
                assert second.json()["error"] == "busy" and "what-if" in second.json()["message"]
                assert second.headers["Retry-After"] == "2"
                assert not first.done()
            finally:
                release.set()
            answer = await first
            assert answer.status_code == 200, answer.text
            [estate] = answer.json()["waits"]
            assert estate["waiting"] == 1 and estate["after"] <= estate["before"]
            # Done: the next one is computed.
            again = await http.get("/what-if/suggestions", headers=boss)
            assert again.status_code == 200, again.text


async def test_a_done_issue_answers_201_while_readers_time_out_busy(app: Litestar) -> None:
    """A reader that waits longer than the read timeout is told the hall is busy (503 busy, not
    "journal unavailable"); a ticket issued meanwhile is answered 201 once done (its reply is
    made in the writer, no read after it)."""
    async with uvicorn_serving(app) as server:
        engine = app.state.service.engine(HALL)
        engine.read_timeout = 0.1
        port = server.config.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}{BASE}") as http:
            async with engine._lock:  # the writer busy for longer than a read may wait
                issue = asyncio.create_task(
                    http.post("/tickets", json={"category": "general"}, headers=KIOSK)
                )
                snapshot = await http.get("/snapshot")
                assert snapshot.status_code == 503, snapshot.text
                assert snapshot.json()["error"] == "busy"
                assert "journal" not in snapshot.json()["message"]
                assert snapshot.headers["Retry-After"] == "1"
                await asyncio.sleep(0.3)
                assert not issue.done()
            issued = await issue
            assert issued.status_code == 201, issued.text
            assert issued.json()["number"]
