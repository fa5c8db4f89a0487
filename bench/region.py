"""The region's figures, measured against real ``hall serve`` processes on a private Redis.

The Redis runs with AOF, ``appendfsync always`` (tests/support/redis.py ``PrivateRedis``); the
servers are tests/support/server.py's ``ServerProcess`` with ``--redis --node-id
--lease-seconds 3 --no-speech`` and a data directory each.

    .venv/bin/python bench/region.py                   # all three, about 6 minutes
    .venv/bin/python bench/region.py --only failover --kills 5
    .venv/bin/python bench/region.py --only durable --seconds 5
    .venv/bin/python bench/region.py --only city --waiting 0 --keep /tmp/region
    .venv/bin/python bench/region.py --only city --no-view     # the control run

- ``failover``: three processes (``--lease-seconds 3``), six bench halls; four kiosk clients
  issue tickets on one hall (an ``Idempotency-Key`` each, sent round the processes, retried on
  the next one after any failure). The hall's writer (``GET /api/cluster``) is killed with
  SIGKILL; measured: from the kill to the first issue *sent after it* that a surviving process
  acknowledges. The killed process is restarted (same node id, data and port), and the next kill
  waits until every process agrees that each hall is written by its rendezvous-preferred node.
  At the end the hall's journal is read: every acknowledged ticket must be there once, no key
  may have made two tickets, and each category's numbers must run 1..n without a gap.
- ``durable``: the engine bench's busy-hall mix (bench/loadgen.py: windows call, start and
  finish, kiosks issue, closed loop) on eight halls at once, first through one process alone,
  then on eight other halls through two processes, each hall's windows and kiosks alternating
  between them (so about half the commands reach a follower and are forwarded to the writer).
- ``city``: bench/city.py's 300 halls (hall files and a region file written to a temporary
  directory, the simulated staff given a password and each hall a kiosk) served by two
  processes; a supervisor's ``/ws/region`` on the first, while clients on the second issue,
  call, start and finish at a fixed total rate across every hall (each hall's commands in
  sequence). A command's version is read from its hall's snapshot right after its reply; its
  latency is from the reply to the first city-view frame showing the hall at that version.
  ``GET /api/region`` is timed on both processes meanwhile. Start-up of the 300 halls is timed.
  Each hall starts with ``--waiting`` tickets in line (the views' wait forecasts cost more with
  a line); ``GET /api/halls`` every 50 ms on both processes shows how long their event loops
  stall; the leases lost are counted in the servers' logs. ``--no-view``: the same without the
  supervisor's feed and the GETs of /api/region.

Every figure is printed with the machine's load (the load average and the cores busy during the
measurement, ours included): on a shared machine the neighbours' share is in the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import city as city_bench
import httpx
import msgspec
import websockets
from loadgen import (
    KIOSK_TOKEN,
    PASSWORD,
    HttpConnection,
    HttpDriver,
    Snapshot,
    Workload,
    percentile,
    proc_cpu,
    system_busy,
)
from scenarios import _toml, bench_config, cheap_hash

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from displays.city import REFRESH_SECONDS  # noqa: E402
from hall.cluster.coordinator import preferred  # noqa: E402
from hall.domain.events import TicketIssued  # noqa: E402
from hall.journal.redis import RedisJournal  # noqa: E402
from tests.support.redis import PrivateRedis  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

LEASE_SECONDS = 3.0
FAILOVER_TARGET = 5.0
SUPERVISOR = "city"
KIOSK = "bench-kiosk"


# ------------------------------------------------------------------------------- the processes


class Machine:
    """The load over a measurement, said at its end: the CPU of the processes named (and this
    one's, the load generator's), the cores busy in all, the load average."""

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self.pids = pids or {}
        self.cpu = {name: proc_cpu(pid) for name, pid in self.pids.items()}
        self.own = time.process_time()
        self.busy, self.began = system_busy(), time.monotonic()

    def __str__(self) -> str:
        elapsed = max(time.monotonic() - self.began, 1e-9)
        used = {name: proc_cpu(pid) - self.cpu[name] for name, pid in self.pids.items()}
        used["bench"] = time.process_time() - self.own
        shares = ", ".join(f"{name} {100 * cpu / elapsed:.0f} %" for name, cpu in used.items())
        cores = (system_busy() - self.busy) / elapsed
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        return (
            f"CPU of a core: {shares}; {cores:.2f} of {os.cpu_count()} cores busy in all; "
            f"load average {load}"
        )


class Region:
    """``count`` hall servers on one Redis, node ids ``node-1``.. (stable across restarts)."""

    def __init__(self, workdir: Path, redis_url: str, count: int, halls: list[str]) -> None:
        self.servers = [
            ServerProcess(
                *("--redis", redis_url, "--node-id", f"node-{i}", "--no-speech"),
                *("--lease-seconds", str(LEASE_SECONDS), "--data", str(workdir / f"node-{i}")),
                *halls,
                log=workdir / f"node-{i}.log",
            )
            for i in range(1, count + 1)
        ]

    def node(self, server: ServerProcess) -> str:
        return f"node-{self.servers.index(server) + 1}"

    def start(self, server: ServerProcess, timeout: float = 600.0) -> float:
        began = time.monotonic()
        server.start(timeout)
        return time.monotonic() - began

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def live(self) -> list[ServerProcess]:
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]


def cluster_status(server: ServerProcess) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{server.url}/api/cluster", timeout=5).json()
    return found


def settled(region: Region, halls: list[str]) -> bool:
    """Every live process names, for every hall, the writer rendezvous hashing prefers among
    the live processes."""
    live = region.live()
    nodes = [region.node(s) for s in live]
    try:
        seen = [cluster_status(s)["halls"] for s in live]
    except (httpx.HTTPError, ValueError):
        return False
    return all(view[h]["writer"] == preferred(h, nodes) for view in seen for h in halls)


async def wait_settled(region: Region, halls: list[str], limit: float = 60.0) -> float:
    began = time.monotonic()
    while not await asyncio.to_thread(settled, region, halls):
        if time.monotonic() - began > limit:
            raise RuntimeError(f"the region did not settle in {limit:g} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - began


def writer_of(region: Region, hall: str) -> ServerProcess:
    for server in region.live():
        writer = cluster_status(server)["halls"][hall]["writer"]
        if writer is not None:
            return region.servers[int(writer.removeprefix("node-")) - 1]
    raise RuntimeError(f"hall {hall} has no writer")


def bench_halls(workdir: Path, names: list[str], windows: int) -> tuple[list[str], list[str]]:
    """Hall files of bench/scenarios.py's busy hall under ``names``; (--config args, categories)."""
    args: list[str] = []
    categories: list[str] = []
    for name in names:
        text, categories = bench_config(windows, hall=name)
        path = workdir / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        args += ["--config", str(path)]
    return args, categories


def stats_line(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    return (
        f"{name}: {len(ordered):,} commands, p50 {percentile(ordered, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(ordered, 0.99) * 1000:.1f} ms"
    )


# ------------------------------------------------------------------------------- failover


@dataclass
class Acked:
    key: str
    ticket: str
    sent: float  # the acknowledged attempt's start (monotonic)
    at: float
    server: int


@dataclass
class Issuing:
    """Kiosks issuing tickets on one hall round the processes, each retried until answered."""

    servers: list[ServerProcess]
    hall: str
    acked: list[Acked] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    running: bool = True

    async def kiosk(self, number: int, pause: float) -> None:
        headers = {"Authorization": f"Bearer {KIOSK_TOKEN}"}
        body = {"category": "general", "priority": "normal"}
        turn = number
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=1.0)) as client:
            while self.running:
                key = uuid.uuid4().hex
                while True:  # the same key until acknowledged: never two tickets for one
                    index = turn % len(self.servers)
                    turn += 1
                    sent = time.monotonic()
                    try:
                        response = await client.post(
                            f"{self.servers[index].url}/api/halls/{self.hall}/tickets",
                            json=body,
                            headers={**headers, "Idempotency-Key": key},
                        )
                    except httpx.HTTPError as exc:
                        self.failures[type(exc).__name__] += 1
                    else:
                        if response.status_code == 201:
                            ticket = response.json()["id"]
                            self.acked.append(Acked(key, ticket, sent, time.monotonic(), index))
                            break
                        self.failures[f"{response.status_code} {response.json().get('error')}"] += 1
                    await asyncio.sleep(0.02)
                await asyncio.sleep(pause)

    def first_after(self, moment: float) -> Acked | None:
        return next((a for a in self.acked if a.sent >= moment), None)


async def _failover(workdir: Path, redis: PrivateRedis, kills: int) -> list[str]:
    halls = [f"hall-{i}" for i in range(1, 7)]
    target = halls[0]
    config_args, _ = bench_halls(workdir, halls, windows=2)
    region = Region(workdir, redis.url, 3, config_args)
    lines: list[str] = []
    try:
        for server in region.servers:
            region.start(server)
        await wait_settled(region, halls)
        machine = Machine()
        issuing = Issuing(region.servers, target)
        kiosks = [asyncio.create_task(issuing.kiosk(k, 0.1)) for k in range(4)]
        times: list[float] = []
        restarts: list[float] = []
        rebalances: list[float] = []
        gaps: list[float] = []
        try:
            for kill in range(kills):
                await asyncio.sleep(1.0)  # a steady stream before the kill
                victim = await asyncio.to_thread(writer_of, region, target)
                killed = time.monotonic()
                victim.kill9()
                while (first := issuing.first_after(killed)) is None:
                    if time.monotonic() - killed > 60:
                        raise RuntimeError(f"kill {kill + 1}: no command acknowledged in 60 s")
                    await asyncio.sleep(0.01)
                times.append(first.at - killed)
                print(
                    f"  kill {kill + 1}/{kills}: {region.node(victim)} killed, first ack "
                    f"{times[-1]:.2f} s later via {region.node(region.servers[first.server])}",
                    flush=True,
                )
                restarted = time.monotonic()
                restarts.append(await asyncio.to_thread(region.start, victim))
                rebalances.append(await wait_settled(region, halls))
                await asyncio.sleep(0.5)
                window = [a.at for a in issuing.acked if a.at >= restarted]
                gaps.append(max((b - a for a, b in itertools.pairwise(window)), default=0.0))
        finally:
            issuing.running = False
            await asyncio.gather(*kiosks, return_exceptions=True)
        lines.append(str(machine))
    finally:
        region.stop()
    lost, twice, gapped, issued = await _journal_check(redis.url, target, issuing.acked)
    ordered = sorted(times)
    verdict = "PASS" if ordered and ordered[-1] <= FAILOVER_TARGET else "MISS"
    lines[:0] = [
        f"failover over {len(times)} kills of {target}'s writer (3 processes, lease "
        f"{LEASE_SECONDS:g} s): p50 {percentile(ordered, 0.5):.2f} s, p99 "
        f"{percentile(ordered, 0.99):.2f} s, max {ordered[-1]:.2f} s "
        f"(target <= {FAILOVER_TARGET:g} s; p99 / target "
        f"{percentile(ordered, 0.99) / FAILOVER_TARGET:.2f})"
        f"  {verdict}",
        f"  {len(issuing.acked):,} issues acknowledged, {issued:,} tickets in the journal: "
        f"lost {lost}, applied twice {twice}, numbering gaps {gapped}"
        f"  {'PASS' if lost == twice == gapped == 0 else 'FAIL'}",
        f"  refusals and failures seen by the clients (then retried): {dict(issuing.failures)}",
        f"  restart of the killed process (to serving) p50 {statistics.median(restarts):.1f} s; "
        f"then every hall on its preferred writer after p50 {statistics.median(rebalances):.1f} s"
        f" (max {max(rebalances):.1f}); longest pause between acks while it rejoined: p50 "
        f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s",
    ]
    return lines


async def _journal_check(url: str, hall: str, acked: list[Acked]) -> tuple[int, int, int, int]:
    """(acknowledged tickets missing, keys that made two tickets, numbering gaps, tickets)."""
    journal = RedisJournal(url)
    try:
        records = await journal.read(hall)
    finally:
        await journal.close()
    issued = [r.event for r in records if isinstance(r.event, TicketIssued)]
    tickets = {e.ticket for e in issued}
    keys = Counter(e.request.key.rpartition("/")[2] for e in issued if e.request is not None)
    lost = sum(a.ticket not in tickets for a in acked)
    twice = sum(n - 1 for n in keys.values() if n > 1)
    numbers: dict[tuple[object, str], list[int]] = defaultdict(list)
    for event in issued:
        numbers[(event.day, event.category)].append(event.seq)
    gapped = sum(sorted(s) != list(range(1, len(s) + 1)) for s in numbers.values())
    return lost, twice, gapped, len(issued)


# ------------------------------------------------------------------------------- durable


class _NoProbe:
    """The load generator's probe (loadgen.Probe) for ``hall serve``, which has no bench routes:
    the CPU is counted around the run instead."""

    async def snapshot(self) -> Snapshot:
        return Snapshot(at=asyncio.get_running_loop().time(), system_cpu=system_busy())

    async def append_times(self, start: int, end: int) -> list[float]:
        return []


class _Timed:
    """A driver (loadgen.Driver) that times each command and says whether the process it went
    to writes the hall (direct) or forwards it (forwarded)."""

    def __init__(self, driver: HttpDriver, windows: list[bool], kiosks: list[bool]) -> None:
        self.driver, self.windows, self.kiosks = driver, windows, kiosks
        self.latencies: dict[bool, list[float]] = {True: [], False: []}  # forwarded? -> s
        self.measuring = (0.0, 0.0)

    async def _timed(self, forwarded: bool, work: Any) -> Any:
        began = time.monotonic()
        result = await work
        if self.measuring[0] <= began < self.measuring[1]:
            self.latencies[forwarded].append(time.monotonic() - began)
        return result

    async def login(self, window: int) -> None:
        await self.driver.login(window)

    async def issue(self, kiosk: int, category: str, priority: str) -> None:
        await self._timed(self.kiosks[kiosk], self.driver.issue(kiosk, category, priority))

    async def call_next(self, window: int) -> bool:
        called: bool = await self._timed(self.windows[window], self.driver.call_next(window))
        return called

    async def start(self, window: int) -> None:
        await self._timed(self.windows[window], self.driver.start(window))

    async def finish(self, window: int) -> None:
        await self._timed(self.windows[window], self.driver.finish(window))


async def _busy_halls(
    region: Region, redis: int, halls: list[str], categories: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """The closed-loop mix on ``halls``, each hall's clients alternating over the live
    processes; commands/s, latencies (forwarded and direct) and the processes' CPU."""
    live = region.live()
    status = await asyncio.to_thread(cluster_status, live[0])
    nodes = [region.node(s) for s in live]
    timed: list[_Timed] = []
    workloads = []
    for number, hall in enumerate(halls):
        driver = HttpDriver("127.0.0.1", live[0].port, args.windows, 2)
        driver.base = f"/api/halls/{hall}"
        writer = status["halls"][hall]["writer"]

        def spread(
            count: int, offset: int, writer: str = writer
        ) -> tuple[list[HttpConnection], list[bool]]:
            chosen = [(i + offset) % len(live) for i in range(count)]
            conns = [HttpConnection("127.0.0.1", live[c].port) for c in chosen]
            return conns, [nodes[c] != writer for c in chosen]

        driver.window_conns, window_forwarded = spread(args.windows, number)
        driver.kiosk_conns, kiosk_forwarded = spread(2, number)
        timed.append(_Timed(driver, window_forwarded, kiosk_forwarded))
        workload = Workload(
            timed[-1],
            _NoProbe(),
            categories,
            windows=args.windows,
            kiosks=2,
            backlog=50,
            seed=number,
        )
        workloads.append(workload)
    await asyncio.gather(*(w.setup() for w in workloads))
    warmup = 2.0
    began = time.monotonic()
    for one in timed:
        one.measuring = (began + warmup, began + warmup + args.seconds)
    pids = {region.node(s): s.process.pid for s in live if s.process is not None}
    said: list[str] = []

    async def machine() -> None:
        await asyncio.sleep(max(0.0, began + warmup - time.monotonic()))
        measured = Machine({**pids, "redis": redis})
        await asyncio.sleep(max(0.0, began + warmup + args.seconds - time.monotonic()))
        said.append(str(measured))

    _, *summaries = await asyncio.gather(
        machine(), *(w.closed_loop(args.seconds, warmup) for w in workloads)
    )
    forwarded = [s for t in timed for s in t.latencies[True]]
    direct = [s for t in timed for s in t.latencies[False]]
    return {
        "rate": (len(forwarded) + len(direct)) / args.seconds,
        "all": forwarded + direct,
        "forwarded": forwarded,
        "direct": direct,
        "machine": said[0],
        "errors": sum(s["errors"] for s in summaries),
        "first_error": next((s["first_error"] for s in summaries if s["first_error"]), None),
    }


async def _durable(workdir: Path, redis: PrivateRedis, args: argparse.Namespace) -> list[str]:
    alone = [f"one-{i}" for i in range(1, args.halls + 1)]
    pair = [f"two-{i}" for i in range(1, args.halls + 1)]
    config_args, categories = bench_halls(workdir, alone + pair, windows=args.windows)
    region = Region(workdir, redis.url, 2, config_args)
    assert redis.process is not None
    try:
        region.start(region.servers[0])
        await wait_settled(region, alone + pair)
        one = await _busy_halls(region, redis.process.pid, alone, categories, args)
        region.start(region.servers[1])
        await wait_settled(region, alone + pair)
        two = await _busy_halls(region, redis.process.pid, pair, categories, args)
    finally:
        region.stop()
    lines = [
        f"durable commands/s, Redis AOF appendfsync always, {args.halls} halls x "
        f"({args.windows} windows + 2 kiosks), closed loop, {args.seconds:g} s:"
    ]
    for name, found in (("1 process ", one), ("2 processes", two)):
        lines += [
            f"  {name}: {found['rate']:,.0f} commands/s; "
            + stats_line("all", found["all"])
            + f"; errors {found['errors']} {found['first_error'] or ''}",
            f"    {found['machine']}",
        ]
    lines += [
        f"  2 processes / 1 process: {two['rate'] / one['rate']:.2f}",
        "  " + stats_line("forwarded (follower -> writer)", two["forwarded"]),
        "  " + stats_line("direct (to the writer)", two["direct"]),
        f"  forwarded / direct p50: "
        f"{statistics.median(two['forwarded']) / statistics.median(two['direct']):.2f}",
    ]
    return lines


# ------------------------------------------------------------------------------- city view


def write_region(directory: Path) -> list[Any]:
    """bench/city.py's 300 halls as hall files under ``directory`` (the simulated staff with the
    bench's password, a kiosk of the bench's token, no issuing pause) and a region file naming
    them: the centre as the city's, each town's hall, the villages spread over the towns."""
    configs = city_bench.configs(city_bench.city())
    password = cheap_hash(PASSWORD)
    digest = hashlib.sha256(KIOSK_TOKEN.encode()).hexdigest()
    kiosk = {"id": KIOSK, "kind": "kiosk", "token_sha256": digest}
    (directory / "halls").mkdir(parents=True, exist_ok=True)
    for config in configs:
        table = msgspec.to_builtins(config)
        table["staff"] = [{**s, "password_hash": password} for s in table["staff"]]
        table["devices"] = [*table["devices"], kiosk]
        table["issuing"] = {**table["issuing"], "device_seconds": 0}
        text = "\n".join(f"{key} = {_toml(value)}" for key, value in table.items() if value)
        (directory / "halls" / f"{config.hall.id}.toml").write_text(text, encoding="utf-8")
    ids = [c.hall.id for c in configs]
    towns = [i for i in ids if i.startswith("town-")]
    villages = [i for i in ids if i.startswith("village-")]
    lines = [
        '[region]\nid = "bench-city"\nname = "基准市"\nname_en = "Bench City"\n',
        f'[city]\nhalls = ["halls/{ids[0]}.toml"]\n',
    ]
    for number, town in enumerate(towns):
        lines.append(
            f'[[towns]]\nid = "{town}"\nname = "{town}"\nname_en = "{town}"\n'
            f'halls = ["halls/{town}.toml"]\n'
        )
        for village in villages[number :: len(towns)]:
            lines.append(
                f'[[towns.villages]]\nid = "{village}"\nname = "{village}"\n'
                f'name_en = "{village}"\nhalls = ["halls/{village}.toml"]\n'
            )
    lines.append(
        f'[[supervisors]]\nusername = "{SUPERVISOR}"\nname = "Bench"\n'
        f"password_hash = {json.dumps(password)}\n"
    )
    (directory / "region.toml").write_text("\n".join(lines), encoding="utf-8")
    return configs


def versions(view: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """Each hall's version in a city view (the unit tree)."""
    for hall in view["halls"]:
        yield hall["id"], hall["version"]
    for unit in view["units"]:
        yield from versions(unit)


@dataclass
class Seen:
    """The supervisor's feed: when each frame came, and each hall's version in it."""

    frames: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def shown(self, hall: str, version: int, after: float) -> float | None:
        """Seconds from ``after`` to the first frame with the hall at ``version`` or later
        (0 if one came before)."""
        for at, halls in self.frames:
            if halls.get(hall, 0) >= version:
                return max(0.0, at - after)
        return None


async def watch(url: str, token: str, seen: Seen, stop: asyncio.Event) -> None:
    address = url.replace("http://", "ws://") + f"/ws/region?token={token}"
    async with websockets.connect(address, max_size=2**26) as socket:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    raw = await socket.recv()
                    at = time.monotonic()
                    frame = json.loads(raw)
                    if frame.get("type") == "view":
                        seen.frames.append((at, dict(versions(frame["view"]["city"]))))


@dataclass
class Command:
    hall: str
    at: float  # acknowledged
    version: int
    took: float  # from sending it


@dataclass
class HallStream:
    """One hall's visitors and its first window through one process, in sequence: issue,
    call-next, start, finish; each command's version read from the hall's snapshot."""

    client: httpx.AsyncClient
    base: str
    config: Any
    refused: list[str]  # the bodies of 503s at login

    @property
    def path(self) -> str:
        return f"{self.base}/api/halls/{self.config.hall.id}"

    async def login(self, waiting: int) -> list[tuple[str, dict[str, str], Any]]:
        """Log in at the first window and issue ``waiting`` tickets; the cycle of commands."""
        window = self.config.windows[0]
        for _ in range(5):  # 503 (no answer in time, nothing done): retry, as a client does
            login = await self.client.post(
                f"{self.path}/windows/{window.id}/login",
                json={"username": self.config.staff[0].username, "password": PASSWORD},
            )
            if login.status_code != 503:
                break
            self.refused.append(login.text[:200])
        login.raise_for_status()
        staff = {"Authorization": f"Bearer {login.json()['token']}"}
        kiosk = {"Authorization": f"Bearer {KIOSK_TOKEN}"}
        for number in range(waiting):  # a line, as in the day: the views' forecasts cost more
            category = self.config.categories[number % len(self.config.categories)].id
            issued = await self.client.post(
                f"{self.path}/tickets", json={"category": category}, headers=kiosk
            )
            issued.raise_for_status()
        return [
            ("tickets", kiosk, {"category": window.categories[0], "priority": "normal"}),
            (f"windows/{window.id}/call-next", staff, None),
            (f"windows/{window.id}/start", staff, None),
            (f"windows/{window.id}/finish", staff, {}),
        ]

    async def run(
        self,
        steps: list[tuple[str, dict[str, str], Any]],
        rate: float,
        until: float,
        done: list[Command],
        failures: Counter[str],
    ) -> None:
        """Commands at ``rate`` a second (Poisson) until ``until``."""
        hall = self.config.hall.id
        rng = random.Random(hall)
        step = 0
        await asyncio.sleep(rng.expovariate(rate))
        while time.monotonic() < until:
            route, headers, body = steps[step]
            sent = time.monotonic()
            response = await self.client.post(f"{self.path}/{route}", json=body, headers=headers)
            acked = time.monotonic()
            if response.status_code in (200, 201):
                called = step != 1 or response.json().get("ticket") is not None
                step = (step + 1) % len(steps) if called else 0
                snapshot = await self.client.get(f"{self.path}/snapshot")
                done.append(Command(hall, acked, snapshot.json()["version"], acked - sent))
            else:
                failures[f"{route.rpartition('/')[2]} {response.status_code}"] += 1
                step = 0
            await asyncio.sleep(rng.expovariate(rate))


async def supervisor(server: ServerProcess) -> str:
    async with httpx.AsyncClient(timeout=30.0) as client:
        login = await client.post(
            f"{server.url}/api/region/login", json={"username": SUPERVISOR, "password": PASSWORD}
        )
        login.raise_for_status()
        token: str = login.json()["token"]
        return token


async def timed_gets(
    url: str, until: float, into: list[float], token: str | None = None, pause: float = 0.25
) -> None:
    """``GET url`` every ``pause`` s until ``until``, timed (with the supervisor's ``token``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30.0) as client:
        while time.monotonic() < until:
            began = time.monotonic()
            response = await client.get(url, headers=headers)
            response.raise_for_status()
            into.append(time.monotonic() - began)
            await asyncio.sleep(pause)


async def stalls(servers: list[ServerProcess], seconds: float) -> str:
    """The longest answers of the cheapest route (the list of halls) on each process over
    ``seconds``: its event loop blocked at least that long."""
    until = time.monotonic() + seconds
    found: list[list[float]] = [[] for _ in servers]
    await asyncio.gather(
        *(
            timed_gets(f"{server.url}/api/halls", until, times, pause=0.05)
            for server, times in zip(servers, found, strict=True)
        )
    )
    return "; ".join(
        f"{name}: p99 {percentile(sorted(f), 0.99) * 1000:.0f} ms, max {max(f) * 1000:.0f} ms"
        for name, f in zip(("watched node", "loaded node"), found, strict=True)
    )


async def _city(workdir: Path, redis: PrivateRedis, args: argparse.Namespace) -> list[str]:
    configs = write_region(workdir)
    region = Region(workdir, redis.url, 2, ["--region", str(workdir / "region.toml")])
    halls = [c.hall.id for c in configs]
    lines: list[str] = []
    try:
        watched, loaded = region.servers
        first = region.start(watched)
        second = region.start(loaded)
        rebalance = await wait_settled(region, halls, limit=300)
        lines.append(
            f"city view: {len(halls)} halls in one region file; start-up to serving: "
            f"{first:.1f} s (the first process, alone), {second:.1f} s (the second); every "
            f"hall on its preferred writer {rebalance:.1f} s later"
        )
        # A session is the process's own (hall/api/auth.py keeps them in its data directory):
        # the supervisor logs in to each.
        token, other = await supervisor(watched), await supervisor(loaded)
        seen, stop = Seen(), asyncio.Event()
        watching = [] if args.no_view else [watch(watched.url, token, seen, stop)]
        watcher = asyncio.gather(*watching)
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends: else a command
        # after a long pause may race the server closing its connection.
        limits = httpx.Limits(max_connections=len(configs) + 10, keepalive_expiry=2.0)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
            refused: list[str] = []
            streams = [HallStream(client, loaded.url, c, refused) for c in configs]
            steps = await asyncio.gather(*(s.login(args.waiting) for s in streams))
            pids = [s.process.pid for s in (watched, loaded) if s.process is not None]
            assert redis.process is not None
            named = {"watched node": pids[0], "loaded node": pids[1], "redis": redis.process.pid}
            idle = Machine(named)  # the view's refresh of every hall, with nothing happening
            probed = await stalls([watched, loaded], REFRESH_SECONDS + 1)
            lines += [
                f"  no load, {'nobody' if args.no_view else 'the supervisor'} watching: {idle}",
                f"    GET /api/halls (the loop's stalls): {probed}",
            ]
            machine = Machine(named)
            until = time.monotonic() + args.seconds
            done: list[Command] = []
            failures: Counter[str] = Counter()
            gets: dict[str, list[float]] = {"watched": [], "loaded": []}
            per_hall = args.rate / len(configs)
            *_, probed = await asyncio.gather(
                *(
                    s.run(st, per_hall, until, done, failures)
                    for s, st in zip(streams, steps, strict=True)
                ),
                *(
                    ()
                    if args.no_view
                    else (
                        timed_gets(f"{watched.url}/api/region", until, gets["watched"], token),
                        timed_gets(f"{loaded.url}/api/region", until, gets["loaded"], other),
                    )
                ),
                stalls([watched, loaded], args.seconds),
            )
        await asyncio.sleep(2.0)  # the last commands' frames
        stop.set()
        await watcher
        lines += [
            f"  under load: {machine}",
            f"    GET /api/halls (the loop's stalls): {probed}",
        ]
    finally:
        region.stop()
    lost = {
        region.node(s): s.log.read_text(errors="replace").count(" lease lost by ")
        for s in region.servers
    }
    lines.append(f"  halls' leases lost (a tick that did not renew in time), from the logs: {lost}")
    latencies = [seen.shown(c.hall, c.version, c.at) for c in done]
    shown = sorted(s for s in latencies if s is not None)
    lines += [
        f"  load: {len(done):,} commands in {args.seconds:g} s through the second process "
        f"({len(done) / args.seconds:.0f}/s over {len(halls)} halls, {args.waiting} waiting in "
        f"each at the start; refused: {dict(failures)}; "
        f"window logins answered 503 and retried: {len(refused)} {refused[:1]}); "
        f"{len(seen.frames)} city-view frames; "
        + stats_line("the commands (sent -> acknowledged)", [c.took for c in done]),
        f"  command acknowledged -> the supervisor's /ws/region shows it (first process): "
        f"p50 {percentile(shown, 0.5) * 1000:.0f} ms, p99 {percentile(shown, 0.99) * 1000:.0f} ms,"
        f" max {percentile(shown, 1.0) * 1000:.0f} ms; never shown {len(latencies) - len(shown)}",
        "  "
        + stats_line("GET /api/region on the first process", gets["watched"]).replace(
            "commands", "requests"
        ),
        "  "
        + stats_line("GET /api/region on the loaded process", gets["loaded"]).replace(
            "commands", "requests"
        ),
    ]
    return lines


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("failover", "durable", "city"), action="append")
    parser.add_argument("--kills", type=int, default=20, help="failover: kills (default 20)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--halls", type=int, default=8, help="durable: busy halls per run")
    parser.add_argument("--windows", type=int, default=6, help="durable: windows per hall")
    parser.add_argument(
        "--rate", type=float, default=60.0, help="city: commands/s over all halls (default 60)"
    )
    parser.add_argument(
        "--waiting", type=int, default=10, help="city: tickets waiting in each hall (default 10)"
    )
    parser.add_argument(
        "--no-view",
        action="store_true",
        help="city: the same load with nobody watching the city view (the control run)",
    )
    parser.add_argument(
        "--keep", type=Path, help="work in DIR/PART (hall files, data, the servers' logs), kept"
    )
    args = parser.parse_args(argv)
    parts = args.only or ["failover", "durable", "city"]
    for part in parts:
        with (
            tempfile.TemporaryDirectory(prefix=f"hall-region-{part}-") as tmp,
            PrivateRedis() as redis,
        ):
            workdir = Path(tmp) if args.keep is None else args.keep / part
            workdir.mkdir(parents=True, exist_ok=True)
            print(f"{part}: {time.strftime('%H:%M:%S')}", flush=True)
            if part == "failover":
                lines = asyncio.run(_failover(workdir, redis, args.kills))
            elif part == "durable":
                lines = asyncio.run(_durable(workdir, redis, args))
            else:
                lines = asyncio.run(_city(workdir, redis, args))
            print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
