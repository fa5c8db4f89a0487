"""The desk feed (``/ws/halls/{hall}/screens/desks/{window}``, what the window caller follows) and
what device pages ask: a view and deltas, its refusals with their close codes, the tokens that
open it (and a window's pad its window's screen) where the hall requires devices, and
``GET …/devices/me``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from displays.desk import DeskScreen
from hall.api.app import create_app
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import BASE, HALL, KIOSK, act, issue, login
from tests.api.test_screens import frame, refused, until, window_screen

CALLER_1 = "demo-caller-1-token"  # caller-1 (window 1) in config/default.toml
CALLER_5 = "demo-caller-5-token"
PAD_1 = "demo-pad-1-token"
SCREEN = "demo-screen-token"  # screen-1, for no window


def desk(window: str, query: str = "") -> str:
    return f"/ws/halls/{HALL}/screens/desks/{window}{query}"


def test_a_desk_gets_its_view_then_a_delta_for_each_batch(client: TestClient[Litestar]) -> None:
    first, second = issue(client), issue(client)
    staff = login(client, "1")
    with client.websocket_connect(desk("1")) as ws:
        view = frame(ws)
        assert view["type"] == "view"
        desk_view = view["view"]
        assert (desk_view["window"]["id"], desk_view["state"]) == ("1", "open")
        assert [n["number"] for n in desk_view["queue"]] == [first["number"], second["number"]]
        assert desk_view["waiting"] == 2 and desk_view["held"] is None
        assert desk_view["staff"] == {"name": "张*", "staff_no": "1002"}
        act(client, "1", "call-next", staff)
        frames = until(ws, lambda m: "held" in m["changes"])
    changes = frames[-1]["changes"]
    assert changes["state"] == "calling" and changes["held"]["number"] == first["number"]
    assert [n["number"] for n in changes["queue"]] == [second["number"]]
    assert changes["waiting"] == 1
    assert "zhangwei" not in str(frames)  # the username is nobody's business on a feed


@pytest.fixture
def weighted_hall(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """The demo hall under the weighted policy, whose claims grow at rates that differ by
    category (so time alone reorders a queue)."""
    text = DEFAULT_CONFIG.read_text().replace('policy = "reserve"', 'policy = "weighted"')
    assert 'policy = "weighted"' in text
    path = tmp_path / "weighted.toml"
    path.write_text(text)
    app = create_app(Settings(configs=(path,), data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        yield client


def test_a_desk_follows_the_call_order_as_time_alone_changes_it(
    weighted_hall: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the weighted policy a quick service's claim grows faster (证照出件: 10 minutes x 3
    against general affairs' 20 x 8): its ticket passes an earlier one with no event at all, and
    the desk is told within its refresh period, in a delta from the current version to itself."""
    client = weighted_hall
    monkeypatch.setattr(DeskScreen, "refresh_seconds", 0.3)
    login(client, "1")
    with client.websocket_connect(desk("1")) as ws:
        frame(ws)
        general = issue(client, "general")
        time.sleep(0.2)
        quick = issue(client, "collection")

        def order(message: dict[str, Any]) -> list[str]:
            return [n["number"] for n in message["changes"].get("queue", [])]

        issued = until(ws, lambda m: quick["number"] in order(m))[-1]
        assert order(issued) == [general["number"], quick["number"]]  # as of its issue
        passed = until(ws, lambda m: order(m)[:1] == [quick["number"]])[-1]
    assert passed["from"] == passed["version"] == issued["version"]
    assert set(passed["changes"]) == {"queue"}


@pytest.mark.parametrize(
    ("path", "error", "code"),
    [
        (desk("99"), "unknown_window", 4404),
        ("/ws/halls/nowhere/screens/desks/1", "unknown_hall", 4404),
        (desk("1", "?after=x"), "invalid_after", 4400),
        (desk("1", "?after=999999"), "invalid_after", 4400),
    ],
)
def test_a_desk_feed_refuses_what_it_cannot_serve(
    client: TestClient[Litestar], path: str, error: str, code: int
) -> None:
    message, closed = refused(client, path)
    assert (message["error"], closed) == (error, code)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """The demo hall requiring device tokens on its screens (and desks)."""
    text = DEFAULT_CONFIG.read_text().replace("require_device = false", "require_device = true")
    path = tmp_path / "guarded.toml"
    path.write_text(text)
    app = create_app(Settings(configs=(path,), data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "error", "code"),
    [
        (desk("1"), "unauthorized", 4401),
        (desk("1", "?token=not-a-token"), "unauthorized", 4401),
        (desk("1", "?token=demo-kiosk-token"), "forbidden", 4403),
        (desk("1", f"?token={CALLER_5}"), "forbidden", 4403),  # window 5's caller
        (desk("1", f"?token={PAD_1}"), "forbidden", 4403),  # a pad has no desk
        (window_screen("2") + f"?token={PAD_1}", "forbidden", 4403),  # not its window
        (window_screen("1") + f"?token={CALLER_1}", "forbidden", 4403),  # a caller has a desk
        (f"/ws/halls/{HALL}/screens/hall?token={PAD_1}", "forbidden", 4403),
    ],
)
def test_where_devices_are_required_a_desk_needs_its_callers_token(
    guarded: TestClient[Litestar], path: str, error: str, code: int
) -> None:
    message, closed = refused(guarded, path)
    assert (message["error"], closed) == (error, code)


@pytest.mark.parametrize(
    "path",
    [
        desk("1", f"?token={CALLER_1}"),
        desk("5", f"?token={CALLER_5}"),
        desk("3", f"?token={SCREEN}"),  # a screen of no window shows any
        window_screen("1") + f"?token={PAD_1}",  # the pad follows its window's screen
    ],
)
def test_the_right_device_opens_its_feed(guarded: TestClient[Litestar], path: str) -> None:
    with guarded.websocket_connect(path) as ws:
        assert frame(ws)["type"] == "view"


def test_a_device_learns_what_it_is(client: TestClient[Litestar]) -> None:
    me = client.get(f"{BASE}/devices/me", headers={"Authorization": f"Bearer {PAD_1}"})
    assert me.status_code == 200, me.text
    assert me.json() == {"id": "pad-1", "kind": "pad", "window": "1", "printer": None}
    kiosk = client.get(f"{BASE}/devices/me", headers=KIOSK).json()
    assert (kiosk["kind"], kiosk["printer"]) == ("kiosk", "printer-1")
    assert client.get(f"{BASE}/devices/me").status_code == 401
    wrong = {"Authorization": "Bearer " + hashlib.sha256(b"x").hexdigest()}
    assert client.get(f"{BASE}/devices/me", headers=wrong).status_code == 401
    staff = client.get(f"{BASE}/devices/me", headers=login(client, "2", "lina"))
    assert (staff.status_code, staff.json()["error"]) == (403, "forbidden")
