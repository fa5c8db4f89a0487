"""A region for fault tests: real ``hall serve`` processes sharing one private Redis (AOF,
fsync always), each with its own data directory; and what the journal in that Redis holds.

Which process writes a hall follows from the node ids (rendezvous hashing, hall/cluster):
:func:`nodes_for` picks ids that give a chosen process the halls a test needs it to write.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import redis

from hall.cluster.coordinator import preferred
from hall.domain import events as ev
from hall.domain.events import (
    AnyEvent,
    ServiceFinished,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
)
from hall.journal.base import Recorded
from hall.journal.redis import _APPEND, RedisJournal
from hall.settings import DEFAULT_CONFIG
from tests.support.burst import HALL, Acked
from tests.support.redis import PrivateRedis
from tests.support.server import ServerProcess

T = TypeVar("T")


def hall_files(directory: Path, extra: Iterable[str] = ()) -> list[Path]:
    """The demo hall, its kiosk without a rate limit (a burst through one kiosk token is the
    point here), and one more copy of it under each id of ``extra``."""
    text = DEFAULT_CONFIG.read_text()
    unlimited = text.replace("device_seconds = 3", "device_seconds = 0")
    assert unlimited != text
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for hall in [HALL, *extra]:
        path = directory / f"{hall}.toml"
        path.write_text(unlimited.replace(f'id = "{HALL}"', f'id = "{hall}"', 1))
        paths.append(path)
    return paths


def nodes_for(writers: dict[str, int], count: int) -> list[str]:
    """``count`` node ids such that each hall of ``writers`` is written by the node at the
    index given (when they are all alive): the halls' preferred writers by rendezvous hashing."""
    for number in itertools.count():
        nodes = [f"n{number}{chr(ord('a') + i)}" for i in range(count)]
        if all(preferred(hall, nodes) == nodes[i] for hall, i in writers.items()):
            return nodes
    raise AssertionError("unreachable")


class Region:
    """A private Redis and ``hall serve`` processes on it, stopped together."""

    def __init__(self, directory: Path, configs: list[Path], lease: float, *extra: str) -> None:
        (directory / "redis").mkdir(parents=True, exist_ok=True)
        self.directory, self.configs, self.lease, self.extra = directory, configs, lease, extra
        self.redis = PrivateRedis(directory / "redis")
        self.servers: dict[str, ServerProcess] = {}

    def server(self, node: str, redis_url: str | None = None) -> ServerProcess:
        """A process of the region named ``node`` (not started), on ``redis_url`` (a proxy) or
        straight on the region's Redis."""
        args = ["--redis", redis_url or self.redis.url, "--node-id", node]
        args += ["--lease-seconds", str(self.lease), "--data", str(self.directory / node)]
        args += [
            "--no-speech",
            *self.extra,
            *itertools.chain(*(("--config", str(c)) for c in self.configs)),
        ]
        server = ServerProcess(*args, log=self.directory / f"{node}.log")
        self.servers[node] = server
        return server

    def start(self, *servers: ServerProcess) -> None:
        """Start ``servers`` side by side (each takes a second or two to import and replay)."""
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(ServerProcess.start, servers))

    def logs(self) -> str:
        return "\n".join(
            f"--- {node}\n{server.log.read_text(errors='replace')[-3000:]}"
            for node, server in self.servers.items()
        )

    def __enter__(self) -> Region:
        self.redis.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with ThreadPoolExecutor(max(1, len(self.servers))) as pool:
            list(pool.map(ServerProcess.stop, self.servers.values()))
        self.redis.stop()


def status(server: ServerProcess) -> dict[str, Any]:
    """The server's ``/api/cluster``."""
    found: dict[str, Any] = httpx.get(f"{server.url}/api/cluster", timeout=2).json()
    return found


def leads(server: ServerProcess, hall: str = HALL) -> bool:
    try:
        return bool(status(server)["halls"][hall]["leading"])
    except httpx.HTTPError:
        return False


def writer_is(server: ServerProcess, node: str, hall: str = HALL) -> bool:
    return bool(status(server)["halls"][hall]["writer"] == node)


def settled_on(servers: list[ServerProcess], node: str, hall: str = HALL) -> None:
    """Wait until every one of ``servers`` sees ``node`` write ``hall`` (after a start, the
    first process up takes every hall, then hands each to its preferred writer)."""
    wait_until(lambda: all(writer_is(s, node, hall) for s in servers), 10, f"{node} writing")


def writer_of(servers: Iterable[ServerProcess], hall: str = HALL) -> ServerProcess:
    """The one process that writes ``hall`` now (waiting up to 10 s for there to be one)."""
    servers = list(servers)
    return wait_until(lambda: next((s for s in servers if leads(s, hall)), None), 10, "a writer")


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def settle(servers: list[ServerProcess], url: str, hall: str = HALL) -> list[Recorded]:
    """Wait until every one of ``servers`` holds all of ``hall``'s journal (within 5 s); the
    journal's events."""
    deadline = time.monotonic() + 5
    while True:
        records = read_journal(url, hall)
        versions = [status(s)["halls"][hall]["version"] for s in servers]
        if set(versions) == {len(records)}:
            return records
        if time.monotonic() > deadline:
            clusters = [status(s) for s in servers]
            raise AssertionError(f"the journal holds {len(records)} events; {clusters}")
        time.sleep(0.05)


def read_journal(url: str, hall: str = HALL) -> list[Recorded]:
    """Every event of ``hall`` in the Redis at ``url``: the truth the tests check against."""

    async def read() -> list[Recorded]:
        journal = RedisJournal(url)
        try:
            return await journal.read(hall)
        finally:
            await journal.close()

    return asyncio.run(read())


def check_journal(records: list[Recorded], acked: Acked) -> dict[str, int]:
    """Nothing acknowledged lost, nothing done twice, numbering without gaps, nothing done by a
    refused request. Returns how many requests of each outcome there were (and how many of the
    unsure ones landed)."""
    assert [r.version for r in records] == list(range(1, len(records) + 1))
    issued = [r.event for r in records if isinstance(r.event, TicketIssued)]
    tickets = Counter(e.ticket for e in issued)
    assert max(tickets.values(), default=1) == 1, "a ticket issued twice"
    keys = Counter(e.request.key.rpartition("/")[2] for e in issued if e.request is not None)
    assert max(keys.values(), default=1) == 1, "one request made two tickets"
    by_key = {e.request.key.rpartition("/")[2]: e for e in issued if e.request is not None}
    for category in {e.category for e in issued}:
        seqs = sorted(e.seq for e in issued if e.category == category)
        assert seqs == list(range(1, len(seqs) + 1)), f"numbering of {category}: {seqs}"
    for key, ticket in acked.keys.items():
        assert key in by_key, f"acknowledged ticket {ticket} lost"
        assert by_key[key].ticket == ticket
        assert by_key[key].number == acked.issued[ticket]
    left = acked.refused & set(by_key)
    assert not left, f"refused as not_writer yet issued: {sorted(left)}"
    for kind, done in ((TicketCalled, acked.called), (ServiceStarted, acked.started)):
        made = Counter(r.event.ticket for r in records if isinstance(r.event, kind))
        assert max(made.values(), default=1) == 1, f"{kind.__name__} twice"
        assert done <= set(made), f"acknowledged {kind.__name__} lost"
    finished = Counter(r.event.ticket for r in records if isinstance(r.event, ServiceFinished))
    assert max(finished.values(), default=1) == 1 and acked.finished <= set(finished)
    return {
        "acked": len(acked.keys),
        "refused": len(acked.refused),
        "unsure": len(acked.unsure),
        "unsure_landed": len(acked.unsure & set(by_key)),
        "events": len(records),
    }


def lease_of(url: str, hall: str = HALL) -> str:
    """The hall's lease now, ``"<fence>|<node>"`` ("" for none): what its writer's appends
    carry (the journal's default prefix ``hall``)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        value = client.get(f"{{hall}}:lease:{hall}")
    finally:
        client.close()
    return value.decode() if isinstance(value, bytes) else ""


APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest().encode()
EVALSHA = re.compile(rb"\*(\d+)\r\n\$7\r\nEVALSHA\r\n")


def _bulks(stream: bytes, at: int, count: int) -> list[bytes] | None:
    """``count`` RESP bulk strings from ``at`` (None if the stream ends first)."""
    found = []
    for _ in range(count):
        end = stream.find(b"\r\n", at)
        if end < 0 or stream[at : at + 1] != b"$":
            return None
        size = int(stream[at + 1 : end])
        found.append(stream[end + 2 : end + 2 + size])
        at = end + 4 + size
    return found if at <= len(stream) else None


def fenced_events(streams: list[bytes], fence: str) -> list[AnyEvent]:
    """The events of the journal appends found in ``streams`` (what a process's connections
    sent to Redis) that carry ``fence``. An event as decided (its time to the microsecond, a
    ticket's random secret) is made once: the same command refused under an old fence and sent
    again under a new one is decided again, so an event in the journal equal to one of these
    was appended under ``fence``."""
    found = []
    for stream in streams:
        for match in EVALSHA.finditer(stream):
            args = _bulks(stream, match.end(), int(match[1]) - 1)
            if args is None or args[0] != APPEND_SHA:
                continue
            argv = args[2 + int(args[1]) :]  # hall, expected, token, schema, fence, events
            if argv[4].decode() == fence:
                found += [ev.decode(data) for data in argv[6::2]]
    return found


def landed(events: list[AnyEvent], records: list[Recorded]) -> list[AnyEvent]:
    """Those of ``events`` the journal holds."""
    held = [r.event for r in records]
    return [event for event in events if event in held]
