"""What the manager's live view costs on a big hall: one projection (done after every batch and
every second while a manager watches), one what-if, and the suggestions (on request only).

The hall: ``--windows`` comprehensive windows (bench/scenarios.py's hall file), 80% of them open,
a day of ``--tickets`` tickets through the real domain of which ``--waiting`` still wait, called
by ``--policy`` (default: the hall config's default), which the view's forecasts and the what-if
run forward.

    python bench/manager.py [--windows 126] [--tickets 4000] [--waiting 400] [--policy NAME]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from loadgen import staff_name, window_id
from scenarios import bench_config

from displays.manager import ManagerScreen
from hall.config import DEFAULT_POLICY, loads
from hall.domain.commands import AnyCommand, CallNext, Finish, IssueTicket, Login, Start
from hall.domain.decide import day_events, decide
from hall.domain.state import HallState, apply
from scheduling.estimate import ServiceTimes
from scheduling.policy import POLICIES, policy_named
from scheduling.whatif import read_live, suggest, what_if

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def build(
    windows: int, tickets: int, waiting: int, policy_name: str
) -> tuple[HallState, ServiceTimes, datetime]:
    text, categories = bench_config(windows, policy_name)
    config = loads(text)
    state = HallState.initial(config)
    policy = policy_named(config.hall.policy)
    times = ServiceTimes.from_config(config)
    rng = random.Random(9)

    def run(command: AnyCommand, now: datetime) -> None:
        for event in day_events(state, now):
            apply(state, event)
        for event in decide(state, command, now, policy):
            apply(state, event)
            times.update(state, event)

    opened = [window_id(i) for i in range(windows * 8 // 10)]
    for i, window in enumerate(opened):
        run(Login(window=window, by=staff_name(i)), T0)
    # Tickets spread over 7 hours; all but ``waiting`` are served as they come.
    step = timedelta(hours=7) / tickets
    served = tickets - waiting
    now = T0
    for n in range(tickets):
        now = T0 + n * step
        run(IssueTicket(category=rng.choice(categories)), now)
        if n < served:
            window = opened[n % len(opened)]
            run(CallNext(window=window, by=staff_name(n % len(opened))), now)
            run(Start(window=window, by=staff_name(n % len(opened))), now)
            run(Finish(window=window, by=staff_name(n % len(opened))), now)
    return state, times, now + timedelta(minutes=5)


def timed(label: str, repeat: int, work: Callable[[], object]) -> None:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        samples.append((time.perf_counter() - began) * 1000)
    print(f"{label:40s} median {statistics.median(samples):8.2f} ms   max {max(samples):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=126)
    parser.add_argument("--tickets", type=int, default=4000)
    parser.add_argument("--waiting", type=int, default=400)
    parser.add_argument("--policy", choices=sorted(POLICIES), default=DEFAULT_POLICY)
    args = parser.parse_args()
    state, times, now = build(args.windows, args.tickets, args.waiting, args.policy)
    print(
        f"{len(state.windows)} windows, {len(state.tickets)} tickets today, "
        f"{sum(len(q) for q in state.queues.values())} waiting; policy {args.policy}"
    )
    screen = ManagerScreen(state.config, lambda: times)
    timed("live view (one projection)", 20, lambda: screen.view(state, now))
    closed = window_id(args.windows - 1)
    policy = policy_named(state.config.hall.policy)
    timed(
        "what-if (open a closed window)",
        20,
        lambda: what_if(read_live(state, now, times, policy), closed, None, True),
    )
    timed("suggestions", 5, lambda: suggest(read_live(state, now, times, policy)))


if __name__ == "__main__":
    main()
