"""``run_agent`` against a real WebSocket server on 127.0.0.1 that drives a ``HallSession``.

The server here is a tiny test-only hall end (the hall's real device endpoint lives in the hall
server): its list of jobs to do outlives the server, as the hall's journal does, so a killed and
restarted server sends again whatever was not acked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from devices.done import DoneStore
from devices.link import JobFailed, run_agent
from devices.printing.ticket import PrintTicket
from devices.protocol import Job, Print, encode
from devices.session import Acked, Close, DeviceInfo, Effect, HallSession, Online, Reported, Send
from tests.support.redis import free_port

TOKEN = "printer-token"
TODAY = date(2026, 11, 30)
BEAT = 0.3  # seconds: heartbeat and retry, short so that a lost connection shows quickly


def job(n: int) -> Print:
    ticket = PrintTicket(
        hall_name="政务服务中心",
        hall_name_en="Service Hall",
        number=f"A{n:03d}",
        category_name="综合",
        category_name_en="General",
        priority_name=None,
        ahead=0,
        wait_minutes=None,
        issued_at="2026-11-30 09:12",
        url=f"http://127.0.0.1/p/20261130-A{n:03d}#s",
        notice="",
        notice_en="",
    )
    return Print(id=f"20261130-A{n:03d}", ticket=ticket)


def ids(*numbers: int) -> list[str]:
    return [job(n).id for n in numbers]


class TinyHall:
    def __init__(self, jobs: list[Job]) -> None:
        self.todo = list(jobs)  # the hall's durable "to print" list
        self.acked: list[str] = []
        self.sent: list[str] = []  # every job frame sent, resends included
        self.reports: list[str] = []
        self.connections = 0
        self.die_on_ack: set[str] = set()  # die on this ack, before journaling it
        self.died = asyncio.Event()
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws/halls/h/devices"
        self._server: Server | None = None

    async def start(self) -> None:
        self.died.clear()
        self._server = await serve(self._handle, "127.0.0.1", self.port)

    def kill(self) -> None:
        """Like a killed process: no close frame, connections just drop."""
        assert self._server is not None
        self._server.close(close_connections=False)
        for connection in self._server.connections:
            connection.transport.abort()
        self.died.set()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, socket: ServerConnection) -> None:
        self.connections += 1
        loop = asyncio.get_running_loop()
        session = HallSession(
            now=loop.time(),
            authenticate={TOKEN: DeviceInfo(device="p1", kind="printer")}.get,
            kinds={"printer"},
            heartbeat=BEAT,
            retry=BEAT,
        )
        try:
            while True:
                effects: list[Effect] = []
                for todo in self.todo:  # offers are deduplicated: the real endpoint re-offers too
                    effects += session.offer(todo, loop.time())
                wake = session.deadline()
                assert wake is not None
                try:
                    frame = await asyncio.wait_for(socket.recv(), max(0.0, wake - loop.time()))
                    effects += session.receive(frame, loop.time())
                except TimeoutError:
                    pass
                effects += session.tick(loop.time())
                if not await self._apply(socket, effects):
                    return
        except ConnectionClosed:
            self.reports += [e.status for e in session.connection_lost() if isinstance(e, Reported)]

    async def _apply(self, socket: ServerConnection, effects: list[Effect]) -> bool:
        for effect in effects:
            match effect:
                case Send(message=message):
                    if isinstance(message, Print):
                        self.sent.append(message.id)
                    await socket.send(encode(message))
                case Acked(job_id=job_id):
                    if job_id in self.die_on_ack:
                        self.die_on_ack.discard(job_id)
                        self.kill()
                        return False
                    self.todo = [j for j in self.todo if j.id != job_id]
                    self.acked.append(job_id)
                case Online():
                    self.reports.append("online")
                case Reported(status=status):
                    self.reports.append(status)
                case Close(code=code, reason=reason):
                    await socket.close(code, reason)
                    return False
        return True


class Agent:
    """A printer agent's perform: records what it did; a job can be held at a gate."""

    def __init__(self) -> None:
        self.performed: list[str] = []
        self.started: dict[str, asyncio.Event] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.failures: dict[str, list[JobFailed]] = {}

    async def perform(self, job: Job) -> None:
        self.started.setdefault(job.id, asyncio.Event()).set()
        if job.id in self.gates:
            await self.gates[job.id].wait()
        if self.failures.get(job.id):
            raise self.failures[job.id].pop(0)
        self.performed.append(job.id)


@pytest.fixture
def done_path(tmp_path: Path) -> Path:
    return tmp_path / "done.txt"


@pytest.fixture
def stores(done_path: Path) -> Iterator[Callable[[], DoneStore]]:
    opened: list[DoneStore] = []

    def open_store() -> DoneStore:
        opened.append(DoneStore(done_path, today=TODAY))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
async def hall() -> AsyncIterator[TinyHall]:
    the_hall = TinyHall([])
    yield the_hall
    await the_hall.stop()


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - the state is plain lists, no event to wait on
            await asyncio.sleep(0.01)


async def running(
    hall: TinyHall, agent: Agent, store: DoneStore, **options: object
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            hall.url,
            token=TOKEN,
            agent_name="printer-agent/1",
            perform=agent.perform,
            done_store=store,
            stop=stop,
            rand=lambda: 0.5,
            **options,  # type: ignore[arg-type]
        )
    )
    return stop, task


async def stopped(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    async with asyncio.timeout(5):
        await task


async def test_jobs_arrive_in_order_and_are_acked_once_each(
    hall: TinyHall, stores: Callable[[], DoneStore]
) -> None:
    hall.todo = [job(n) for n in range(1, 6)]
    await hall.start()
    agent = Agent()
    stop, task = await running(hall, agent, stores())
    await eventually(lambda: len(hall.acked) == 5)
    hall.todo.append(job(6))  # a job that comes while the agent is connected
    await eventually(lambda: len(hall.acked) == 6)
    await stopped(stop, task)
    assert agent.performed == ids(1, 2, 3, 4, 5, 6)
    assert hall.acked == ids(1, 2, 3, 4, 5, 6)
    assert hall.reports[0] == "online" and hall.connections == 1


async def test_a_job_outlives_a_killed_hall_and_is_performed_once(
    hall: TinyHall, stores: Callable[[], DoneStore]
) -> None:
    hall.todo = [job(1), job(2), job(3)]
    await hall.start()
    agent = Agent()
    agent.gates[job(2).id] = gate = asyncio.Event()
    stop, task = await running(hall, agent, stores())
    await eventually(lambda: job(2).id in agent.started)
    hall.kill()  # while job 2 is being performed
    await asyncio.sleep(0.2)
    await hall.start()
    # The new hall sends job 2 again (and again after each retry) while it is still being done.
    await eventually(lambda: hall.connections == 2 and hall.sent.count(job(2).id) >= 3)
    gate.set()
    await eventually(lambda: len(hall.acked) == 3)
    await stopped(stop, task)
    assert agent.performed == ids(1, 2, 3)
    assert hall.acked == ids(1, 2, 3)


async def test_an_ack_lost_with_the_hall_is_answered_from_the_done_set(
    hall: TinyHall, stores: Callable[[], DoneStore], done_path: Path
) -> None:
    hall.todo = [job(1), job(2), job(3)]
    hall.die_on_ack = {job(2).id}  # the hall dies with job 2's ack unjournaled
    await hall.start()
    agent = Agent()
    stop, task = await running(hall, agent, stores())
    await hall.died.wait()
    done = await asyncio.to_thread(done_path.read_text)
    assert job(2).id in done.split()  # recorded before the ack left
    await hall.start()
    await eventually(lambda: len(hall.acked) == 3)
    await stopped(stop, task)
    assert agent.performed == ids(1, 2, 3)
    assert hall.acked == ids(1, 2, 3)
    assert hall.sent.count(job(2).id) >= 2


async def test_a_restarted_agent_does_not_redo_done_jobs(
    hall: TinyHall, stores: Callable[[], DoneStore]
) -> None:
    hall.todo = [job(1), job(2), job(3)]
    await hall.start()
    first = Agent()
    stop, task = await running(hall, first, stores())
    await eventually(lambda: len(hall.acked) == 3)
    await stopped(stop, task)
    await hall.stop()

    # A hall that never got those acks (they were lost) sends everything again.
    again = TinyHall([job(n) for n in range(1, 6)])
    await again.start()
    second = Agent()
    stop, task = await running(again, second, stores())
    try:
        await eventually(lambda: len(again.acked) == 5)
        await stopped(stop, task)
    finally:
        await again.stop()
    assert first.performed == ids(1, 2, 3)
    assert second.performed == ids(4, 5)
    assert again.acked == ids(1, 2, 3, 4, 5)


async def test_failures_and_hardware_states_reach_the_hall(
    hall: TinyHall, stores: Callable[[], DoneStore]
) -> None:
    hall.todo = [job(1)]
    await hall.start()
    agent = Agent()
    agent.failures[job(1).id] = [JobFailed("paper_out", "no paper"), JobFailed("paper_out")]
    states = iter(["paper_low"])

    async def status() -> str:  # as a printer would answer: out of paper until the job prints
        return next(states, "paper_out" if agent.failures[job(1).id] else "ok")

    stop, task = await running(hall, agent, stores(), status=status, status_seconds=0.05)
    await eventually(lambda: hall.acked == ids(1) and "ok" in hall.reports)
    await stopped(stop, task)
    assert agent.performed == ids(1)
    assert hall.sent.count(job(1).id) == 3  # two failed attempts, then done
    # The probe's paper_low; paper out reported once (failures and probe agree); then ok.
    assert hall.reports == ["online", "paper_low", "paper_out", "ok"]


async def test_the_agent_keeps_reconnecting_until_the_hall_comes_back(
    hall: TinyHall, stores: Callable[[], DoneStore]
) -> None:
    hall.todo = [job(1)]
    agent = Agent()
    stop, task = await running(hall, agent, stores())
    await asyncio.sleep(1.0)  # refused connections, with backoff
    await hall.start()
    await eventually(lambda: hall.acked == ids(1))
    await stopped(stop, task)
    assert agent.performed == ids(1)
