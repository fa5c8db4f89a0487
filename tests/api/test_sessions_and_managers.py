"""Who may log in, for how long, and what a manager may do: parallel password guessing, ending
every session of a person, managers without a window, force-close and force-logout, and a
password change that is journaled but never public."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from hall.api.ratelimits import MAX_ADDRESS_FAILURES, MAX_FAILURES
from hall.settings import DEFAULT_CONFIG
from tests.api.conftest import BASE, HALL, PASSWORD, act, issue, login, make_app
from tests.support.inloop import uvicorn_serving

FEED = f"/ws/halls/{HALL}/events"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _manager(client: TestClient[Litestar]) -> dict[str, str]:
    response = client.post(
        f"{BASE}/managers/login", json={"username": "manager", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return _auth(response.json()["token"])


class _Peak:
    """Wraps a function to count its calls and how many run at once."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner, self.now, self.peak, self.calls = inner, 0, 0, 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self.lock:
            self.calls += 1
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return self.inner(*args)
        finally:
            with self.lock:
                self.now -= 1


@contextlib.asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind a real uvicorn (the test clients cannot show a race); a client for it."""
    async with uvicorn_serving(app, log_level="warning") as server:
        base = f"http://127.0.0.1:{server.config.port}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            yield client


async def test_parallel_wrong_passwords_lock_after_five(app: Litestar) -> None:
    async with serving(app) as client:
        sessions = app.state.service.sessions
        sessions._verify = peak = _Peak(sessions._verify)
        sessions.limiter.check_wait = 60  # on a loaded machine, rather than a flaky 503
        sessions.limiter.parallel = 2  # (1 on a 2-core machine) to show both overlap and cap
        url = f"{BASE}/windows/2/login"
        guesses = [
            client.post(url, json={"username": "lina", "password": f"guess-{i}"}) for i in range(40)
        ]
        statuses = [r.status_code for r in await asyncio.gather(*guesses)]
        assert statuses.count(401) == MAX_FAILURES, statuses
        assert statuses.count(429) == 40 - MAX_FAILURES, statuses
        assert peak.peak == 2  # they did run in parallel, two at a time
        assert peak.calls == MAX_FAILURES  # and no argon2 check was spent on the others
        right = await client.post(url, json={"username": "lina", "password": PASSWORD})
        assert right.status_code == 429
        assert sessions.limiter.sizes() == (1, 1)


async def test_an_address_inventing_usernames_is_stopped_and_memory_stays_small(
    app: Litestar,
) -> None:
    async with serving(app) as client:
        sessions = app.state.service.sessions
        # Each check takes 50 ms here instead of argon2's few hundred: what is measured is how
        # many run at once and how many are let through, not argon2.
        sessions._verify = peak = _Peak(lambda stored, password: time.sleep(0.05) or False)
        sessions.limiter.check_wait = 60  # on a loaded machine, rather than a flaky 503
        sessions.limiter.parallel = 2  # (1 on a 2-core machine) to show both overlap and cap
        url = f"{BASE}/windows/2/login"
        guesses = [
            client.post(url, json={"username": f"nobody-{i}", "password": "x"}) for i in range(60)
        ]
        statuses = [r.status_code for r in await asyncio.gather(*guesses)]
        assert statuses.count(401) == MAX_ADDRESS_FAILURES, statuses
        assert statuses.count(429) == 60 - MAX_ADDRESS_FAILURES, statuses
        assert peak.peak == 2
        users, addresses = sessions.limiter.sizes()
        assert users <= MAX_ADDRESS_FAILURES and addresses == 1


def test_logout_ends_every_session_of_the_person(client: TestClient[Litestar]) -> None:
    first = login(client, "2")
    second = login(client, "2")  # logging in again at one's window: a second token
    act(client, "2", "call-next", second)
    act(client, "2", "logout", first)
    act(client, "2", "call-next", second, status=401)
    third = login(client, "2")
    act(client, "2", "call-next", third)
    act(client, "2", "call-next", second, status=401)  # and it does not come back
    # The hall-wide logout closes the window too (none held: call-next found nobody waiting).
    response = client.post(f"{BASE}/logout", headers=third)
    assert response.json() == {"sessions_ended": 1, "window_closed": "2"}
    act(client, "2", "call-next", third, status=401)


def test_a_manager_logs_in_without_opening_a_window(client: TestClient[Litestar]) -> None:
    manager = _manager(client)
    snap = client.get(f"{BASE}/snapshot").json()
    assert {w["state"] for w in snap["windows"]} == {"closed"}
    profile = client.put(
        f"{BASE}/windows/4/profile", json={"categories": ["general"]}, headers=manager
    )
    assert profile.status_code == 200, profile.text
    second = _manager(client)
    response = client.post(f"{BASE}/logout", headers=manager)
    assert response.json() == {"sessions_ended": 2, "window_closed": None}
    assert client.put(f"{BASE}/windows/4/profile", json={}, headers=second).status_code == 401
    # Staff without the manager role are refused here (they log in at a window).
    response = client.post(
        f"{BASE}/managers/login", json={"username": "lina", "password": PASSWORD}
    )
    assert response.status_code == 403


def test_force_logout_closes_the_window_and_requeues_its_ticket(
    client: TestClient[Litestar],
) -> None:
    first = issue(client)
    second = issue(client)
    staff = login(client, "2")
    other_token = login(client, "2")
    assert act(client, "2", "call-next", staff)["ticket"]["id"] == first["id"]
    manager = _manager(client)
    response = client.post(f"{BASE}/staff/zhangwei/logout", json={"note": "left"}, headers=manager)
    assert response.status_code == 200, response.text
    assert response.json() == {"username": "zhangwei", "sessions_ended": 2, "window_closed": "2"}
    act(client, "2", "call-next", staff, status=401)
    act(client, "2", "call-next", other_token, status=401)
    ticket = client.get(f"{BASE}/tickets/{first['id']}").json()
    assert (ticket["state"], ticket["ahead"]) == ("waiting", 0)  # back first in its queue
    assert client.get(f"{BASE}/tickets/{second['id']}").json()["ahead"] == 1
    window = next(w for w in client.get(f"{BASE}/snapshot").json()["windows"] if w["id"] == "2")
    assert window["state"] == "closed"


def test_force_close_of_a_window_whose_staff_left_the_config(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        sunli = login(client, "12", "sunli")
        issue(client, "household")
        act(client, "12", "call-next", sunli)
    # 孙丽 leaves: the hall file no longer lists her, and the server restarts.
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    without = re.sub(r'\[\[staff\]\]\nusername = "sunli"\n(?:[^\[\n].*\n)*', "", text)
    assert 'username = "sunli"' not in without
    config = tmp_path / "hall.toml"
    config.write_text(without, encoding="utf-8")
    with TestClient(make_app(tmp_path, config)) as client:
        manager = _manager(client)
        response = client.post(f"{BASE}/windows/12/force-close", json={}, headers=manager)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["window"]["state"] == "closed"
        assert result["ticket"]["state"] == "waiting"
        again = client.post(f"{BASE}/windows/12/force-close", json={}, headers=manager)
        assert again.status_code == 409


def test_a_password_change_is_journaled_ends_sessions_and_stays_private(tmp_path: Path) -> None:
    new = "a-new-secret-9"
    with TestClient(make_app(tmp_path)) as client:
        first, second = login(client, "2"), login(client, "2")
        response = client.post(
            f"{BASE}/password",
            json={"old_password": "wrong", "new_password": new},
            headers=first,
        )
        assert response.status_code == 401
        response = client.post(
            f"{BASE}/password", json={"old_password": PASSWORD, "new_password": new}, headers=first
        )
        assert response.status_code == 200, response.text
        fresh = _auth(response.json()["token"])
        act(client, "2", "call-next", first, status=401)
        act(client, "2", "call-next", second, status=401)
        act(client, "2", "call-next", fresh)
        with client.websocket_connect(f"{FEED}?after=0") as ws:
            version = client.get(f"{BASE}/snapshot").json()["version"]
            feed = [ws.receive_json() for _ in range(version)]
        assert not [m for m in feed if m["event"]["type"] == "password_changed"]
        assert {"type": "private"} in [m["event"] for m in feed]  # its version, and nothing else
        assert "$argon2" not in json.dumps(feed) and "zhangwei" not in json.dumps(feed)
    # After a restart the journal still holds the new password; the old one is refused.
    with TestClient(make_app(tmp_path)) as client:
        url = f"{BASE}/windows/2/login"
        old = client.post(url, json={"username": "zhangwei", "password": PASSWORD})
        assert old.status_code == 401
        assert client.post(url, json={"username": "zhangwei", "password": new}).status_code == 200
