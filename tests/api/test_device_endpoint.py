"""The hall's device link endpoint, ``/ws/halls/{hall}/devices``, on a real uvicorn in the test's
loop with a real SQLite journal, driven by the real ``websockets`` client (and by the agents'
own ``run_agent``). Retries, and heartbeats where silence is tested, take a fraction of a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sqlite3
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
from devices.endpoint import HELLOS_PER_MINUTE, MAX_PENDING_PER_ADDRESS
from devices.link import run_agent
from devices.protocol import MAX_FRAME, Job, Print, decode
from hall.api.app import create_app
from hall.domain.commands import CallNext, IssueTicket, Login, PostNotice, Recall
from hall.engine import HallEngine
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import HALL, PASSWORD, make_app
from tests.support.inloop import uvicorn_serving

PRINTER = "demo-printer-token"
SPEAKER = "demo-speaker-token"
PAD = "demo-pad-1-token"
# A job not acked is sent again after RETRY seconds; a device silent for three HEARTBEATs is
# offline. Heartbeats are short only where the silence is what is tested: on two busy cores the
# test's client and the server share one loop.
RETRY = 0.3
HEARTBEAT = 2.0
BEAT = 0.3
HELLO = 0.5
WAIT = 5.0


def fast(app: Litestar, heartbeat: float = HEARTBEAT) -> Litestar:
    links = app.state.devices
    links.heartbeat, links.retry = heartbeat, RETRY
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
        self.manager: dict[str, str] | None = None

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
        if self.manager is None:  # one login: argon2 is slow on purpose
            login = await self.http.post(
                "/managers/login", json={"username": "manager", "password": PASSWORD}
            )
            self.manager = {"Authorization": f"Bearer {login.json()['token']}"}
        auth = self.manager
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
        snapshot = (await self.http.get("/snapshot")).json()
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


async def news(ws: ClientConnection) -> dict[str, Any]:
    """The next frame that is not a heartbeat (those are answered)."""
    while True:
        frame = await receive(ws)
        if frame["type"] != "heartbeat":
            return frame
        await ws.send('{"type":"heartbeat"}')


async def job(ws: ClientConnection) -> dict[str, Any]:
    frame = await news(ws)
    assert frame["type"] in ("print", "play"), frame
    return frame


async def answer_heartbeats(ws: ClientConnection) -> None:
    """Keep a connected device alive (as an agent does) until cancelled."""
    async for frame in ws:
        if json.loads(frame)["type"] == "heartbeat":
            await ws.send('{"type":"heartbeat"}')


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
        while not await condition():  # noqa: ASYNC110 - journal and snapshot: polled over HTTP
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


# -- refusals -------------------------------------------------------------------------------------


async def test_a_wrong_token_is_refused_with_4401(app: Litestar) -> None:
    async with serving(app) as hall, connect(hall.url) as ws:
        welcome = await hello(ws, "not-a-device-token")
        assert welcome["type"] == "error" and welcome["error"] == "bad_token", welcome
        frames, code = await closed(ws)
        assert frames == [] and code == 4401


@pytest.mark.parametrize(
    ("first", "error", "code"),
    [
        ("not json", "malformed", 4400),
        ('{"type":"hello","token":"x"}', "malformed", 4400),  # a field missing
        ('{"type":"hello","token":"x","agent":"a","extra":1}', "malformed", 4400),
        ('{"type":"heartbeat"}', "protocol", 1008),  # well formed, but not a hello
        ('{"type":"ack","id":"20261130-A001"}', "protocol", 1008),
    ],
)
async def test_a_wrong_first_message_is_refused(
    app: Litestar, first: str, error: str, code: int
) -> None:
    async with serving(app) as hall, connect(hall.url) as ws:
        await ws.send(first)
        frames, closed_with = await closed(ws)
        assert [f["error"] for f in frames] == [error] and closed_with == code, frames


async def test_an_unknown_hall_is_refused_with_4404(app: Litestar) -> None:
    async with serving(app) as hall:
        async with connect(hall.url.replace(HALL, "nowhere")) as ws:
            frames, code = await closed(ws)
        assert [f["error"] for f in frames] == ["unknown_hall"] and code == 4404


async def test_a_client_that_never_says_hello_is_dropped(app: Litestar) -> None:
    async with serving(app) as hall, connect(hall.url) as ws:
        started = time.monotonic()
        frames, code = await closed(ws)
        took = time.monotonic() - started
        assert [f["error"] for f in frames] == ["timeout"] and code == 4408
        assert HELLO / 2 <= took < HELLO + 1.0, took  # from the accept, a moment before
        assert app.state.connections.total == 0


async def test_malformed_and_huge_frames_close_the_link_and_it_goes_offline(app: Litestar) -> None:
    async with serving(app) as hall:
        async with connect(hall.url) as ws:
            assert (await hello(ws, PAD))["type"] == "welcome"
            await ws.send('{"type":"state","status":"on fire"}')
            frames, code = await closed(ws)
            assert [f["error"] for f in frames] == ["malformed"] and code == 4400
            assert "on fire" not in frames[0]["message"] and "$.status" in frames[0]["message"]
        async with connect(hall.url, max_size=None) as ws:
            assert (await hello(ws, PAD))["type"] == "welcome"
            await ws.send(json.dumps({"type": "heartbeat", "pad": "x" * 5000}))
            _, code = await closed(ws)
            assert code == 1009  # uvicorn's limit, before the app reads it
        async with connect(hall.url) as ws:
            assert (await hello(ws, PAD))["type"] == "welcome"
            await ws.send(b"\xff\xfe binary junk")
            frames, code = await closed(ws)
            assert [f["error"] for f in frames] == ["malformed"] and code == 4400

        async def gone() -> bool:
            return await hall.snapshot_status("pad-1") == "offline"

        await eventually(gone)  # once a heartbeat at most: not three pairs, but the truth
        assert await hall.health("pad-1") == ["online", "offline"]
        assert app.state.connections.total == 0


async def test_a_device_that_floods_is_closed(app: Litestar) -> None:
    async with serving(app) as hall, connect(hall.url) as ws:
        assert (await hello(ws, PAD))["type"] == "welcome"
        for _ in range(50):
            await ws.send('{"type":"heartbeat"}')
        frames, code = await closed(ws)
        assert [f.get("error") for f in frames if f["type"] == "error"] == ["too_many_frames"]
        assert code == 1008


async def test_connections_without_a_hello_take_no_shared_place(tmp_path: Path) -> None:
    """Clients that open and never say hello wait among the pending hellos (the oldest goes
    beyond MAX_PENDING_PER_ADDRESS), not among the places screens, feeds and devices share: a
    real printer from the same address still gets in. Verified devices meet the shared caps."""
    cache = os.environ.get("HALL_VOICE_CACHE")
    settings = Settings(
        data_dir=tmp_path,
        voice_cache=Path(cache) if cache else None,
        max_screens=50,
        max_screens_per_address=4,
    )
    app = fast(create_app(settings))
    app.state.devices.hello_seconds = 2.0  # the idle ones must outlive the printer's hello
    async with serving(app) as hall:
        idle = [await connect(hall.url) for _ in range(MAX_PENDING_PER_ADDRESS + 4)]
        try:
            for ws in idle[:4]:  # pushed out, oldest first, by the four beyond the budget
                frames, code = await closed(ws)
                assert [f["error"] for f in frames] == ["too_many_connections"] and code == 4429
                assert "wait for their hello" in frames[0]["message"]
            assert app.state.connections.total == 0  # none of them counts among the shared caps
            async with connect(hall.url) as printer:
                assert (await hello(printer, PRINTER))["type"] == "welcome"
                assert app.state.connections.total == 1
                devices = [await connect(hall.url) for _ in range(4)]
                for ws, token in zip(devices, (SPEAKER, PAD, "demo-kiosk-token"), strict=False):
                    assert (await hello(ws, token))["type"] == "welcome"
                refused = await hello(devices[3], "demo-caller-1-token")  # the fifth device
                assert refused["error"] == "too_many_connections", refused
                assert (await closed(devices[3]))[1] == 4429
                for ws in devices:
                    await ws.close()
            # The printer pushed out the next, and three of the four devices (the place the
            # printer left as it said hello took the first), oldest first; the rest said
            # nothing: each is dropped after hello_seconds.
            codes = [(await closed(ws))[1] for ws in idle[4:]]
            assert codes == [4429] * 4 + [4408] * (len(idle) - 8)
            assert await hall.health("caller-1") == []  # refused: no news of it
        finally:
            for ws in idle:
                await ws.close()
        await eventually(lambda: _true(app.state.connections.total == 0))
        assert len(app.state.devices.pending) == 0


async def test_a_device_in_a_reconnect_loop_is_refused_for_a_while_and_journals_little(
    app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    """Each hello took over the device and journaled online and offline; now a device that said
    hello HELLOS_PER_MINUTE times in a minute is refused (4429), and its health is journaled
    once a heartbeat at most, ending on the truth."""
    async with serving(app) as hall:
        first = time.monotonic()
        for _ in range(HELLOS_PER_MINUTE):
            async with connect(hall.url) as ws:
                assert (await hello(ws, "demo-kiosk-token"))["type"] == "welcome"
        async with connect(hall.url) as ws:
            refused = await hello(ws, "demo-kiosk-token")
            _, code = await closed(ws)
        assert refused["error"] == "too_many_hellos" and code == 4429, refused
        wait = int(re.fullmatch(r".*connect again in (\d+) s", refused["message"])[1])  # type: ignore[index]
        assert 60 - (time.monotonic() - first) - 1 <= wait <= 60, refused  # the first ages out
        async with connect(hall.url) as ws:  # other devices are not held back
            assert (await hello(ws, PAD))["type"] == "welcome"

        async def settled() -> bool:
            return await hall.snapshot_status("kiosk-1") == "offline"

        await eventually(settled)
        assert await hall.health("kiosk-1") == ["online", "offline"]  # not six pairs

        # Connections that replace one another: one "connected again" line a minute.
        caplog.set_level(logging.WARNING, logger="devices.endpoint")
        replacing = [await connect(hall.url) for _ in range(3)]
        for ws in replacing:
            assert (await hello(ws, SPEAKER))["type"] == "welcome"
        for ws in replacing[:2]:
            assert (await closed(ws))[1] == 4409
        await replacing[2].close()
        lines = [r for r in caplog.records if "connected again" in r.getMessage()]
        assert len(lines) == 1, lines


async def test_only_printers_and_speakers_report_hardware_state(app: Litestar) -> None:
    async with serving(app) as hall:
        async with connect(hall.url) as ws:
            assert (await hello(ws, "demo-kiosk-token"))["type"] == "welcome"
            await ws.send('{"type":"state","status":"paper_out"}')
            frames, code = await closed(ws)
        assert [(f["error"], f["message"]) for f in frames] == [
            ("protocol", "a kiosk has no hardware state to report")
        ]
        assert code == 1008

        async def settled() -> bool:
            return await hall.snapshot_status("kiosk-1") == "offline"

        await eventually(settled)
        assert "paper_out" not in await hall.health("kiosk-1")


async def test_hardware_states_are_journaled_once_a_heartbeat_ending_on_the_latest(
    app: Litestar,
) -> None:
    async with serving(app) as hall, connect(hall.url) as ws:
        await hello(ws, PRINTER)
        started = time.monotonic()
        for status in ("paper_out", "paper_low", "ok", "error", "paper_low"):
            await ws.send(json.dumps({"type": "state", "status": status}))

        async def latest() -> bool:
            return await hall.snapshot_status("printer-1") == "paper_low"

        await eventually(latest)
        assert time.monotonic() - started >= HEARTBEAT - 0.2  # its turn: a heartbeat after online
        assert await hall.health("printer-1") == ["online", "paper_low"]


# -- printers -------------------------------------------------------------------------------------


async def test_a_printer_gets_its_pending_jobs_in_order_and_an_unacked_one_again(
    app: Litestar,
) -> None:
    async with serving(app) as hall:
        tickets = await hall.issue(3)
        await hall.issue(1, printer=None)  # issued by staff: nothing to print
        async with connect(hall.url) as ws:
            welcome = await hello(ws, PRINTER)
            assert welcome == {
                "type": "welcome",
                "device": "printer-1",
                "kind": "printer",
                "window": None,
                "heartbeat": HEARTBEAT,
            }
            first = await job(ws)
            assert first["id"] == tickets[0]
            ticket = first["ticket"]
            assert ticket["number"] == "A001" and ticket["hall_name"] == "示范县政务服务中心"
            assert ticket["category_name_en"] == "General Affairs"
            assert ticket["url"] == f"{hall.http_url}/phone/{HALL}/{tickets[0]}#s=s3cret"
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", ticket["issued_at"])
            assert ticket["ahead"] == 0 and ticket["priority_name"] is None
            assert await job(ws) == first  # not acked: sent again after `retry`
            await ack(ws, first["id"])
            assert (await job(ws))["id"] == tickets[1]
        # Gone without acking the second: the next connection starts with it.
        async with connect(hall.url) as ws:
            await hello(ws, PRINTER)
            second = await job(ws)
            assert second["id"] == tickets[1] and second["ticket"]["ahead"] == 1
            await ack(ws, second["id"])
            await ack(ws, second["id"])  # acks are idempotent
            assert (await job(ws))["id"] == tickets[2]
            await ack(ws, tickets[2])

            async def all_printed() -> bool:
                return [e["ticket"] for e in await hall.journal("ticket_printed")] == tickets

            await eventually(all_printed)
        assert hall.engine.state.printing == {}


async def test_an_acked_job_is_journaled_and_not_sent_after_a_restart(tmp_path: Path) -> None:
    async with serving(fast(make_app(tmp_path))) as hall:
        tickets = await hall.issue(2)
        ws = await connect(hall.url)  # still connected as the server stops
        await hello(ws, PRINTER)
        await ack(ws, (await job(ws))["id"])
        # The next job leaves only once the ack is journaled.
        assert (await job(ws))["id"] == tickets[1]
        beating = asyncio.create_task(answer_heartbeats(ws))
        assert [e["ticket"] for e in await hall.journal("ticket_printed")] == tickets[:1]
    with pytest.raises(websockets.ConnectionClosed):
        await beating
    code = ws.close_code
    assert code == 1012  # uvicorn's own, as it stops (`hall serve` sends 1001 first)
    async with serving(fast(make_app(tmp_path))) as hall:  # the same SQLite journal
        assert await hall.health("printer-1") == ["online"]  # nothing journaled at the stop
        async with connect(hall.url) as ws:
            await hello(ws, PRINTER)
            assert (await job(ws))["id"] == tickets[1]


async def test_devices_that_do_not_come_back_after_a_restart_go_offline(tmp_path: Path) -> None:
    async with serving(fast(make_app(tmp_path))) as hall:
        devices = [await connect(hall.url), await connect(hall.url)]  # connected at the stop
        await hello(devices[0], PRINTER)
        await hello(devices[1], PAD)
        for device in ("printer-1", "pad-1"):
            await eventually(lambda d=device: _online(hall, d))  # type: ignore[misc]
    for ws in devices:
        await ws.close()
    beat = 0.5  # the watcher looks every three
    async with serving(fast(make_app(tmp_path), heartbeat=beat)) as hall:
        started = time.monotonic()
        async with connect(hall.url) as printer:  # the printer comes back, the pad does not
            await hello(printer, PRINTER)
            beating = asyncio.create_task(answer_heartbeats(printer))

            async def pad_offline() -> bool:
                return await hall.snapshot_status("pad-1") == "offline"

            await eventually(pad_offline)
            took = time.monotonic() - started
            # Within three beats of the start (the watcher starts with the app, a little before
            # uvicorn says it serves); the printer's "online" below shows it waited for them.
            assert took < 3 * beat + 1.0, took
            await asyncio.sleep(beat)
            assert await hall.health("pad-1") == ["online", "offline"]
            assert await hall.health("printer-1") == ["online"]  # back in time: no news
            beating.cancel()


async def _online(hall: Served, device: str) -> bool:
    return await hall.snapshot_status(device) == "online"


async def test_a_second_connection_of_a_device_closes_the_first(app: Litestar) -> None:
    async with serving(app) as hall:
        async with connect(hall.url) as one:
            await hello(one, PRINTER)
            async with connect(hall.url) as two:
                assert (await hello(two, PRINTER))["type"] == "welcome"
                frames, code = await closed(one)
                assert [f["error"] for f in frames if f["type"] == "error"] == ["replaced"]
                assert code == 4409
                tickets = await hall.issue(1)
                assert (await job(two))["id"] == tickets[0]  # the newer one gets the jobs
                await ack(two, tickets[0])
                beating = asyncio.create_task(answer_heartbeats(two))
                await asyncio.sleep(2 * RETRY)
                # The older connection's end is no news: the device is online all along.
                assert await hall.health("printer-1") == ["online"]
                assert await _online(hall, "printer-1")
                beating.cancel()

        async def offline() -> bool:
            return await hall.health("printer-1") == ["online", "offline"]

        await eventually(offline)


async def test_a_print_job_with_long_names_and_notice_fits_a_frame(tmp_path: Path) -> None:
    config = DEFAULT_CONFIG.read_text(encoding="utf-8")
    long_name = "很长的政务服务中心名称" * 100
    assert 'name = "示范县政务服务中心"' in config
    config = config.replace('name = "示范县政务服务中心"', f'name = "{long_name}"', 1)
    path = tmp_path / "hall.toml"
    path.write_text(config, encoding="utf-8")
    async with serving(fast(make_app(tmp_path / "data", path))) as hall:
        await hall.engine.execute(
            PostNotice(text="请保管好您的票据。" * 300, text_en="x" * 5000, by="manager")
        )
        tickets = await hall.issue(1)
        async with connect(hall.url) as ws:
            await hello(ws, PRINTER)
            frame = await asyncio.wait_for(ws.recv(), WAIT)
        assert isinstance(frame, str) and len(frame.encode()) <= MAX_FRAME
        sent = decode(frame)  # as an agent reads it
        assert isinstance(sent, Print) and sent.id == tickets[0]
        assert sent.ticket.hall_name == long_name[:79] + "…"
        assert sent.ticket.notice.startswith("请保管好") and sent.ticket.notice.endswith("…")
        assert sent.ticket.number == "A001" and sent.ticket.url.endswith("#s=s3cret")


# -- speakers -------------------------------------------------------------------------------------


async def test_a_speaker_plays_calls_in_order_and_again_what_it_missed(app: Litestar) -> None:
    async with serving(app) as hall:
        engine = hall.engine
        await hall.issue(3, printer=None)
        await engine.execute(Login(window="1", by="zhangwei"))
        await engine.execute(Login(window="2", by="lina"))
        async with connect(hall.url) as ws:
            await hello(ws, SPEAKER)
            versions = []
            for command in (
                CallNext(window="1", by="zhangwei"),
                CallNext(window="2", by="lina"),
                Recall(window="1", by="zhangwei"),
            ):
                versions.append((await engine.execute(command)).records[-1].version)
            first = await job(ws)
            assert first == {
                "type": "play",
                "id": f"call-{versions[0]}",
                "url": f"/api/halls/{HALL}/announcements/A001/1.wav",
                "number": "A001",
                "window": "1",
            }
            assert await job(ws) == first  # one at a time: again until it is played
            await ack(ws, first["id"])
            second = await job(ws)
            assert (second["id"], second["number"], second["window"]) == (
                f"call-{versions[1]}",
                "A002",
                "2",
            )
        # Reconnected: the calls of the last minute it has not played, in order.
        async with connect(hall.url) as ws:
            await hello(ws, SPEAKER)
            again = await job(ws)
            assert again["id"] == second["id"]
            await ack(ws, again["id"])
            third = await job(ws)
            assert (third["id"], third["number"], third["window"]) == (
                f"call-{versions[2]}",
                "A001",
                "1",
            )
            await ack(ws, third["id"])
        async with connect(hall.url) as ws:
            await hello(ws, SPEAKER)
            with pytest.raises(TimeoutError):  # nothing left to play
                await asyncio.wait_for(job(ws), 3 * RETRY)
        assert await hall.journal("ticket_printed") == []  # plays are not journaled


# -- health ---------------------------------------------------------------------------------------


async def test_health_is_journaled_and_shown_in_the_snapshot(tmp_path: Path) -> None:
    # Once a heartbeat at most: each status waits for its turn (a short heartbeat).
    async with serving(fast(make_app(tmp_path), heartbeat=1.0)) as hall:

        async def shows(status: str) -> None:
            async def now() -> bool:
                return await hall.snapshot_status("printer-1") == status

            await eventually(now)

        assert await hall.snapshot_status("printer-1") == "offline"  # never connected
        async with connect(hall.url) as ws:
            await hello(ws, PRINTER)
            await shows("online")
            await ws.send('{"type":"state","status":"paper_out","detail":"no paper"}')
            await shows("paper_out")
            await ws.send('{"type":"state","status":"ok"}')
            await shows("online")
        await shows("offline")
        assert await hall.health("printer-1") == ["online", "paper_out", "online", "offline"]


async def test_a_silent_device_is_closed_and_goes_offline(tmp_path: Path) -> None:
    async with serving(fast(make_app(tmp_path), heartbeat=BEAT)) as hall, connect(hall.url) as ws:
        await hello(ws, PAD)
        started = time.monotonic()
        frames, code = await closed(ws)  # it never answers the hall's heartbeats
        took = time.monotonic() - started
        assert {f["type"] for f in frames} == {"heartbeat", "error"} and code == 4408
        assert 2 * BEAT <= took < 3 * BEAT + 1.0, took  # from its hello, a moment before
        assert await hall.health("pad-1") == ["online", "offline"]


async def test_a_stopping_server_closes_links_with_1001_and_journals_nothing(
    app: Litestar,
) -> None:
    async with serving(app) as hall:
        async with connect(hall.url) as ws:
            await hello(ws, PAD)
            await eventually(lambda: _online(hall, "pad-1"))
            await app.state.devices.close()
            frames, code = await closed(ws)
            assert [f["error"] for f in frames if f["type"] == "error"] == ["shutting_down"]
            assert code == 1001
        async with connect(hall.url) as ws:
            frames, code = await closed(ws)
            assert [f["error"] for f in frames] == ["shutting_down"] and code == 1001
        assert await hall.health("pad-1") == ["online"]


async def test_an_ack_the_journal_does_not_take_closes_with_1013_and_the_job_stays(
    tmp_path: Path,
) -> None:
    """Another process holds the SQLite journal's write lock: the ack cannot be journaled, so
    the link closes (1013) before the next job; once the journal takes writes again the ticket is
    printed exactly once, whether the ack's append landed late or the job is sent again."""
    cache = os.environ.get("HALL_VOICE_CACHE")
    settings = Settings(
        data_dir=tmp_path,
        voice_cache=Path(cache) if cache else None,
        store_timeout=0.3,
        read_timeout=0.3,
    )
    app = fast(create_app(settings))
    async with serving(app) as hall:
        tickets = await hall.issue(2)
        async with connect(hall.url) as ws:
            await hello(ws, PRINTER)
            first = await job(ws)
            blocker = sqlite3.connect(
                settings.journal_url, isolation_level=None, check_same_thread=False
            )
            await asyncio.to_thread(blocker.execute, "BEGIN EXCLUSIVE")
            try:
                await ack(ws, first["id"])
                frames, code = await closed(ws)
            finally:
                await asyncio.to_thread(blocker.execute, "ROLLBACK")
                blocker.close()
        assert [f["error"] for f in frames if f["type"] == "error"] == ["unavailable"]
        assert code == 1013
        assert tickets[1] not in [f.get("id") for f in frames]  # nothing after the failed ack
        # The append held up by the lock may land late: the engine learns it from the journal
        # when its next append fails (one more 1013); the device just connects again.
        for _ in range(3):
            async with connect(hall.url) as ws:
                await hello(ws, PRINTER)
                sent = await job(ws)
                await ack(ws, sent["id"])
                if sent["id"] == tickets[1]:
                    break
                after = await news(ws)
                if after["type"] == "error":
                    assert after["error"] == "unavailable"
                    continue
                assert after["id"] == tickets[1]
                await ack(ws, tickets[1])
                break

        async def printed_once() -> bool:
            return [e["ticket"] for e in await hall.journal("ticket_printed")] == tickets

        await eventually(printed_once, seconds=10)
        async with connect(hall.url) as ws:
            await hello(ws, PRINTER)
            with pytest.raises(TimeoutError):  # and nothing is left to print
                await asyncio.wait_for(job(ws), 3 * RETRY)
