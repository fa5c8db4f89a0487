"""The hall's device link endpoint, ``/ws/halls/{hall}/devices``, on a real uvicorn in the test's
loop with a real SQLite journal, driven by the real ``websockets`` client (and by the agents'
own ``run_agent``). Heartbeats and retries are shortened to a fraction of a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect

from devices.done import DoneStore
from devices.link import run_agent
from devices.protocol import MAX_FRAME, Job, Print, decode
from hall.domain.commands import CallNext, IssueTicket, Login, PostNotice, Recall
from hall.engine import HallEngine
from hall.settings import Settings
from tests.api.conftest import HALL, PASSWORD, make_app
from tests.support.inloop import uvicorn_serving

PRINTER = "demo-printer-token"
SPEAKER = "demo-speaker-token"
PAD = "demo-pad-1-token"
BEAT = 0.3  # heartbeat and retry, seconds
HELLO = 0.5
WAIT = 5.0


def fast(app: Litestar) -> Litestar:
    links = app.state.devices
    links.heartbeat = links.retry = BEAT
    links.hello_seconds = HELLO
    return app


@pytest.fixture
def app(tmp_path: Path) -> Litestar:
    return fast(make_app(tmp_path))


class Served:
    def __init__(self, app: Litestar, port: int) -> None:
        self.app = app
        self.http_url = f"http://127.0.0.1:{port}"
        self.url = f"ws://127.0.0.1:{port}/ws/halls/{HALL}/devices"
        self.engine: HallEngine = app.state.service.engine(HALL)
        self.http = httpx.AsyncClient(base_url=f"{self.http_url}/api/halls/{HALL}", timeout=WAIT)

    async def issue(self, n: int = 1, printer: str | None = "printer-1") -> list[str]:
        made = []
        for _ in range(n):
            done = await self.engine.execute(
                IssueTicket(category="general", printer=printer, secret="s3cret")
            )
            made.append(done.records[-1].event.ticket)  # type: ignore[union-attr]
        return made

    async def journal(self, *types: str) -> list[dict[str, Any]]:
        """The journal as a manager reads it (GET …/journal), only events of ``types``."""
        login = await self.http.post(
            "/managers/login", json={"username": "manager", "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.http.get(f"/journal?after={after}&limit=1000", headers=auth)
            assert page.status_code == 200, page.text
            if not page.json():
                break
            entries += page.json()
            after = entries[-1]["version"]
        return [e["event"] for e in entries if e["event"]["type"] in types]

    async def health(self, device: str) -> list[str]:
        events = await self.journal("device_reported")
        return [e["status"] for e in events if e["device"] == device]

    async def snapshot_status(self, device: str) -> str:
        snapshot = (await self.http.get("")).json()
        return next(d["status"] for d in snapshot["devices"] if d["id"] == device)


@contextlib.asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[Served]:
    async with uvicorn_serving(app, ws_per_message_deflate=False) as server:
        served = Served(app, server.config.port)
        try:
            yield served
        finally:
            await served.http.aclose()


async def receive(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return frame


async def job(ws: ClientConnection) -> dict[str, Any]:
    """The next job frame (heartbeats skipped, and answered)."""
    while True:
        frame = await receive(ws)
        if frame["type"] == "heartbeat":
            await ws.send('{"type":"heartbeat"}')
            continue
        assert frame["type"] in ("print", "play"), frame
        return frame


async def hello(ws: ClientConnection, token: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "hello", "token": token, "agent": "test/1"}))
    return await receive(ws)


async def ack(ws: ClientConnection, job_id: str) -> None:
    await ws.send(json.dumps({"type": "ack", "id": job_id}))


async def closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """The frames until the server closes, and its close code."""
    frames = []
    with pytest.raises(websockets.ConnectionClosed) as ended:
        while True:
            frames.append(await receive(ws))
    return frames, ended.value.rcvd.code if ended.value.rcvd else None


async def eventually(condition: Callable[[], Any], seconds: float = WAIT) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.02)


# -- an agent end to end --------------------------------------------------------------------------


async def test_a_printer_agent_gets_its_jobs_and_acks_them(app: Litestar, tmp_path: Path) -> None:
    performed: list[str] = []

    async def perform(job: Job) -> None:
        assert isinstance(job, Print)
        performed.append(job.id)

    store = DoneStore(tmp_path / "done.txt")
    async with serving(app) as hall:
        first = await hall.issue(2)  # before the agent connects
        stop = asyncio.Event()
        agent = asyncio.create_task(
            run_agent(
                hall.url,
                token=PRINTER,
                agent_name="printer-agent/1",
                perform=perform,
                done_store=store,
                stop=stop,
            )
        )
        try:
            await eventually(lambda: _true(len(performed) == 2))
            later = await hall.issue(2)  # while it is connected
            await eventually(lambda: _true(len(performed) == 4))

            async def all_journaled() -> bool:
                return len(await hall.journal("ticket_printed")) == 4

            await eventually(all_journaled)
        finally:
            stop.set()
            await asyncio.wait_for(agent, WAIT)
            store.close()
        assert performed == first + later
        printed = await hall.journal("ticket_printed")
        assert [e["ticket"] for e in printed] == first + later
        assert {e["printer"] for e in printed} == {"printer-1"}
        assert hall.engine.state.printing == {}


async def _true(value: bool) -> bool:
    return value
