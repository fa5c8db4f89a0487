"""kill -9 a real server mid-burst, start it again: every acknowledged command is there and the
numbering goes on without a gap or a repeat. Once on SQLite, once on Redis (AOF, fsync always).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hall.config import load
from hall.settings import DEFAULT_CONFIG
from tests.support.burst import (
    CATEGORIES,
    HALL,
    KIOSK,
    WINDOWS,
    Acked,
    check_tasks,
    issuer,
    login,
    stop,
    window,
)
from tests.support.redis import PrivateRedis
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

PREFIX = {c.id: c.prefix for c in load(DEFAULT_CONFIG).categories}


async def _burst(server: ServerProcess, target: int, seed: int) -> Acked:
    """Drive the server until ``target`` commands are acknowledged, then kill -9 it mid-flight."""
    acked, rng = Acked(), random.Random(seed)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        tokens = {w: await login(client, w) for w in WINDOWS}
        # Staff issue (for visitors): a kiosk may issue only one ticket every few seconds.
        staff = {"Authorization": f"Bearer {tokens['3']}"}
        tasks = [asyncio.create_task(issuer([client], acked, rng, staff)) for _ in range(6)]
        tasks += [asyncio.create_task(window(client, w, t, acked)) for w, t in tokens.items()]
        while acked.count() < target:
            check_tasks(tasks)  # a failure before the crash is a failure of the test
            await asyncio.sleep(0.001)
        server.kill9()  # requests are in flight right now
        await stop(tasks)
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
