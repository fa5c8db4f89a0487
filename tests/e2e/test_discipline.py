"""A real server finds a discipline breach by itself (its watcher's clock ticks, nobody asks),
records it in the journal once, and a restart does not record it again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from hall.settings import DEFAULT_CONFIG
from tests.support.server import ServerProcess

HALL = "demo-county"
BASE = f"/api/halls/{HALL}"


def idle_breaches(url: str, token: str) -> list[dict[str, Any]]:
    entries = httpx.get(
        f"{url}{BASE}/journal",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    return [
        {**e["event"], "version": e["version"]}
        for e in entries
        if e["event"]["type"] == "breach_recorded" and e["event"]["rule"] == "idle_with_queue"
    ]


def wait_for_breaches(url: str, token: str, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (found := idle_breaches(url, token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_an_idle_window_with_a_queue_is_recorded_once_across_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "hall.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(f"{text}\n[discipline]\nidle_seconds = 1\n", encoding="utf-8")
    args = ("--config", str(config), "--data", str(tmp_path / "data"), "--discipline-tick", "0.2")
    with ServerProcess(*args, log=tmp_path / "first.log") as server:
        url = server.url
        manager = httpx.post(
            f"{url}{BASE}/managers/login", json={"username": "manager", "password": "hall-demo"}
        ).json()["token"]
        staff = httpx.post(
            f"{url}{BASE}/windows/1/login", json={"username": "zhangwei", "password": "hall-demo"}
        ).json()["token"]
        assert idle_breaches(url, manager) == []
        issued = httpx.post(
            f"{url}{BASE}/tickets/",
            json={"category": "general"},
            headers={"Authorization": f"Bearer {staff}"},
        )
        assert issued.status_code == 201, issued.text
        found = wait_for_breaches(url, manager, timeout=10)
        assert len(found) == 1, found
        breach = found[0]
        assert breach["window"] == "1" and breach["staff"] == "zhangwei"
        assert breach["limit"] == 1 and breach["measured"] > 1
        assert breach["breach"] == f"idle_with_queue:1:{breach['evidence'][0]}"
    # The window is still idle with the ticket waiting: the rebuilt watcher knows it is recorded.
    with ServerProcess(*args, log=tmp_path / "again.log") as server:
        time.sleep(1.5)  # several ticks
        manager = httpx.post(
            f"{server.url}{BASE}/managers/login",
            json={"username": "manager", "password": "hall-demo"},
        ).json()["token"]
        assert idle_breaches(server.url, manager) == found
