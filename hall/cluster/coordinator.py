"""One process's part in a region: which halls it writes, and following the rest.

Every ``tick`` (a sixth of the lease) the coordinator, in one pass:

1. says this process is alive (the roll, with Redis's clock) and learns who else is;
2. renews the leases it holds; a hall whose lease it lost (expired while it was paused or cut
   off from Redis) goes back to following at once;
3. spreads the halls over the live processes by rendezvous hashing: each hall's preferred
   writer is the live process hosting it whose hash with the hall is highest, so a process
   joining or leaving moves only its share of halls. A process hands over a hall whose
   preferred writer is another live process (drain, release); it takes a free lease when it is
   the preferred writer, or when the lease has stayed free for a whole lease period (the
   preferred one is not taking it).

A dead writer's lease expires at most ``lease`` seconds after its last renewal; its standby takes
the hall at its next tick and catches up from the journal (it has followed it all along), so a
hall is served again within about ``lease + tick`` seconds plus the catch-up.

Followers take in what writers append: one blocking XREAD over every followed hall's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec
from redis.exceptions import RedisError

from hall.cluster.forward import Forwarder
from hall.cluster.leases import Lease, Leases, Member, NameTaken
from hall.config import HallConfig
from hall.engine import HallEngine
from hall.journal.base import JournalError
from hall.journal.redis import RedisJournal

log = logging.getLogger(__name__)

T = TypeVar("T")
TAIL_BLOCK_MS = 1000
STEADY_TICKS = 2  # a hall that starts being followed waits at most this long to be tailed


def config_digest(config: HallConfig) -> str:
    """What two processes compare to know they serve a hall with the same hall file."""
    return hashlib.blake2b(msgspec.json.encode(config), digest_size=8).hexdigest()


def preferred(hall: str, nodes: list[str]) -> str | None:
    """The hall's writer by rendezvous hashing over ``nodes`` (None when there are none)."""
    if not nodes:
        return None

    def score(node: str) -> bytes:
        return hashlib.blake2b(f"{node}\x00{hall}".encode(), digest_size=8).digest()

    return max(nodes, key=score)


@dataclass
class HallRole:
    """What this process knows of one hall's writer."""

    writer: str | None = None  # the node holding the lease, at the last tick
    lease: Lease | None = None  # ours, while we write it
    free_since: float | None = None
    moving: asyncio.Task[None] | None = None  # a take-over or hand-over under way


class Coordinator:
    def __init__(
        self,
        journal: RedisJournal,
        engines: dict[str, HallEngine],
        node: str,
        url: str,
        lease_seconds: float = 3.0,
        on_change: Callable[[str, bool], object] | None = None,
    ) -> None:
        self.journal, self.engines, self.node, self.url = journal, engines, node, url
        self.lease_ms = round(lease_seconds * 1000)
        self.tick = lease_seconds / 6
        self.leases = Leases(journal.client, journal.tag)
        self.nodes: dict[str, Member] = {}  # the live nodes
        self.roles: dict[str, HallRole] = {}  # made at start, once every engine is
        self.on_change = on_change  # (hall, leading): start or stop what only a writer runs
        self.connected = False  # the last tick reached Redis
        self._reached = -1e9  # when a tick last did (monotonic)
        self._since = 0.0  # when the ticks last began reaching Redis again
        self._seen: dict[str, float] = {}  # each live node: since when (monotonic)
        self.digests: dict[str, str] = {}  # hall -> the digest of the hall file we serve
        self._drifted: set[tuple[str, str, str]] = set()  # (node, hall, digest) said in the log
        self._tail_ok = True
        self._tasks: list[asyncio.Task[None]] = []
        self.forwarder: Forwarder | None = None  # set by the service: /ready asks it

    async def start(self) -> None:
        """Join the roll and take this process's halls before serving (a lone process starts
        as the writer of every hall)."""
        self.roles = {hall: HallRole() for hall in self.engines}
        self.digests = {hall: config_digest(e.config) for hall, e in self.engines.items()}
        # A process restarted under its name right after it died finds its old self in the
        # roll until that runs out (a lease at most): wait for that, not for a live twin.
        give_up = time.monotonic() + self.lease_ms / 1000 + 1
        while True:
            try:
                async with asyncio.timeout(self.lease_ms / 2000):
                    await self._tick()
                if not self._steady():  # the others see us, and we them, before we take
                    await asyncio.sleep(STEADY_TICKS * self.tick)
                    async with asyncio.timeout(self.lease_ms / 2000):
                        await self._tick()
                break
            except NameTaken:
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(self.tick)
            except (JournalError, RedisError, OSError, TimeoutError):
                break  # Redis unreachable: the ticks carry on trying
        await self._settle()
        self._tasks = [
            asyncio.create_task(self._tick_forever(), name="cluster-tick"),
            asyncio.create_task(self._tail_forever(), name="cluster-tail"),
        ]

    async def stop(self) -> None:
        """Hand every hall over now (release, leave the roll): a standby takes them at its next
        tick instead of after the lease runs out."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._settle()
        for hall, role in self.roles.items():
            if role.lease is not None:
                await self._hand_over(hall)
        with contextlib.suppress(RedisError, JournalError, OSError, TimeoutError):
            await self._quick(self.leases.heartbeat(self.node, self.url, 0))

    async def writer_url(self, hall: str) -> str | None:
        """Where to forward a command of ``hall``: the writer's URL, "" when this process writes
        it now, None when nobody does. Asks Redis when the last tick's answer is no good."""
        role = self.roles.get(hall)
        if role is None:
            return None
        if self.engines[hall].leading:
            return ""
        writer = role.writer
        if writer is None or writer == self.node or writer not in self.nodes:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                writer = (await self._quick(self.leases.holders([hall])))[hall]
                role.writer = writer
        member = self.nodes.get(writer) if writer is not None and writer != self.node else None
        return None if member is None else member.url

    def cut_off_from(self, hall: str) -> str | None:
        """Why this process cannot forward ``hall``'s commands, if its writer (alive: it keeps
        its lease) has been unreachable from here for longer than a dead one keeps a lease:
        its ``--advertise`` URL is wrong for us, or a firewall is in between."""
        role, forwarder = self.roles.get(hall), self.forwarder
        writer = role.writer if role is not None else None
        member = self.nodes.get(writer) if writer is not None else None
        if member is None or forwarder is None or self.engines[hall].leading:
            return None
        first, last = forwarder.unreachable.get(member.url, (0.0, 0.0))
        now, bound = time.monotonic(), 2 * self.lease_ms / 1000
        if now - last > bound or now - first < bound:  # not failing now, or not for long
            return None
        return f"its writer {writer} cannot be reached at {member.url} (check --advertise)"

    def fresh(self) -> bool:
        """Whether what this process holds of its halls is current: Redis answered a tick
        lately and the tail works (else a writer elsewhere may have moved on unseen)."""
        return self._tail_ok and time.monotonic() - self._reached < STEADY_TICKS * self.tick

    def status(self) -> dict[str, object]:
        return {
            "node": self.node,
            "connected": self.connected,
            "nodes": [{"id": n, "url": m.url} for n, m in sorted(self.nodes.items())],
            "halls": {
                hall: {
                    "writer": role.writer,
                    "leading": self.engines[hall].leading,
                    "version": self.engines[hall].state.version,
                }
                for hall, role in self.roles.items()
            },
        }

    async def _tick_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                # A link cut without a reset blocks a command without end: the lease runs out
                # meanwhile, so a tick that takes long is a failed one.
                async with asyncio.timeout(self.lease_ms / 2000):
                    await self._tick()
            except NameTaken as exc:  # our entry ran out (cut off) and a twin took the name
                log.error("region: %s; this process's leases will run out", exc)
                self.connected = False
            except (RedisError, JournalError, OSError, TimeoutError) as exc:
                if self.connected:
                    log.warning("region: Redis unreachable (%s); retrying", exc)
                self.connected = False
            await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    async def _tick(self) -> None:
        before = set(self.nodes)
        self.nodes = await self.leases.heartbeat(self.node, self.url, self.lease_ms, self.digests)
        seen = time.monotonic()
        self._seen = {node: self._seen.get(node, seen) for node in self.nodes}
        if not self.connected:
            self._since = time.monotonic()
            log.info("region: node %s sees %s", self.node, ", ".join(sorted(self.nodes)))
        elif set(self.nodes) != before:
            joined, gone = set(self.nodes) - before, before - set(self.nodes)
            if joined:
                log.info("region: %s joined", ", ".join(sorted(joined)))
            if gone:  # stopped (it said so) or silent past its lease: its halls move
                log.warning("region: %s left", ", ".join(sorted(gone)))
        self.connected, self._reached = True, time.monotonic()
        ours = [role.lease for role in self.roles.values() if role.lease is not None]
        for hall, held in (await self.leases.renew(ours, self.lease_ms)).items():
            if not held:
                log.warning("hall %s: lease lost by %s; following", hall, self.node)
                self._move(hall, self._lose(hall))
        halls = list(self.roles)
        writers = await self.leases.holders(halls)
        now = time.monotonic()
        for hall in halls:
            role = self.roles[hall]
            role.writer = writers[hall]
            if role.moving is not None and not role.moving.done():
                continue
            best = preferred(hall, self._hosts(hall))
            if role.lease is not None:
                # Handed over once the newcomer is steady too (it takes nothing before): the
                # hall is without a writer for a tick, not for the newcomer's first second.
                if best is not None and best != self.node and self._settled(best, now):
                    self._move(hall, self._hand_over(hall))
            elif role.writer is None:
                role.free_since = role.free_since or now
                preferred_here = best == self.node or now - role.free_since >= self.lease_ms / 1000
                if preferred_here and self._steady():
                    self._move(hall, self._take(hall))
            else:
                role.free_since = None

    def _hosts(self, hall: str) -> list[str]:
        """The live processes that may write ``hall``: those serving it with our hall file. One
        with another version of it is said in the log and never handed the hall: its decisions
        (categories, quotas, numbering) would not be the ones the others fold."""
        ours, hosts = self.digests[hall], []
        for node, member in self.nodes.items():
            theirs = member.halls.get(hall)
            if theirs == ours:
                hosts.append(node)
            elif theirs is not None and (node, hall, theirs) not in self._drifted:
                self._drifted.add((node, hall, theirs))
                log.error("hall %s: process %s serves another version of its hall file", hall, node)
        return hosts

    def _settled(self, node: str, now: float) -> bool:
        return now - self._seen.get(node, now) >= (STEADY_TICKS + 1) * self.tick

    def _steady(self) -> bool:
        """Reaching Redis for a few ticks: after Redis restarted, every process's entry in the
        roll is gone, and the first one back would otherwise take every hall for a moment."""
        return self.connected and time.monotonic() - self._since >= STEADY_TICKS * self.tick

    async def _quick(self, call: Awaitable[T]) -> T:
        """A lease or roll call, within half a lease: a link cut without a reset would block it
        without end (the connections have no socket timeout, for the tail's blocking reads)."""
        async with asyncio.timeout(self.lease_ms / 2000):
            return await call

    def _move(self, hall: str, work: object) -> None:
        assert asyncio.iscoroutine(work)
        self.roles[hall].moving = asyncio.create_task(work, name=f"cluster-move-{hall}")

    async def _settle(self) -> None:
        moving = [r.moving for r in self.roles.values() if r.moving is not None]
        if moving:
            await asyncio.gather(*moving, return_exceptions=True)

    async def _take(self, hall: str) -> None:
        role, engine = self.roles[hall], self.engines[hall]
        # A lease taken whose answer was lost runs out unused: the engine never writes under it.
        try:
            lease = await self._quick(self.leases.acquire(hall, self.node, self.lease_ms))
        except (RedisError, OSError, TimeoutError):
            return  # the next tick tries again
        if lease is None:
            return
        role.lease, role.writer, role.free_since = lease, self.node, None
        try:
            await engine.take_over(lease.value)
        except BaseException:
            log.exception("hall %s: could not take over; giving the lease back", hall)
            role.lease = None
            await engine.step_down()
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self._quick(self.leases.release(lease))
            raise
        log.info("hall %s: written by %s (fence %d)", hall, self.node, lease.fence)
        self._changed(hall, True)

    async def _hand_over(self, hall: str) -> None:
        role, engine = self.roles[hall], self.engines[hall]
        lease, role.lease = role.lease, None
        self._changed(hall, False)
        await engine.step_down()
        if lease is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self._quick(self.leases.release(lease))  # else it runs out
            log.info("hall %s: handed over by %s", hall, self.node)

    async def _lose(self, hall: str) -> None:
        self.roles[hall].lease = None
        self._changed(hall, False)
        await self.engines[hall].step_down()

    def _changed(self, hall: str, leading: bool) -> None:
        if self.on_change is not None:
            try:
                self.on_change(hall, leading)
            except Exception:
                log.exception("hall %s: a change of writer was not taken in", hall)

    async def _tail_forever(self) -> None:
        """Take in every followed hall's new events (one blocking read for all of them)."""
        pause = 0.05
        while True:
            after = {h: e.state.version for h, e in self.engines.items() if not e.leading}
            if not after:
                await asyncio.sleep(self.tick)
                continue
            try:
                async with asyncio.timeout(TAIL_BLOCK_MS / 1000 + self.lease_ms / 2000):
                    found = await self.journal.tail(after, TAIL_BLOCK_MS)
                pause, self._tail_ok = 0.05, True
            except (JournalError, TimeoutError) as exc:
                if self._tail_ok:
                    log.warning("region: tail failed (%r)", exc)
                self._tail_ok = False
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            for hall, records in found.items():
                try:
                    await self.engines[hall].absorb(records)
                except (JournalError, TimeoutError) as exc:
                    log.warning("hall %s: events not taken in yet (%s)", hall, exc)
