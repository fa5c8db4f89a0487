"""What the kiosk and phone pages stand on: ``GET …/devices/me`` (who a device token is), the feed
of one ticket (``/ws/halls/{hall}/screens/tickets/{ticket}``: its view, deltas as it is called,
served and rated, refusals, nothing personal in any frame), and the two pages' routes."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from hall.api.app import create_app
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import BASE, HALL, KIOSK, act, issue, login
from tests.api.test_screens import frame, refused, until

PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}
ID_NUMBER = "11010519491231002X"
# Fields of a ticket that are the visitor's or the hall's business, never a public feed's.
PRIVATE = ("secret", "person", "rating", "comment", "staff", "served_by", "history", "priority")


def ticket_feed(ticket: str, hall: str = HALL) -> str:
    return f"/ws/halls/{hall}/screens/tickets/{ticket}"


# -- devices/me --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (
            "demo-kiosk-token",
            {"id": "kiosk-1", "kind": "kiosk", "window": None, "printer": "printer-1"},
        ),
        ("demo-pad-1-token", {"id": "pad-1", "kind": "pad", "window": "1", "printer": None}),
        (
            "demo-printer-token",
            {"id": "printer-1", "kind": "printer", "window": None, "printer": None},
        ),
    ],
)
def test_a_device_learns_who_it_is(
    client: TestClient[Litestar], token: str, expected: dict[str, Any]
) -> None:
    response = client.get(f"{BASE}/devices/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == expected  # no token, no hash


def test_devices_me_refuses_whoever_is_not_a_device(client: TestClient[Litestar]) -> None:
    url = f"{BASE}/devices/me"
    assert client.get(url).json()["error"] == "unauthorized"
    wrong = client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    staff = client.get(url, headers=login(client, "1"))
    assert staff.status_code == 403 and staff.json()["error"] == "forbidden"
    elsewhere = client.get("/api/halls/nowhere/devices/me", headers=KIOSK)
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "unknown_hall"


# -- the ticket feed ---------------------------------------------------------------------------


def _no_secrets(raw: str, ticket: dict[str, Any]) -> None:
    assert ticket["secret"] not in raw
    for name in PRIVATE:
        assert f'"{name}"' not in raw, name


def test_a_ticket_feed_follows_the_ticket_until_it_is_rated(
    client: TestClient[Litestar],
) -> None:
    first = issue(client)
    mine = issue(client, id_number=ID_NUMBER)  # green lane by age: ahead of the first one
    behind = issue(client)
    raws: list[str] = []
    with client.websocket_connect(ticket_feed(behind["id"])) as ws:
        opening = ws.receive_text(timeout=5)
        raws.append(opening)
        view = frame_of(opening)["view"]
        assert view["ahead"] == 2 and view["state"] == "waiting"
        staff = login(client, "1")
        act(client, "1", "call-next", staff)  # mine: the green lane goes first
        frames = until_raw(ws, raws, lambda m: m["changes"].get("ahead") == 1)
        assert all("window" not in m["changes"] for m in frames)

    with client.websocket_connect(ticket_feed(mine["id"])) as ws:
        raw = ws.receive_text(timeout=5)
        raws.append(raw)
        view = frame_of(raw)["view"]
        assert set(view) == {
            "hall", "id", "number", "category", "category_name", "category_name_en", "state",
            "ahead", "estimated_wait_minutes", "window", "called_at", "recalls", "served_at",
            "rated",
        }  # fmt: skip
        assert (view["id"], view["number"], view["state"]) == (mine["id"], "A002", "called")
        assert (view["category_name"], view["category_name_en"]) == ("综合事务", "General Affairs")
        assert view["window"] == {"id": "1", "name": "1号窗口", "name_en": "Window 1"}
        assert view["hall"] == {
            "name": "示范县政务服务中心",
            "name_en": "Demo County Government Service Center",
        }
        assert view["called_at"] and view["recalls"] == 0 and not view["rated"]

        act(client, "1", "recall", staff)
        recalled = until_raw(ws, raws, lambda m: "recalls" in m["changes"])[-1]["changes"]
        assert recalled == {"recalls": 1}
        act(client, "1", "start", staff)
        until_raw(ws, raws, lambda m: m["changes"].get("state") == "serving")
        act(client, "1", "finish", staff, {"outcome": "done"})
        finished = until_raw(ws, raws, lambda m: m["changes"].get("state") == "finished")
        assert finished[-1]["changes"]["served_at"] == view["window"]
        assert "window" in finished[-1]["changes"]  # it left the window

        rated = client.post(
            f"{BASE}/tickets/{mine['id']}/visitor-rating",
            json={"secret": mine["secret"], "level": 1, "reasons": ["slow"], "comment": "等太久"},
        )
        assert rated.status_code == 200, rated.text
        done = until_raw(ws, raws, lambda m: "rated" in m["changes"])[-1]
        assert done["changes"] == {"rated": True}  # not the level, not the reasons
    for raw in raws:
        _no_secrets(raw, mine)
        assert "等太久" not in raw and "slow" not in raw and ID_NUMBER not in raw
    assert first["id"] not in "".join(raws)


def frame_of(raw: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    return message


def until_raw(ws: Any, raws: list[str], done: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Deltas up to the first that ``done`` accepts, keeping the raw frames too."""
    found = []
    for _ in range(limit):
        raw = ws.receive_text(timeout=5)
        raws.append(raw)
        message = frame_of(raw)
        if message["type"] == "ping":
            continue
        assert message["type"] == "delta", message
        found.append(message)
        if done(message):
            return found
    raise AssertionError(f"no such delta in {limit}: {found[-3:]}")


def test_a_cancelled_ticket_says_so(client: TestClient[Litestar]) -> None:
    ticket = issue(client)
    with client.websocket_connect(ticket_feed(ticket["id"])) as ws:
        assert frame(ws)["view"]["state"] == "waiting"
        wrong = client.post(f"{BASE}/tickets/{ticket['id']}/visitor-cancel", json={"secret": "no"})
        assert wrong.status_code == 403 and wrong.json()["error"] == "wrong_secret"
        cancelled = client.post(
            f"{BASE}/tickets/{ticket['id']}/visitor-cancel", json={"secret": ticket["secret"]}
        )
        assert cancelled.status_code == 200
        changes = until(ws, lambda m: m["type"] == "delta")[-1]["changes"]
        assert changes == {"state": "cancelled"}


@pytest.mark.parametrize(
    ("path", "error", "code"),
    [
        (ticket_feed("20261130-A999"), "unknown_ticket", 4404),
        (ticket_feed("x" * 300), "unknown_ticket", 4404),
        (ticket_feed("20261130-A001", hall="nowhere"), "unknown_hall", 4404),
    ],
)
def test_a_ticket_feed_refuses_what_is_not_a_ticket_of_today(
    app: Litestar, client: TestClient[Litestar], path: str, error: str, code: int
) -> None:
    message, closed = refused(client, path)
    assert (message["error"], closed) == (error, code)
    assert len(app.state.screens.hubs) == 0  # refused before any hub was made


def test_a_ticket_feed_refuses_a_bad_after(client: TestClient[Litestar]) -> None:
    ticket = issue(client)
    message, closed = refused(client, f"{ticket_feed(ticket['id'])}?after=-1")
    assert (message["error"], closed) == ("invalid_after", 4400)


def test_phones_follow_tickets_where_screens_need_device_tokens(tmp_path: Path) -> None:
    """A hall that requires device tokens for its screens: a visitor's phone has none and needs
    none for its ticket; the kiosk's token opens the hall screen's feed (its waiting counts)."""
    text = DEFAULT_CONFIG.read_text().replace("require_device = false", "require_device = true")
    path = tmp_path / "guarded.toml"
    path.write_text(text)
    app = create_app(Settings(configs=(path,), data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        ticket = issue(client)
        with client.websocket_connect(ticket_feed(ticket["id"])) as ws:
            assert frame(ws)["view"]["number"] == ticket["number"]
        with client.websocket_connect(
            f"/ws/halls/{HALL}/screens/hall?token=demo-kiosk-token"
        ) as ws:
            queues = frame(ws)["view"]["queues"]
            assert next(q for q in queues if q["id"] == "general")["waiting"] == 1
        pad = f"/ws/halls/{HALL}/screens/hall?token=demo-pad-1-token"
        assert refused(client, pad)[1] == 4403


# -- the pages ---------------------------------------------------------------------------------


def settings_of(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="settings">(.*?)</script>', page)
    assert found is not None
    settings: dict[str, Any] = json.loads(found.group(1))
    return settings


def test_the_kiosk_page_carries_the_halls_services_and_no_token(
    client: TestClient[Litestar],
) -> None:
    page = client.get(f"/kiosk/{HALL}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "demo-kiosk-token" not in page.text
    settings = settings_of(page.text)
    enterprise = next(z for z in settings["zones"] if z["id"] == "enterprise")
    assert enterprise["categories"][0] == {
        "id": "business-start", "prefix": "B", "name": "企业开办", "name_en": "Business Start-up"
    }  # fmt: skip
    assert settings["priorities"]["green"][1].startswith("Green lane")
    assert settings["idle_seconds"] == 15
    assert settings_of(client.get(f"/kiosk/{HALL}?idle=1").text)["idle_seconds"] == 5  # bounded
    assert settings_of(client.get(f"/kiosk/{HALL}?idle=soon").text)["idle_seconds"] == 15
    missing = client.get("/kiosk/nowhere")
    assert missing.status_code == 404 and "nowhere" in missing.text
    assert f'href="/kiosk/{HALL}"' in client.get("/").text


def test_the_phone_page_lists_the_halls_rating_reasons(client: TestClient[Litestar]) -> None:
    ticket = issue(client)
    page = client.get(f"/phone/{HALL}/{ticket['id']}")
    assert page.status_code == 200
    for text in ("非常满意", "Very dissatisfied", "办理时间太长", 'value="runaround"'):
        assert text in page.text
    assert ticket["secret"] not in page.text
    missing = client.get(f"/phone/{HALL}/20261130-Z999")
    assert missing.status_code == 404 and "今天没有号票" in missing.text


def test_a_hall_file_with_its_own_rating_reasons_shows_them(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text()
    text += '\n[rating]\nreasons = [{code = "rude", name = "态度差", name_en = "Rude"}]\n'
    path = tmp_path / "reasons.toml"
    path.write_text(text)
    app = create_app(Settings(configs=(path,), data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        ticket = issue(client)
        page = client.get(f"/phone/{HALL}/{ticket['id']}").text
        assert 'value="rude"' in page and "态度差" in page and "办理时间太长" not in page


def test_devices_me_never_answers_the_token_hash(client: TestClient[Litestar]) -> None:
    digest = hashlib.sha256(b"demo-kiosk-token").hexdigest()
    assert digest not in client.get(f"{BASE}/devices/me", headers=KIOSK).text
