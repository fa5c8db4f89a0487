"""Start-up and recovery after a year of history: how long until a hall takes commands again.

    .venv/bin/python bench/replay.py            # generates the year once (a few minutes), cached
    .venv/bin/python bench/replay.py --days 20  # a shorter history (its own cache file)

The history: one hall, 250 working days of 5,000 tickets each (8 categories, 30 windows in
rotated comprehensive profiles, 5 % green lane, exponential service at about 95 % load; windows
log in each morning; what still waits at closing expires at the next day's start). Every command
goes through the real domain (``decide`` then ``apply``, the ``weighted`` policy) on a virtual
clock, and the events go into a real SQLite journal in chunks, with the checkpoints the engine
itself takes (each day start, every ``CHECKPOINT_EVENTS``). The history stops just short of the
next checkpoint, so both figures below are the worst case: the most events to replay after one.
The file is cached under ``$HALL_BENCH_DIR`` (default /var/tmp/hall-bench) and reused.

Figures: ``start-up``: ``HallEngine.start()`` on that file (load the checkpoint, check it against
the journal, replay the events after it). ``recovery``: the replay that follows a failed append
(``_stale`` set, as the writer sets it), from the checkpoint the engine keeps in memory. Also the
rate of a full replay from the first event, the cost the checkpoints avoid. Targets: <= 2 s and
<= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hall import checkpoint
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import AnyCommand, CallNext, Finish, IssueTicket, Login, Start
from hall.domain.decide import execute
from hall.domain.errors import HallError
from hall.domain.events import AnyEvent, Outcome
from hall.domain.state import HallState, apply
from hall.engine import HallEngine
from hall.journal.sqlite import SqliteJournal
from hall.recovery import CHECKPOINT_EVENTS
from scheduling.estimate import ServiceTimes
from scheduling.policy import policy_named
from scheduling.simulator import sim_config
from scheduling.workloads import hall_config

GREEN = {"id": "green", "name": "绿色通道", "name_en": "Green", "rank": 20}

HALL = "year"
TICKETS = 5000
WINDOWS = 30
CATEGORIES = [f"k{i}" for i in range(8)]
FIRST_DAY = date(2025, 1, 6)  # a Monday


def year_config() -> HallConfig:
    profiles = [[CATEGORIES[(i + k) % 8] for k in range(4)] for i in range(WINDOWS)]
    base = hall_config(HALL, [(c, 6.0, 15) for c in CATEGORIES], profiles, priorities=[GREEN])
    return sim_config(base)


def working_days(n: int) -> list[date]:
    days: list[date] = []
    day = FIRST_DAY
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def run_day(state: HallState, day: date, rng: random.Random) -> list[AnyEvent]:
    """One working day through the real domain: logins, 5,000 arrivals, windows calling."""
    config, policy = state.config, policy_named("weighted")
    opening = datetime(day.year, day.month, day.day, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    gap = 9 * 3600 / TICKETS  # seconds between arrivals
    service = WINDOWS * gap * 0.95  # mean seconds per ticket: about 95 % load
    events: list[AnyEvent] = []

    def run(command: AnyCommand, at: datetime) -> list[AnyEvent]:
        try:
            return execute(state, command, at, policy)
        except HallError:
            return []

    for w in config.windows:
        events += run(Login(window=w.id, by=f"sim{int(w.id) - 1}"), opening)
    free = {w.id: opening for w in config.windows}
    holding: set[str] = set()
    for i in range(TICKETS):
        now = opening + timedelta(seconds=i * gap)
        priority = "green" if rng.random() < 0.05 else "normal"
        events += run(IssueTicket(category=rng.choice(CATEGORIES), priority=priority), now)
        for window, until in free.items():
            if until > now:
                continue
            staff = f"sim{int(window) - 1}"
            if window in holding:
                events += run(Finish(window=window, by=staff, outcome=Outcome.DONE), until)
                holding.discard(window)
            called = run(CallNext(window=window, by=staff), now)
            if called:
                events += called + run(Start(window=window, by=staff), now)
                free[window] = now + timedelta(seconds=rng.expovariate(1 / service))
                holding.add(window)
            else:
                free[window] = now + timedelta(seconds=gap)
    closing = opening + timedelta(hours=9)
    for window in sorted(holding):  # the last visitors are served; the rest expire tomorrow
        events += run(
            Finish(window=window, by=f"sim{int(window) - 1}", outcome=Outcome.DONE), closing
        )
    return events


async def generate(path: Path, days: int) -> None:
    """The history into ``path``, with the checkpoint the engine would have left last."""
    config = year_config()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    journal = SqliteJournal(partial)
    state, times = HallState.initial(config), ServiceTimes.from_config(config)
    rng = random.Random(2025)
    started, version = time.perf_counter(), 0
    last: AnyEvent | None = None
    for number, day in enumerate(working_days(days)):
        if number == days - 1:
            before, at_start = checkpoint.encode(state, times, last), version
        events = run_day(state, day, rng)
        if number == days - 1:
            # End one event short of the next checkpoint: the most a start-up replays after one.
            keep = len(events) // CHECKPOINT_EVENTS * CHECKPOINT_EVENTS - 1
            events = events[:keep]
        else:
            for event in events:
                times.update(state, event)
        for i in range(0, len(events), 5000):
            await journal.append(HALL, events[i : i + 5000], version)
            version += len(events[i : i + 5000])
        last = events[-1]
        print(
            f"  day {number + 1}/{days}: {version} events, {time.perf_counter() - started:.0f} s",
            end="\r",
            flush=True,
        )
    print()
    # The engine's last checkpoint: from the last day's start, fold on to the last multiple.
    restored = checkpoint.restore(before, config)
    assert restored is not None
    mark = version - (CHECKPOINT_EVENTS - 1)
    for record in await journal.read(HALL, at_start, mark - at_start):
        apply(restored.state, record.event)
        restored.times.update(restored.state, record.event)
        last = record.event
    await journal.save_checkpoint(
        HALL, mark, checkpoint.encode(restored.state, restored.times, last)
    )
    await journal.close()
    partial.rename(path)


async def measure(path: Path) -> None:
    config = year_config()
    journal = SqliteJournal(path)
    try:
        total = await journal.version(HALL)
        saved = await journal.load_checkpoint(HALL)
        assert saved is not None
        engine = HallEngine(config, journal, Bus())
        began = time.perf_counter()
        await engine.start()
        startup = time.perf_counter() - began
        try:
            assert engine.state.version == total
            recoveries = []
            for _ in range(5):
                engine._stale = True  # what the writer sets after a failed append
                began = time.perf_counter()
                await engine.read(lambda s: s.version)
                recoveries.append(time.perf_counter() - began)
        finally:
            await engine.stop()
        began = time.perf_counter()
        sample = await journal.read(HALL, 0, 200_000)
        full = HallState.initial(config)
        for record in sample:
            apply(full, record.event)
        rate = len(sample) / (time.perf_counter() - began)
    finally:
        await journal.close()
    tail = total - saved[0]
    print(
        f"history: {total:,} events, checkpoint at {saved[0]:,} ({len(saved[1]) / 1e6:.1f} MB), "
        f"tail {tail:,} events; {engine.state.day}, {len(engine.state.tickets):,} tickets today"
    )
    print(
        f"start-up:  {startup * 1000:7.0f} ms   (target <= 2000 ms)  "
        f"{'PASS' if startup <= 2 else 'MISS'}"
    )
    median = sorted(recoveries)[len(recoveries) // 2]
    print(
        f"recovery:  {median * 1000:7.0f} ms   (target <= 100 ms, median of 5: "
        f"{', '.join(f'{r * 1000:.0f}' for r in recoveries)})  "
        f"{'PASS' if median <= 0.1 else 'MISS'}"
    )
    print(
        f"full replay from the first event (read + fold): {rate:,.0f} events/s, so the whole "
        f"history would take {total / rate:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    args = parser.parse_args(argv)
    cache = Path(os.environ.get("HALL_BENCH_DIR", "/var/tmp/hall-bench"))
    cache.mkdir(parents=True, exist_ok=True)
    path = (
        cache / f"year-{args.days}d-{TICKETS}t-cp{CHECKPOINT_EVENTS}-f{checkpoint.FORMAT}.sqlite3"
    )
    if not path.exists():
        print(f"generating {args.days} days of {TICKETS} tickets into {path} (once)")
        asyncio.run(generate(path, args.days))
    asyncio.run(measure(path))


if __name__ == "__main__":
    main()
