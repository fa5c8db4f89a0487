"""Two real servers on one Redis share staff sessions: a token made on either works on both at
once, a logout or forced logout on one ends it on the other at once (and a manager's live view
there within its recheck second), and Redis down is a 503 that logs nobody out. They hash an ID
number alike: one live ticket per person, whichever process the kiosk reaches.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import BASE, HALL, KIOSK, PASSWORD
from tests.support.redis import PrivateRedis
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

ID_NUMBER = "11010519491231002X"
READ = f"{BASE}/cases"  # a manager's read of the hall's state: the session check is all it needs


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_two_servers_on_one_redis_share_sessions(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    with PrivateRedis(tmp_path / "redis") as store:
        a, b = servers = [
            ServerProcess(
                "--redis", store.url, "--data", str(tmp_path / n), log=tmp_path / f"{n}.log"
            )
            for n in ("a", "b")
        ]
        try:
            with ThreadPoolExecutor(2) as starting:  # side by side: each takes seconds
                list(starting.map(ServerProcess.start, servers))
            asyncio.run(_scenario(a, b, store))
        finally:
            for server in servers:
                server.stop()


async def _scenario(a: ServerProcess, b: ServerProcess, store: PrivateRedis) -> None:
    async with httpx.AsyncClient(timeout=10) as http:

        async def login(server: ServerProcess, username: str) -> str:
            body = {"username": username, "password": PASSWORD}
            answer = await http.post(f"{server.url}{BASE}/managers/login", json=body)
            assert answer.status_code == 200, answer.text
            token: str = answer.json()["token"]
            return token

        async def read(server: ServerProcess, token: str) -> int:
            return (await http.get(f"{server.url}{READ}", headers=_auth(token))).status_code

        on_a, on_b = await login(a, "manager"), await login(b, "manager")
        assert (await read(b, on_a), await read(a, on_b)) == (200, 200)
        assert await read(a, "forged-token") == 401

        feed = f"{a.url.replace('http', 'ws')}/ws/halls/{HALL}/screens/manager?token={on_a}"
        async with connect(feed) as live:
            assert json.loads(await live.recv())["type"] == "view"
            out = await http.post(f"{b.url}{BASE}/logout", headers=_auth(on_b))
            ended = time.monotonic()
            assert out.json()["sessions_ended"] == 2  # the one made on A too
            assert (await read(a, on_a), await read(a, on_b)) == (401, 401)  # at once
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(live.recv(), 5)
            assert live.close_code == 4401
            assert time.monotonic() - ended < 2.5  # its recheck second, and some slack

        # A manager on B ends a session made on A.
        victim, deputy = await login(a, "manager"), await login(b, "deputy")
        force = f"{b.url}{BASE}/staff/manager/logout"
        forced = await http.post(force, headers=_auth(deputy), json={})
        assert forced.status_code == 200, forced.text
        assert forced.json()["sessions_ended"] == 1
        assert await read(a, victim) == 401
        assert await read(a, deputy) == 200

        # The same person at a kiosk served by A, then by B: the same hash, so B refuses.
        ticket = {"category": "general", "id_number": ID_NUMBER}
        first = await http.post(f"{a.url}{BASE}/tickets", json=ticket, headers=KIOSK)
        assert first.status_code == 201, first.text
        again = await http.post(f"{b.url}{BASE}/tickets", json=ticket, headers=KIOSK)
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "already_holding"

        store.stop(remove=False)  # the region's Redis is gone: nobody is logged out for it
        down = await http.get(f"{a.url}{READ}", headers=_auth(deputy))
        assert (down.status_code, down.json()["error"]) == (503, "unavailable")
        store.start()  # AOF: the session is still there
        assert (await read(a, deputy), await read(b, deputy)) == (200, 200)
