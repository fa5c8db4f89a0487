"""Screen feeds against a real ``hall serve``: a screen that stops reading never holds up the
hall and is resynced with the view; a stopping server tells its screens with 1001."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from hall.config import load
from hall.settings import DEFAULT_CONFIG
from tests.api.conftest import BASE, HALL, PASSWORD
from tests.support.server import ServerProcess

SCREEN = f"/ws/halls/{HALL}/screens/hall"
EVENTS = 1000
PARALLEL = 10
CATEGORIES = [c.id for c in load(DEFAULT_CONFIG).categories]


def _ws(server: ServerProcess, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def _stuck_socket(port: int) -> socket.socket:
    """A connection whose receive buffer is as small as the kernel allows, so a client that
    stops reading makes the server's writes wait within a few frames (as a hung screen would)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", port))
    return sock


async def _slow_screen(
    server: ServerProcess, token: str
) -> tuple[list[dict[str, Any]], float, int]:
    sock = _stuck_socket(server.port)
    # max_queue=1: the client stops reading its socket at once when nobody reads its frames.
    async with connect(_ws(server, SCREEN), sock=sock, max_queue=1, compression=None) as stuck:
        first = json.loads(await stuck.recv())
        worst = 0.0
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            headers = {"Authorization": f"Bearer {token}"}

            async def issue(category: str) -> float:
                started = time.monotonic()
                response = await http.post(
                    f"{BASE}/tickets", json={"category": category}, headers=headers
                )
                assert response.status_code == 201, response.text
                return time.monotonic() - started

            # Staff issue without the kiosk's rate limit; ten at a time (a busy hall), in every
            # category, so that each batch's delta changes many queues.
            for start in range(0, EVENTS, PARALLEL):
                took = await asyncio.gather(
                    *(issue(CATEGORIES[(start + i) % len(CATEGORIES)]) for i in range(PARALLEL))
                )
                worst = max(worst, *took)
            current: int = (await http.get(f"{BASE}/snapshot")).json()["version"]
        frames = [first]
        while frames[-1]["version"] != current:
            frames.append(json.loads(await asyncio.wait_for(stuck.recv(), 10)))
    return frames, worst, current


def _issued(server: ServerProcess) -> list[int]:
    """The versions of the tickets issued, from the manager's journal (the watcher may have
    journaled a breach among them: a late login, depending on the time of day)."""
    manager = httpx.post(
        f"{server.url}{BASE}/managers/login",
        json={"username": "manager", "password": PASSWORD},
        timeout=10,
    ).json()["token"]
    versions: list[int] = []
    after = 0
    while page := httpx.get(
        f"{server.url}{BASE}/journal",
        params={"after": after, "limit": 1000},
        headers={"Authorization": f"Bearer {manager}"},
        timeout=10,
    ).json():
        versions += [e["version"] for e in page if e["event"]["type"] == "ticket_issued"]
        after = page[-1]["version"]
    return versions


def test_a_screen_that_stops_reading_never_holds_up_the_hall_and_gets_the_view(
    tmp_path: Path,
) -> None:
    with ServerProcess("--data", str(tmp_path), log=tmp_path / "server.log") as server:
        login = httpx.post(
            f"{server.url}{BASE}/windows/1/login",
            json={"username": "zhangwei", "password": PASSWORD},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        frames, worst, current = asyncio.run(_slow_screen(server, login.json()["token"]))
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        issued = _issued(server)
    resyncs = f'hall_screen_resyncs_total{{hall="{HALL}",kind="hall"}} '
    assert float(metrics.split(resyncs)[1].split()[0]) >= 1
    assert worst < 1.0, f"a command took {worst:.3f} s while a screen was stuck"
    assert frames[0]["type"] == "view"
    kinds = [m["type"] for m in frames]
    # What the socket held when it stopped, in order; then, having lagged, the view again.
    resync = kinds.index("view", 1)
    assert 0 < resync < EVENTS, kinds
    version = frames[0]["version"]
    for message in frames[1:resync]:
        assert message["type"] == "delta" and message["from"] == version
        version = message["version"]
    assert frames[resync]["version"] > version
    waiting = sum(q["waiting"] for q in frames[resync]["view"]["queues"])
    assert waiting == len([v for v in issued if v <= frames[resync]["version"]])  # all to then
    assert frames[-1]["version"] == current


def test_a_stopping_server_closes_its_screens_with_1001(tmp_path: Path) -> None:
    async def watch(server: ServerProcess) -> Any:
        async with connect(_ws(server, SCREEN)) as ws:
            assert json.loads(await ws.recv())["type"] == "view"
            assert server.process is not None
            server.process.terminate()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd

    with ServerProcess("--data", str(tmp_path), log=tmp_path / "server.log") as server:
        received = asyncio.run(watch(server))
    assert received is not None and received.code == 1001, received
