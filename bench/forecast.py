"""The wait forecast and the what-if, measured: ``.venv/bin/python bench/forecast.py [--quick]``.

1. **Speed of one forecast** (scheduling/forecast.py): the demo hall (config/default.toml, 16
   windows) on an overloaded day (115% load, scheduling.workloads.from_config) through the
   simulator; whenever about 200 tickets wait, the state is kept and the ticket just issued (at
   the back) forecast, uncached, as the kiosk does. p50 and p99 per policy, wall clock and CPU
   time of this process (the machine is shared: CPU time is what one core spends). Target: p99
   <= 20 ms.
2. **Speed of the what-if** (scheduling/whatif.py): the same hall with 40 waiting and some
   windows closed; every single change (:func:`scheduling.whatif.outlook`). Target: <= 1 s.
3. **Accuracy** per policy: the forecast as the simulator's estimator (every ``--every``-th
   ticket at issue) on generated hall days (scheduling/generator.py; ``--benchmark``: the days of
   scheduling/workloads.py instead); the mean absolute error, the bias (forecast - wait), the
   share of 80% intervals that hold the wait, MAE over the mean wait, beside the quick
   estimate's MAE on the same tickets. Targets: MAE <= 25% of the mean wait, coverage 75-85%.
   Tickets that left uncalled (abandoned, sent home) have no wait and are not counted.

About 25 minutes on two cores (``--quick``: a few minutes). Everything is seeded: the same
command prints the same forecasts (the timings aside).
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hall.config import load
from hall.domain.events import WindowClosed
from hall.domain.state import HallState, apply
from scheduling.estimate import ServiceTimes
from scheduling.forecast import NEW, Forecast, forecast_hall, forecast_wait
from scheduling.generator import days as generated_days
from scheduling.policy import POLICIES, Policy
from scheduling.report import quantile
from scheduling.simulator import (
    DayResult,
    Estimate,
    Workload,
    day_seed,
    origin,
    quick_estimate,
    simulate_day,
)
from scheduling.whatif import outlook, read_live, single_changes
from scheduling.workloads import WORKLOADS, from_config

SEED = 20260302
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Captured:
    """States kept at issue: (state, ticket just issued, now, times)."""

    wanted: Callable[[HallState], bool]
    limit: int
    states: list[tuple[HallState, str, datetime, ServiceTimes]] = field(default_factory=list)

    def __call__(
        self, state: HallState, ticket: str, now: datetime, times: ServiceTimes, policy: Policy
    ) -> Estimate:
        if len(self.states) < self.limit and self.wanted(state):
            self.states.append((copy.deepcopy(state), ticket, now, copy.deepcopy(times)))
        return quick_estimate(state, ticket, now, times, policy)


def waiting(state: HallState) -> int:
    return sum(len(ids) for ids in state.queues.values())


def demo_day(load_factor: float) -> Workload:
    return from_config(load(ROOT / "config" / "default.toml"), load=load_factor)


def timed(work: Callable[..., object], *args: object) -> tuple[float, float]:
    """Wall and CPU milliseconds of ``work(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work(*args)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def forecast_speed(policies: Sequence[str], states_per_policy: int) -> None:
    print("1. One forecast of the last ticket, about 200 waiting, 16 windows (uncached)")
    print(f"   {'policy':18s} {'states':>6s} {'p50 wall':>9s} {'p99 wall':>9s} "
          f"{'p50 CPU':>9s} {'p99 CPU':>9s}  (ms)")  # fmt: skip
    workload = demo_day(1.15)
    for name in policies:
        policy = POLICIES[name]
        capture = Captured(lambda s: 190 <= waiting(s) <= 210, states_per_policy)
        for day in range(6):
            simulate_day(workload, policy, day_seed(SEED, day), estimator=capture)
            if len(capture.states) >= states_per_policy:
                break
        walls, cpus = [], []
        categories = [(c.id, NEW) for c in workload.config.categories]
        # The kept states are long-lived, as a server's state is: the collector leaves them be.
        gc.collect()
        gc.freeze()
        for state, _, now, times in capture.states:
            for _ in range(3):
                wall, cpu = timed(forecast_hall, state, now, times, policy, categories)
                walls.append(wall)
                cpus.append(cpu)
        gc.unfreeze()
        print(
            f"   {name:18s} {len(capture.states):6d} {quantile(walls, 0.5):9.1f}"
            f" {quantile(walls, 0.99):9.1f} {quantile(cpus, 0.5):9.1f}"
            f" {quantile(cpus, 0.99):9.1f}"
        )


def whatif_speed(policies: Sequence[str]) -> None:
    print("2. What-if: every single change of the demo hall (16 windows), 40 waiting")
    for load_factor, closing in ((0.85, 2), (0.95, 4)):
        print(f"   {load_factor:.0%} load, then {closing} windows closed")
        workload = demo_day(load_factor)
        for name in policies:
            policy = POLICIES[name]
            capture = Captured(lambda s: waiting(s) >= 40, 1)
            simulate_day(workload, policy, day_seed(SEED, 0), estimator=capture)
            if not capture.states:
                print(f"   {name:18s} never 40 waiting")
                continue
            state, _, now, times = capture.states[0]
            for window in list(state.windows.values())[-closing:]:  # its ticket waits again
                apply(state, WindowClosed(at=now, window=window.id, staff=window.staff or "-"))
            live = read_live(state, now, times, policy)
            wall, cpu = timed(outlook, live)
            found = outlook(live)
            every = len(list(single_changes(live)))
            print(
                f"   {name:18s} {len(found.changes):3d} changes ({every} for every category),"
                f" {found.runs} runs each: {wall:6.0f} ms wall, {cpu:6.0f} ms CPU"
            )


@dataclass
class Errors:
    """Forecast errors over tickets: (wait, forecast, low, high, quick)."""

    rows: list[tuple[float, float, float | None, float | None, float | None]] = field(
        default_factory=list
    )
    left: int = 0  # estimated tickets that left uncalled

    def add(self, result: DayResult, quick: dict[float, float | None]) -> None:
        for record in result.records:
            if record.estimate is None:
                continue
            if record.wait is None:
                self.left += 1
                continue
            self.rows.append(
                (
                    record.wait,
                    record.estimate,
                    record.estimate_low,
                    record.estimate_high,
                    quick.get(round(record.issued, 4)),
                )
            )

    def line(self, label: str) -> str:
        if not self.rows:
            return f"   {label:34s} no tickets"
        n = len(self.rows)
        mean = statistics.fmean(w for w, *_ in self.rows)
        mae = statistics.fmean(abs(f - w) for w, f, *_ in self.rows)
        bias = statistics.fmean(f - w for w, f, *_ in self.rows)
        with_interval = [
            (w, lo, hi) for w, _, lo, hi, _ in self.rows if lo is not None and hi is not None
        ]
        inside = sum(1 for w, lo, hi in with_interval if lo <= w <= hi)
        coverage = inside / len(with_interval) if with_interval else math.nan
        quick = [(w, q) for w, _, _, _, q in self.rows if q is not None]
        quick_mae = statistics.fmean(abs(q - w) for w, q in quick) if quick else math.nan
        share = mae / mean if mean else math.nan
        return (
            f"   {label:34s} {n:5d} {mean:6.1f} {mae:6.2f} {share:5.0%} {bias:+6.2f}"
            f" {coverage:6.0%} {1 - len(with_interval) / n:6.0%}"
            f" {quick_mae:6.2f} {quick_mae / mean if mean else math.nan:5.0%} {self.left:5d}"
        )


def estimated_day(workload: Workload, policy: Policy, seed: int, every: int) -> Errors:
    """One day with the forecast as the estimator, and the quick estimate of the same tickets."""
    quick: dict[float, float | None] = {}  # issue minute -> the quick estimate
    start = origin(workload)

    def estimator(
        state: HallState, ticket: str, now: datetime, times: ServiceTimes, chosen: Policy
    ) -> Forecast:
        minute = (state.tickets[ticket].issued_at - start).total_seconds() / 60
        quick[round(minute, 4)] = quick_estimate(state, ticket, now, times, chosen).minutes
        return forecast_wait(state, ticket, now, times, chosen)

    result = simulate_day(workload, policy, seed, estimator=estimator, estimate_every=every)
    errors = Errors()
    errors.add(result, quick)
    return errors


def accuracy(policies: Sequence[str], days: int, every: int, benchmark: bool) -> None:
    header = (
        f"   {'':34s} {'n':>5s} {'wait':>6s} {'MAE':>6s} {'MAE%':>5s} {'bias':>6s}"
        f" {'cover':>6s} {'no-int':>6s} {'quick':>6s} {'q%':>5s} {'left':>5s}"
    )
    if benchmark:
        print(f"3. Accuracy on the benchmark days, {days} each, every {every}th ticket")
        groups = {
            name: [WORKLOADS[name]()] * days
            for name in ("skewed", "skewed-specialised", "chain10-hot")
        }
    else:
        print(f"3. Accuracy on {days} generated days (scheduling.generator), every {every}th")
        groups = {"generated": generated_days(SEED, days)}
    print(header)
    for name in policies:
        policy = POLICIES[name]
        total = Errors()
        for group, workloads in groups.items():
            errors = Errors()
            for day, workload in enumerate(workloads):
                found = estimated_day(workload, policy, day_seed(SEED, day), every)
                errors.rows += found.rows
                errors.left += found.left
            total.rows += errors.rows
            total.left += errors.left
            if len(groups) > 1:
                print(errors.line(f"{name} / {group}"))
        print(total.line(f"{name}" + (" (all)" if len(groups) > 1 else "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer states and days")
    parser.add_argument("--days", type=int, default=None, help="days (per workload)")
    parser.add_argument("--every", type=int, default=5, help="forecast every k-th ticket")
    parser.add_argument("--benchmark", action="store_true", help="scheduling.workloads' days")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--only", choices=("speed", "whatif", "accuracy"), default=None)
    args = parser.parse_args()
    policies = args.policies.split(",")
    days = args.days or (2 if args.quick else (4 if args.benchmark else 30))
    if args.only in (None, "speed"):
        forecast_speed(policies, 10 if args.quick else 40)
    if args.only in (None, "whatif"):
        whatif_speed(policies)
    if args.only in (None, "accuracy"):
        accuracy(policies, days, args.every, args.benchmark)


if __name__ == "__main__":
    main()
