"""kill -9 a real server mid-burst, start it again: every acknowledged command is there and the
numbering goes on without a gap or a repeat. Once on SQLite, once on Redis (AOF, fsync always).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hall.config import load
from hall.settings import DEFAULT_CONFIG
from tests.support.redis import PrivateRedis
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

HALL = "demo-county"
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}
CATEGORIES = ["general", "social", "medical", "collection"]
WINDOWS = {"1": "zhangwei", "2": "lina", "3": "manager"}
PREFIX = {c.id: c.prefix for c in load(DEFAULT_CONFIG).categories}


@dataclass
class Acked:
    issued: dict[str, str] = field(default_factory=dict)  # ticket id -> number
    called: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)

    def count(self) -> int:
        return len(self.issued) + len(self.called) + len(self.started) + len(self.finished)


async def _issuer(
    client: httpx.AsyncClient, acked: Acked, rng: random.Random, auth: dict[str, str]
) -> None:
    while True:
        body = {"category": rng.choice(CATEGORIES)}
        response = await client.post(f"/api/halls/{HALL}/tickets", json=body, headers=auth)
        assert response.status_code == 201, response.text
        ticket = response.json()
        acked.issued[ticket["id"]] = ticket["number"]


async def _window(client: httpx.AsyncClient, window: str, token: str, acked: Acked) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/halls/{HALL}/windows/{window}"
    while True:
        response = await client.post(f"{base}/call-next", headers=auth)
        assert response.status_code == 200, response.text
        ticket = response.json()["ticket"]
        if ticket is None:
            await asyncio.sleep(0.005)
            continue
        acked.called.add(ticket["id"])
        for action, done in (("start", acked.started), ("finish", acked.finished)):
            response = await client.post(f"{base}/{action}", headers=auth, json={})
            assert response.status_code == 200, response.text
            done.add(ticket["id"])


async def _burst(server: ServerProcess, target: int, seed: int) -> Acked:
    """Drive the server until ``target`` commands are acknowledged, then kill -9 it mid-flight."""
    acked, rng = Acked(), random.Random(seed)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        tokens = {}
        for window, username in WINDOWS.items():
            response = await client.post(
                f"/api/halls/{HALL}/windows/{window}/login",
                json={"username": username, "password": "hall-demo"},
            )
            assert response.status_code == 200, response.text
            tokens[window] = response.json()["token"]
        # Staff issue (for visitors): a kiosk may issue only one ticket every few seconds.
        staff = {"Authorization": f"Bearer {tokens['3']}"}
        tasks = [asyncio.create_task(_issuer(client, acked, rng, staff)) for _ in range(6)]
        tasks += [asyncio.create_task(_window(client, w, t, acked)) for w, t in tokens.items()]
        while acked.count() < target:
            for task in tasks:
                if task.done():
                    task.result()  # a failure before the crash is a failure of the test
            await asyncio.sleep(0.001)
        server.kill9()  # requests are in flight right now
        await asyncio.gather(*tasks, return_exceptions=True)
    return acked


def _check(server: ServerProcess, acked: Acked) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        states = {}
        for ticket_id, number in acked.issued.items():
            response = client.get(f"/api/halls/{HALL}/tickets/{ticket_id}")
            assert response.status_code == 200, f"acknowledged ticket {ticket_id} lost"
            assert response.json()["number"] == number
            states[ticket_id] = response.json()["state"]
        for ticket_id in acked.called:
            state = states.get(ticket_id) or _state(client, ticket_id)
            assert state in {"called", "serving", "finished"}, (ticket_id, state)
        for ticket_id in acked.started:
            assert _state(client, ticket_id) in {"serving", "finished"}
        for ticket_id in acked.finished:
            assert _state(client, ticket_id) == "finished"
        # Numbering goes on: the next number follows the last one, and every earlier one exists.
        for category in CATEGORIES:
            response = client.post(
                f"/api/halls/{HALL}/tickets", json={"category": category}, headers=KIOSK
            )
            assert response.status_code == 201, response.text
            new = response.json()
            day, seq = new["id"].split("-")[0], int(new["number"][1:])
            acked_here = [n for n in acked.issued.values() if n.startswith(PREFIX[category])]
            assert seq > max((int(n[1:]) for n in acked_here), default=0)
            for earlier in range(1, seq):
                ticket_id = f"{day}-{PREFIX[category]}{earlier:03d}"
                assert _state(client, ticket_id) is not None, f"gap at {ticket_id}"


def _state(client: httpx.Client, ticket_id: str) -> str | None:
    response = client.get(f"/api/halls/{HALL}/tickets/{ticket_id}")
    return response.json()["state"] if response.status_code == 200 else None


@pytest.fixture(params=["sqlite", "redis"])
def server_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    if request.param == "sqlite":
        yield ("--data", str(tmp_path / "data"))
        return
    (tmp_path / "redis").mkdir()
    with PrivateRedis(tmp_path / "redis") as redis_server:
        # The data directory keeps the hall's durable mark, checked again at the restart.
        yield ("--redis", redis_server.url, "--data", str(tmp_path / "data"))


@pytest.mark.parametrize("seed", [20261121])
def test_kill9_mid_burst_loses_nothing_acknowledged(
    server_args: tuple[str, ...], tmp_path: Path, seed: int
) -> None:
    target = random.Random(seed).randint(200, 400)
    print(f"seed {seed}: kill -9 after {target} acknowledged commands")
    log = tmp_path / "server.log"
    server = ServerProcess(*server_args, log=log).start()
    try:
        acked = asyncio.run(_burst(server, target, seed))
        assert acked.count() >= target
        assert acked.finished, "the burst should have finished some tickets"
        server = ServerProcess(*server_args, log=log)
        server.start()
        _check(server, acked)
    finally:
        server.stop()
