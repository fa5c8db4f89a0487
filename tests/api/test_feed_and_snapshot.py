"""The public read side: snapshot and live event feed, with resume, and no personal data."""

from __future__ import annotations

import json
from pathlib import Path

from litestar import Litestar
from litestar.testing import TestClient

from hall.api.app import create_app
from hall.config import load
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import BASE, HALL, act, issue, login

FEED = f"/ws/halls/{HALL}/events"


def _people() -> list[str]:
    config = load(DEFAULT_CONFIG)
    return [s.username for s in config.staff] + [s.name for s in config.staff]


def test_snapshot_shows_queues_and_windows(client: TestClient[Litestar]) -> None:
    issue(client, "general")
    issue(client, "general")
    staff = login(client, "2")
    act(client, "2", "call-next", staff)
    snap = client.get(f"{BASE}/snapshot").json()
    general = next(q for q in snap["queues"] if q["category"] == "general")
    assert general["waiting"] == 1
    assert general["next_numbers"] == ["A002"]
    window = next(w for w in snap["windows"] if w["id"] == "2")
    assert (window["state"], window["ticket"]) == ("calling", "A001")
    assert snap["version"] >= 4
    text = json.dumps(snap, ensure_ascii=False)
    for person in _people():
        assert person not in text


def test_feed_sends_snapshot_then_events_without_names(client: TestClient[Litestar]) -> None:
    with client.websocket_connect(FEED) as ws:
        first = ws.receive_json()
        assert first["type"] == "snapshot"
        assert first["snapshot"]["hall"] == HALL
        issue(client, "general")
        login(client, "2")
        # A fresh hall: its first command also starts the business day.
        received = [ws.receive_json() for _ in range(3)]
    assert [m["type"] for m in received] == ["event"] * 3
    assert [m["event"]["type"] for m in received] == [
        "day_started",
        "ticket_issued",
        "window_opened",
    ]
    assert [m["version"] for m in received] == [first["version"] + i for i in (1, 2, 3)]
    assert received[2]["event"]["window"] == "2"
    for person in _people():
        assert person not in json.dumps(received, ensure_ascii=False)


def test_feed_resumes_after_a_version_without_gaps(client: TestClient[Litestar]) -> None:
    for _ in range(3):
        issue(client, "general")
    current = client.get(f"{BASE}/snapshot").json()["version"]
    with client.websocket_connect(f"{FEED}?after=1") as ws:
        versions = [ws.receive_json()["version"] for _ in range(current - 1)]
        assert versions == list(range(2, current + 1))
        issue(client, "tax")
        live = ws.receive_json()
    assert live["version"] == current + 1
    assert live["event"]["type"] == "ticket_issued"
    assert live["event"]["number"] == "E001"


def test_feed_refuses_a_version_from_the_future(client: TestClient[Litestar]) -> None:
    with client.websocket_connect(f"{FEED}?after=999") as ws:
        message = ws.receive_json()
    assert message["type"] == "error"
    assert message["error"] == "invalid_after"


def test_openapi_is_served_without_any_cdn(client: TestClient[Litestar]) -> None:
    for path in ("/schema", "/schema/openapi.json"):
        response = client.get(path)
        assert response.status_code == 200
        spec = response.json()
        assert "/api/halls/{hall}/windows/{window}/call-next" in spec["paths"]
        assert "http://" not in response.text.replace("http://127.0.0.1", "")
        assert "https://" not in response.text


def test_a_feed_that_lags_catches_up_from_the_journal(tmp_path: Path) -> None:
    # One event per screen queue: every batch of two (a new day and its first ticket) overflows.
    app = create_app(Settings(configs=(DEFAULT_CONFIG,), data_dir=tmp_path, feed_queue=1))
    with TestClient(app) as client, client.websocket_connect(FEED) as ws:
        start = ws.receive_json()["version"]
        for _ in range(5):
            issue(client, "general")
        received = [ws.receive_json() for _ in range(6)]
    assert [m["version"] for m in received] == list(range(start + 1, start + 7))
    assert [m["event"]["type"] for m in received] == ["day_started"] + ["ticket_issued"] * 5
