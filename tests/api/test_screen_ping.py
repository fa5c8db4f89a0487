"""A quiet screen is pinged by its hub's periodic check (there is no timer per waiting screen)."""

from __future__ import annotations

import time

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from displays import hub
from tests.api.conftest import HALL, issue

HALL_SCREEN = f"/ws/halls/{HALL}/screens/hall"


def test_a_quiet_screen_gets_a_ping_and_a_busy_one_does_not(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "PING_SECONDS", 0.3)
    monkeypatch.setattr(hub, "PING_CHECK", 0.05)
    with client.websocket_connect(HALL_SCREEN) as ws:
        view = ws.receive_json(timeout=5)
        started = time.monotonic()
        ping = ws.receive_json(timeout=5)
        quiet = time.monotonic() - started
        issue(client)
        delta = ws.receive_json(timeout=5)
        after = ws.receive_json(timeout=5)  # the next ping waits a full quiet spell again
    assert view["type"] == "view"
    assert ping["type"] == "ping" and ping["version"] == view["version"]
    assert 0.2 <= quiet < 2.0, quiet
    assert delta["type"] == "delta"
    assert after["type"] == "ping" and after["version"] == delta["version"]
