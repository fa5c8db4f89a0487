"""A city day over the Redis journal: how fast one process rebuilds 300 halls from their events.

    .venv/bin/python bench/city.py              # generates the day once (a minute or two), cached
    .venv/bin/python bench/city.py --runs 5     # median of five replays

The city (:func:`city`): one city centre (``scheduling.workloads.big``: 190 windows), 20 town
halls (``scheduling.generator``'s days: 5-20 windows, 3-8 categories, surges, lunch, no-shows,
abandonment) and 279 village stations (``config/town.toml`` cut down to 1-3 windows, at 50-90 %
load); the centre's size makes the day about :data:`TICKETS` tickets in all. Each hall's day runs
through the real core (``scheduling.simulator``: every command decided and applied by
``hall.domain``), with the pad's rating after each finished transaction (a level, or "not
rated"); the events go through :class:`RedisJournal` into a private ``redis-server`` (AOF) whose
directory is cached under ``$HALL_BENCH_DIR`` (default /var/tmp/hall-bench) and restarted on the
next run, so only the first run generates.

Figures (one process, one event loop, the private Redis on the same machine):

- ``replay``: every hall's :meth:`HallEngine.start` at once, from its events (no checkpoint: the
  ones a start saves are deleted after each run), until all 300 take commands. Target <= 10 s.
- the same work in phases, hall after hall, to say where the time goes: the Redis reads (the
  raw stream entries), decoding them into events, and applying them (the state, the service
  times and the checkpoint's notes, as ``HallEngine._replay`` does).
- the resident memory of the process holding the 300 halls' states.

The issue's other figures (the city view's update latency under load, durable commands/s
across two processes, failover p50/p99 over 20 kills) need real ``hall serve`` processes:
bench/region.py, which serves these 300 halls from a region file of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

import msgspec
import redis

from hall import config as hall_config_file
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain import events as ev
from hall.domain.commands import AnyCommand, Finish, IssueTicket, MarkPrinted, Rate
from hall.domain.events import AnyEvent, ServiceFinished
from hall.domain.state import HallState, apply
from hall.engine import HallEngine
from hall.journal.redis import RedisJournal
from hall.recovery import Checkpoints
from scheduling import generator, simulator, workloads
from scheduling.estimate import ServiceTimes
from scheduling.policy import Policy, policy_named
from scheduling.simulator import Workload, day_seed, sim_config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadgen import system_busy  # noqa: E402

from tests.support.redis import PrivateRedis  # noqa: E402

TICKETS = 100_000
TOWNS = 20
VILLAGES = 279
SEED = 20260302
PREFIX = "city"
CHUNK = 1000  # events per append while generating
FORMAT = 2  # bump when the generated day changes: a new cache directory
TARGET_SECONDS = 10.0
CENTRE_LOAD = 0.85
PRINTER = "printer-1"
# Halls starting at once: a RedisJournal's client holds at most 100 connections (redis-py's
# default) and refuses a command beyond them instead of waiting, so 300 at once fail.
STARTING = 32
EVENING = clock_time(15, 0)  # UTC: 23:00 in Shanghai, the simulated day's evening
# The pad's rating after each finished transaction: 5 (very satisfied) .. 1, None: not rated.
LEVELS = (5, 4, 3, 2, 1, None)
LEVEL_WEIGHTS = (70, 14, 4, 1.5, 0.5, 10)


# ------------------------------------------------------------------------------- the city


def _renamed(workload: Workload, hall: str) -> Workload:
    config = workload.config
    config = msgspec.structs.replace(config, hall=msgspec.structs.replace(config.hall, id=hall))
    return dataclasses.replace(workload, name=hall, config=config)


def _village(number: int, rng: random.Random) -> Workload:
    """The town hall file, cut down to 1-3 of its comprehensive windows (the devices of the
    windows kept), at a load of its own."""
    table = hall_config_file.read_toml((ROOT / "config/town.toml").read_bytes(), "town.toml")
    windows: list[dict[str, object]] = table["windows"]  # type: ignore[assignment]
    kept = windows[: rng.randint(1, 3)]
    ids = {str(w["id"]) for w in kept}
    devices: list[dict[str, object]] = table.get("devices", [])  # type: ignore[assignment]
    table["windows"] = kept
    table["devices"] = [d for d in devices if d.get("window") in (None, *ids)]
    table["hall"] = {**table["hall"], "id": f"village-{number:03d}"}  # type: ignore[dict-item]
    config = hall_config_file.convert(table, HallConfig, "town.toml")
    return workloads.from_config(config, load=rng.uniform(0.6, 0.95))


def expected_tickets(workload: Workload) -> float:
    return sum(sum(rates) * workload.period_minutes for rates in workload.rates.values())


def city() -> list[Workload]:
    """The city's 300 hall days (the centre first), the same every time."""
    rng = random.Random(SEED)
    villages = [_village(i + 1, rng) for i in range(VILLAGES)]
    towns = [
        _renamed(generator.generate(day_seed(SEED, i)), f"town-{i + 1:02d}") for i in range(TOWNS)
    ]
    return [
        _centre(TICKETS - sum(expected_tickets(w) for w in villages + towns)),
        *towns,
        *villages,
    ]


def _centre(tickets: float) -> Workload:
    """The city centre: ``workloads.big``'s layout (comprehensive and specialised windows, 8
    categories) with as many windows as ``tickets`` need at 85 % load."""
    layout = workloads.big().config
    categories = [(c.id, c.mean_service_minutes, c.target_wait_minutes) for c in layout.categories]
    profiles = [list(w.categories) for w in layout.windows]
    one = workloads.from_config(layout, load=CENTRE_LOAD)
    windows = round(len(profiles) * tickets / expected_tickets(one))
    config = workloads.hall_config(
        "city-centre", categories, [profiles[i % len(profiles)] for i in range(windows)]
    )
    return workloads.from_config(config, load=CENTRE_LOAD)


def configs(days: list[Workload]) -> list[HallConfig]:
    return [sim_config(day.config) for day in days]


@contextlib.contextmanager
def recording(into: list[AnyEvent], rng: random.Random) -> Iterator[None]:
    """Collect the events the simulator's commands make, with what the devices add: the kiosk's
    printer acknowledges each ticket, and the window's pad rates each finished transaction. The
    simulator keeps its events to itself (it needs only the state), so its ``execute`` is
    wrapped for the duration: the events are still the core's."""
    real = simulator.execute

    def execute(
        state: HallState, command: AnyCommand, now: datetime, policy: Policy
    ) -> list[AnyEvent]:
        if isinstance(command, IssueTicket):  # from the kiosk, which prints it
            command = msgspec.structs.replace(command, printer=PRINTER)
        made = real(state, command, now, policy)
        into.extend(made)
        if isinstance(command, IssueTicket):
            printed = MarkPrinted(ticket=made[-1].ticket, printer=PRINTER)  # type: ignore[union-attr]
            into.extend(real(state, printed, now, policy))
        if isinstance(command, Finish):
            for event in made:
                if isinstance(event, ServiceFinished):
                    level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
                    reasons = (state.config.rating.reasons[0].code,) if level in (1, 2) else ()
                    rate = Rate(
                        ticket=event.ticket,
                        level=level,
                        reasons=reasons,
                        by=f"pad-{command.window}",
                        window=command.window,
                    )
                    into.extend(real(state, rate, now, policy))
        return made

    simulator.execute = execute
    try:
        yield
    finally:
        simulator.execute = real


def simulated(day: Workload, seed: int) -> list[AnyEvent]:
    """The day's events, as the simulator's commands made them."""
    events: list[AnyEvent] = []
    with recording(events, random.Random(f"rating-{seed}")):
        simulator.simulate_day(day, policy_named(day.config.hall.policy), seed, estimates=False)
    return events


async def generate(
    url: str, days: list[Workload], prefix: str = PREFIX, quiet: bool = False
) -> tuple[int, int]:
    """Every hall's day into the journal at ``url`` under ``prefix``; (tickets, events)."""
    journal = RedisJournal(url, prefix)
    tickets = events = 0
    began = time.perf_counter()
    try:
        for number, day in enumerate(days):
            made = simulated(day, day_seed(SEED, 1000 + number))
            for i in range(0, len(made), CHUNK):
                await journal.append(day.config.hall.id, made[i : i + CHUNK], i)
            tickets += sum(isinstance(e, ev.TicketIssued) for e in made)
            events += len(made)
            if not quiet:
                print(
                    f"  {number + 1}/{len(days)} halls, {tickets:,} tickets, {events:,} events,"
                    f" {time.perf_counter() - began:.0f} s",
                    end="\r",
                    flush=True,
                )
    finally:
        await journal.close()
    if not quiet:
        print()
    return tickets, events


@contextlib.contextmanager
def cached_city(days: list[Workload]) -> Iterator[str]:
    """A private Redis holding the city day (generated on the first run); yields its URL."""
    cache = Path(os.environ.get("HALL_BENCH_DIR", "/var/tmp/hall-bench"))
    directory = cache / f"city-{len(days)}h-{TICKETS}t-f{FORMAT}-s{ev.SCHEMA_VERSION}"
    ready = directory / "READY"
    if not ready.exists():
        with contextlib.suppress(FileNotFoundError):
            for path in sorted(directory.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    with PrivateRedis(directory) as server:
        if not ready.exists():
            print(f"generating the city day into {directory} (once)")
            tickets, events = asyncio.run(generate(server.url, days))
            client = redis.Redis.from_url(server.url)
            try:  # an RDB-prefixed AOF: the next start loads it in a second, not a replay
                client.bgrewriteaof()
                while client.info("persistence")["aof_rewrite_in_progress"]:
                    time.sleep(0.1)
            finally:
                client.close()
            ready.write_text(f"{tickets} tickets\n{events} events\n")
        yield server.url


# ------------------------------------------------------------------------------- the figures


def rss_mb() -> float:
    """This process's resident memory now, MB (from /proc; 0 where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def drop_checkpoints(url: str) -> int:
    """Delete the checkpoints a start saved: every replay must start from the events."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="{" + PREFIX + "}:checkpoint:*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


def _evening() -> datetime:
    return datetime.combine(Workload.day, EVENING, UTC)


async def _bounded(gate: asyncio.Semaphore, work: Awaitable[None]) -> None:
    async with gate:
        await work


@dataclasses.dataclass
class Replay:
    seconds: float
    cpu: float  # this process's CPU seconds (Redis's are its own)
    events: int
    rss_before: float
    rss_after: float


async def replay(url: str, configs: list[HallConfig]) -> Replay:
    """Every hall's engine started at once in this event loop; checks each reached the
    journal's version, then stops them and deletes the checkpoints they saved."""
    drop_checkpoints(url)
    journal = RedisJournal(url, PREFIX)
    try:
        versions = {c.hall.id: await journal.version(c.hall.id) for c in configs}
        gc.collect()
        before = rss_mb()
        # The clock stays on the simulated day and the day check never comes: a start must not
        # append (a new day's DayStarted would change the cached journal).
        engines = [
            HallEngine(config, journal, Bus(), clock=_evening, day_check_seconds=1e9)
            for config in configs
        ]
        gate = asyncio.Semaphore(STARTING)
        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(_bounded(gate, engine.start()) for engine in engines))
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        gc.collect()
        after = rss_mb()
        for engine in engines:
            if engine.state.version != versions[engine.hall]:
                raise AssertionError(
                    f"{engine.hall}: replayed to {engine.state.version}, "
                    f"the journal holds {versions[engine.hall]}"
                )
        await asyncio.gather(*(engine.stop() for engine in engines))
        del engines
    finally:
        await journal.close()
        drop_checkpoints(url)
    return Replay(seconds, cpu, sum(versions.values()), before, after)


async def phases(url: str, configs: list[HallConfig]) -> dict[str, float]:
    """The replay's work hall after hall, timed apart: the Redis reads of the raw entries, their
    decoding into events, and folding them as ``HallEngine._replay`` does."""
    journal = RedisJournal(url, PREFIX)
    spent = dict.fromkeys(("read", "decode", "apply"), 0.0)
    try:
        for config in configs:
            hall = config.hall.id
            began = time.perf_counter()
            pages = await journal._pages(hall, 1, None)
            read = time.perf_counter()
            records = journal._decoded(pages)
            decoded = time.perf_counter()
            state, times = HallState.initial(config), ServiceTimes.from_config(config)
            checkpoints = Checkpoints(config, journal)
            for record in records:
                checkpoints.touch(record.event, state)
                apply(state, record.event)
                times.update(state, record.event)
            done = time.perf_counter()
            spent["read"] += read - began
            spent["decode"] += decoded - read
            spent["apply"] += done - decoded
    finally:
        await journal.close()
    return spent


async def measure(url: str, configs: list[HallConfig], runs: int) -> None:
    busy, began = system_busy(), time.monotonic()
    replays = [await replay(url, configs) for _ in range(runs)]
    spent = await phases(url, configs)
    machine = (system_busy() - busy) / (time.monotonic() - began)
    events = replays[0].events
    seconds = statistics.median(r.seconds for r in replays)
    print(
        f"city day: {len(configs)} halls ({len(configs[0].windows)} windows at the centre), "
        f"{events:,} events in the Redis journal"
    )
    verdict = "PASS" if seconds <= TARGET_SECONDS else "MISS"
    runs_text = ", ".join(f"{r.seconds:.2f}" for r in replays)
    print(
        f"replay from the events, all halls at once: {seconds:6.2f} s  "
        f"(target <= {TARGET_SECONDS:g} s; median of {runs}: {runs_text})  {verdict}"
    )
    cpu = statistics.median(r.cpu for r in replays)
    print(
        f"  {events / seconds:,.0f} events/s; this process's CPU {cpu:.2f} s "
        f"({events / cpu:,.0f} events per CPU second)"
    )
    total = sum(spent.values())
    print(
        "  hall after hall, by phase: "
        + ", ".join(f"{name} {value:.2f} s ({value / total:.0%})" for name, value in spent.items())
        + f" = {total:.2f} s"
    )
    last = replays[-1]
    print(
        f"memory: {last.rss_after:.0f} MB resident holding the {len(configs)} halls "
        f"({last.rss_after - last.rss_before:+.0f} MB over the process before the replay)"
    )
    print(
        f"machine: load average {os.getloadavg()[0]:.2f}, {machine:.2f} cores busy during the "
        f"runs (this process and Redis included), {os.cpu_count()} cores"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="replays to take the median of")
    args = parser.parse_args(argv)
    days = city()
    with cached_city(days) as url:
        asyncio.run(measure(url, configs(days), args.runs))


if __name__ == "__main__":
    main()
