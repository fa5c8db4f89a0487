"""The discipline watcher's cost: ``.venv/bin/python bench/discipline.py [--windows N]``.

A day of a large hall (126 windows by default, 12 categories, each window serving 4 of them,
8,000 tickets at about 95 % load, pauses of 5 to 40 minutes, 3 % no-shows) goes through the
real domain (``execute``) on a virtual clock that never goes back. Then the same events go, one
by one, through a watcher as the engine's after-batch hook feeds it, with a clock tick every
simulated second;
the figures are the watcher's time per event and per tick, beside the domain's own per event,
and the breaches found by rule (with exponential service of mean ~8 minutes and a limit of 18,
about e^(-18/8) = 11 % of transactions run too long).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec

from hall.config import Discipline
from hall.domain.commands import (
    AnyCommand,
    CallNext,
    Finish,
    IssueTicket,
    Login,
    NoShow,
    OpenDay,
    Pause,
    Resume,
    Start,
)
from hall.domain.decide import execute
from hall.domain.errors import HallError
from hall.domain.events import AnyEvent
from hall.domain.state import HallState
from hall.oversight.watcher import Watcher
from scheduling.policy import policy_named
from scheduling.simulator import sim_config
from scheduling.workloads import hall_config

CATEGORIES = [f"k{i}" for i in range(12)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=126)
    parser.add_argument("--tickets", type=int, default=8000)
    args = parser.parse_args()
    profiles = [[CATEGORIES[(i + k) % 12] for k in range(4)] for i in range(args.windows)]
    config = sim_config(hall_config("big", [(c, 6.0, 15) for c in CATEGORIES], profiles))
    config = msgspec.structs.replace(config, discipline=Discipline(idle_seconds=60))
    state, policy, rng = HallState.initial(config), policy_named("weighted"), random.Random(1)
    opening = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # a Monday, 08:30 in Shanghai
    gap = 9 * 3600 / args.tickets
    service = args.windows * gap * 0.95
    log: list[tuple[int, AnyEvent]] = []
    spent = 0.0

    def run(command: AnyCommand, at: datetime) -> bool:
        nonlocal spent
        started = time.perf_counter()
        try:
            events = execute(state, command, at, policy)
        except HallError:
            return False
        finally:
            spent += time.perf_counter() - started
        first = state.version - len(events) + 1
        log.extend(enumerate(events, first))
        return bool(events)  # a call with nobody to call makes none

    run(OpenDay(), opening)
    staff = {w.id: f"sim{i}" for i, w in enumerate(config.windows)}
    for window, by in staff.items():
        run(Login(window=window, by=by), opening)
    free = dict.fromkeys(staff, opening)
    holding: set[str] = set()
    paused: dict[str, datetime] = {}
    for i in range(args.tickets):
        now = opening + timedelta(seconds=i * gap)
        run(IssueTicket(category=rng.choice(CATEGORIES)), now)
        for window, until in free.items():
            if until > now:
                continue
            by = staff[window]
            if window in paused:
                if paused[window] <= now:
                    run(Resume(window=window, by=by), now)
                    del paused[window]
                continue
            if window in holding:
                run(Finish(window=window, by=by), now)  # the clock never goes back
                holding.discard(window)
            if rng.random() < 0.003:
                run(Pause(window=window, by=by, reason="break"), now)
                paused[window] = now + timedelta(minutes=rng.uniform(5, 40))
                continue
            if not run(CallNext(window=window, by=by), now):
                free[window] = now + timedelta(seconds=gap)
            elif rng.random() < 0.03:
                run(NoShow(window=window, by=by), now)
            else:
                run(Start(window=window, by=by), now)
                free[window] = now + timedelta(seconds=rng.expovariate(1 / service))
                holding.add(window)

    watcher = Watcher(config)
    found: Counter[str] = Counter()
    ticks = 0
    observing = ticking = 0.0
    clock = log[0][1].at
    for version, event in log:
        while clock + timedelta(seconds=1) <= event.at:  # a tick each simulated second
            clock += timedelta(seconds=1)
            started = time.perf_counter()
            found.update(b.rule for b in watcher.tick(state, clock))
            ticking += time.perf_counter() - started
            ticks += 1
        started = time.perf_counter()
        found.update(b.rule for b in watcher.observe(state, version, event))
        observing += time.perf_counter() - started
    events = len(log)
    print(f"{args.windows} windows, {events} events, {ticks} ticks")
    print(f"domain (decide + apply): {spent / events * 1e6:7.1f} µs per event")
    print(f"watcher observe:         {observing / events * 1e6:7.1f} µs per event")
    print(f"watcher tick:            {ticking / ticks * 1e6:7.1f} µs per tick")
    print("breaches found:", ", ".join(f"{rule} {n}" for rule, n in found.most_common()))


if __name__ == "__main__":
    main()
