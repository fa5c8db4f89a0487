"""Processes of a region in one event loop: each a Coordinator with its own Redis connections and
its own engine per hall, sharing one Redis. Commands go to whichever node; a node stops, joins,
or goes silent (its lease runs out) and another writes its halls; a writer whose lease was taken
cannot append. (tests/e2e/test_region.py does the same with real server processes.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import msgspec
import pytest

from hall.bus import Bus
from hall.cluster.coordinator import Coordinator, preferred
from hall.cluster.leases import NameTaken
from hall.config import HallConfig
from hall.domain.commands import AnyCommand, IssueTicket
from hall.domain.events import AnyEvent
from hall.engine import HallEngine, WriteHere
from hall.journal.base import LeaseLost, NotWriter
from hall.journal.redis import RedisJournal
from tests.support.halls import several_halls

pytestmark = pytest.mark.redis

LEASE = 0.6  # seconds: a tick every 0.1 s


@dataclass
class Node:
    name: str
    journal: RedisJournal
    engines: dict[str, HallEngine] = field(default_factory=dict)
    coordinator: Coordinator | None = None

    def leading(self) -> set[str]:
        return {hall for hall, engine in self.engines.items() if engine.leading}


class Region:
    def __init__(self, url: str, prefix: str, configs: list[HallConfig]) -> None:
        self.url, self.prefix, self.configs = url, prefix, configs
        self.nodes: dict[str, Node] = {}

    async def start(self, name: str, hosting: list[HallConfig] | None = None) -> Node:
        node = Node(name, RedisJournal(self.url, prefix=self.prefix))
        self.nodes[name] = node
        for config in self.configs if hosting is None else hosting:
            engine = HallEngine(
                config, node.journal, Bus(), leading=False, forward=self._forward_from(node)
            )
            await engine.start()
            node.engines[config.hall.id] = engine
        node.coordinator = Coordinator(node.journal, node.engines, name, name, LEASE)
        await node.coordinator.start()
        return node

    def _forward_from(self, node: Node) -> Callable[[str, AnyCommand, str | None], object]:
        """Forwarding without HTTP: straight to the writer node's engine (``here``)."""

        async def forward(
            hall: str, command: AnyCommand, key: str | None
        ) -> tuple[int, list[AnyEvent]]:
            give_up = time.monotonic() + 3
            while time.monotonic() < give_up:
                assert node.coordinator is not None
                writer = await node.coordinator.writer_url(hall)  # the url is the node's name
                if writer == "":
                    raise WriteHere(hall)
                if writer is not None and writer in self.nodes:
                    try:
                        done = (
                            await self.nodes[writer]
                            .engines[hall]
                            .execute(command, key=key, here=True)
                        )
                    except NotWriter:
                        pass
                    else:
                        return done.records[0].version, [r.event for r in done.records]
                await asyncio.sleep(0.05)
            raise NotWriter(f"no writer for {hall}")

        return forward

    async def stop(self, name: str) -> None:
        node = self.nodes.pop(name)
        assert node.coordinator is not None
        await node.coordinator.stop()
        for engine in node.engines.values():
            await engine.stop()
        await node.journal.close()

    async def silence(self, name: str) -> Node:
        """The node stops ticking and tailing (as if paused or cut off), keeping its engines."""
        node = self.nodes.pop(name)
        assert node.coordinator is not None
        for task in node.coordinator._tasks:
            task.cancel()
        await asyncio.gather(*node.coordinator._tasks, return_exceptions=True)
        return node

    async def settled(self, within: float = 5.0) -> None:
        """Until every hall has exactly one writer among the nodes, the one hashing prefers."""
        give_up = time.monotonic() + within
        while True:
            writers = {
                hall: [n.name for n in self.nodes.values() if _writes(n, hall)]
                for hall in (c.hall.id for c in self.configs)
            }
            hosts = {h: [n for n, node in self.nodes.items() if h in node.engines] for h in writers}
            if all(w == [preferred(hall, hosts[hall])] for hall, w in writers.items()):
                return
            assert time.monotonic() < give_up, f"not settled: {writers}"
            await asyncio.sleep(0.05)


def _writes(node: Node, hall: str) -> bool:
    engine = node.engines.get(hall)
    return engine is not None and engine.leading


@pytest.fixture
async def region(redis_url: str, redis_prefix: str) -> AsyncIterator[Region]:
    made = Region(redis_url, redis_prefix, several_halls(4))
    yield made
    for name in list(made.nodes):
        await made.stop(name)


async def _issue(node: Node, hall: str) -> str:
    done = await node.engines[hall].execute(
        IssueTicket("general"),
        lambda state, events: events[0].ticket,  # type: ignore[union-attr]
    )
    return str(done.reply)


async def test_a_lone_node_writes_every_hall_and_a_second_takes_its_share(region: Region) -> None:
    a = await region.start("a")
    assert a.leading() == set(a.engines)
    b = await region.start("b")
    await region.settled()
    assert a.leading() and b.leading(), "four halls over two nodes: both write some"
    assert a.leading() | b.leading() == set(a.engines) and not a.leading() & b.leading()
    # Commands through either node, for every hall: forwarded where needed, answered from the
    # node's own state, and seen by the other within the tail's bound.
    for hall in a.engines:
        issued = [await _issue(node, hall) for node in (a, b, a, b)]
        assert len(set(issued)) == 4
        for node in (a, b):
            give_up = time.monotonic() + 2
            while node.engines[hall].state.version < a.engines[hall].state.version or (
                node.engines[hall].state.version < b.engines[hall].state.version
            ):
                assert time.monotonic() < give_up
                await asyncio.sleep(0.01)
            assert set(issued) <= set(node.engines[hall].state.tickets)


async def test_a_stopping_node_hands_its_halls_over_at_once(region: Region) -> None:
    await region.start("a")
    b = await region.start("b")
    await region.settled()
    started = time.monotonic()
    await region.stop("a")
    await region.settled(within=LEASE)  # released: no waiting for the lease to run out
    assert b.leading() == set(b.engines)
    assert time.monotonic() - started < LEASE
    for hall in b.engines:
        await _issue(b, hall)


async def test_a_silent_writer_loses_its_halls_and_cannot_append_after(region: Region) -> None:
    a, b = await region.start("a"), await region.start("b")
    await region.settled()
    hall = next(iter(a.leading()))
    before = await _issue(a, hall)
    silent = await region.silence("a")
    started = time.monotonic()
    await region.settled(within=3 * LEASE)
    took = time.monotonic() - started
    assert b.leading() == set(b.engines)
    assert took <= LEASE + 0.5, f"taken over after {took:.2f} s"
    after = await _issue(b, hall)
    # The silent node still believes it writes the hall: its append is refused whole.
    engine = silent.engines[hall]
    assert engine.leading and engine.fence is not None
    with pytest.raises(LeaseLost):
        await engine.execute(IssueTicket("general"))
    assert not engine.leading  # it knows now, and follows
    stored = [r.event for r in await b.journal.read(hall)]
    tickets = [e.ticket for e in stored if type(e).__name__ == "TicketIssued"]  # type: ignore[union-attr]
    assert tickets.count(before) == 1 and tickets.count(after) == 1
    assert len(tickets) == len(set(tickets)) == 2
    for engine in silent.engines.values():
        await engine.stop()
    await silent.journal.close()


async def test_a_node_hosting_some_halls_writes_only_those(region: Region) -> None:
    """A town's server hosts its own halls only: it never takes another's, and nothing flaps."""
    city = await region.start("city")
    town = await region.start("town", region.configs[:2])
    for _ in range(3):  # settled, and still so a few ticks later
        await region.settled()
        await asyncio.sleep(LEASE / 3)
    # Hashing prefers the town for hall-1, hall-2 and hall-4; it hosts only the first two.
    assert preferred("hall-4", ["city", "town"]) == "town"
    assert town.leading() == {"hall-1", "hall-2"}
    assert city.leading() == {"hall-3", "hall-4"}


async def test_a_second_process_under_a_live_ones_name_is_refused(region: Region) -> None:
    await region.start("a")
    twin = Region(region.url, region.prefix, region.configs)
    with pytest.raises(NameTaken, match="--node-id"):
        await twin.start("a")
    for node in twin.nodes.values():  # its engines started before it was refused
        for engine in node.engines.values():
            await engine.stop()
        await node.journal.close()


async def test_a_process_restarted_under_its_name_after_dying_comes_back(region: Region) -> None:
    """Its old self is still in the roll: the new one waits for that to run out, then serves."""
    silent = await region.silence("a") if await region.start("a") else None
    assert silent is not None
    for engine in silent.engines.values():
        await engine.stop()
    await silent.journal.close()
    again = await region.start("a")
    await region.settled()
    assert again.leading() == set(again.engines)


async def test_a_process_with_another_version_of_a_hall_file_is_never_handed_that_hall(
    region: Region,
) -> None:
    a = await region.start("a")
    drifted = [
        msgspec.structs.replace(c, hall=msgspec.structs.replace(c.hall, name="另一版本"))
        if c.hall.id == "hall-1"
        else c
        for c in region.configs
    ]
    b = await region.start("b", drifted)
    await asyncio.sleep(6 * LEASE / 6 * 4)  # several ticks: every hand-over would be done
    assert a.engines["hall-1"].leading and not b.engines["hall-1"].leading
    assert a.leading() | b.leading() == set(a.engines)
    assert b.leading(), "the other halls are shared as usual"
