"""The scheduling targets, measured: ``.venv/bin/python bench/simulate.py [--quick] [--seed S]``.

Runs the benchmark workloads of scheduling/workloads.py through the simulator (which drives the
real decide/apply core) with ours, the hall config's default policy, and prints one table: each
target's measured value, its reference (derived from the formulas in scheduling/staffing.py,
never typed in), the ratio, the limit and pass/fail. The targets are queueing theory's (Erlang C,
Allen-Cunneen, Cobham's priority formula, stability). The skewed days' rows against Novo SGA's
order are info rows: one day's layout cannot judge a policy (one category last on every
comprehensive window decided most of it), and bench/policies.py judges the policies against the
peer over hundreds of generated days. Then the skewed day's design (its windows' profiles,
demand, surge, manager moves), per category the p95 and max wait of ours and of the baseline on
the skewed day and on the first skewed day (surge on tax-only windows: no calling policy can add
capacity there), the skewed day side by side for every policy, a sensitivity scan of that day,
the estimate error, and windows-per-half-hour advice. Days are independent replications seeded
``seed * 1000003 + day`` and shared by every policy (common random numbers). About two minutes on
two cores; ``--quick`` runs a quarter of the days (looser confidence intervals); ``--speed`` only
times the 10,000-ticket day (with and without the wait estimates).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from hall.config import DEFAULT_POLICY
from scheduling.policy import POLICIES, policy_named
from scheduling.report import Summary, format_compare, quantile, summarize
from scheduling.simulator import DayResult, Workload, day_seed, simulate_day
from scheduling.staffing import (
    allen_cunneen_mean_wait,
    mmc_mean_wait,
    mmc_wait_quantile,
    priority_mean_waits,
    profile_shortfalls,
    staffing_plan,
)
from scheduling.workloads import (
    LOAD,
    MEAN_SERVICE,
    WINDOWS,
    WORKLOADS,
    big,
    reference,
    skewed,
)

SEED = 20260302


def _build(name: str, variant: tuple[float, float, str]) -> Workload:
    """A named workload; ``skewed*``: the skewed day, ``variant`` = (scale, surge, surging)."""
    return skewed(*variant) if name == "skewed*" else WORKLOADS[name]()


def _day(job: tuple[str, str, int, bool, float, float, str]) -> DayResult:
    name, policy, seed, estimates, scale, surge, surging = job
    workload = _build(name, (scale, surge, surging))
    return simulate_day(workload, policy_named(policy), seed, estimates=estimates)


class Runner:
    """Runs days in worker processes and keeps every run for the tables."""

    def __init__(self, pool: ProcessPoolExecutor, seed: int, scale: float) -> None:
        self.pool, self.seed, self.scale = pool, seed, scale

    def run(
        self,
        workload: str,
        policy: str,
        days: int,
        variant: tuple[float, float, str] = (1.0, 3.0, "tax"),
        *,
        estimates: bool = False,
    ) -> tuple[Workload, list[DayResult]]:
        days = max(4, round(days * self.scale))
        jobs = [
            (workload, policy, day_seed(self.seed, d), estimates, *variant) for d in range(days)
        ]
        results = list(self.pool.map(_day, jobs, chunksize=max(1, days // 16)))
        return _build(workload, variant), results

    def summary(
        self, workload: str, policy: str, days: int, *, estimates: bool = False
    ) -> tuple[Summary, Workload, list[DayResult]]:
        built, results = self.run(workload, policy, days, estimates=estimates)
        return summarize(built, policy, self.seed, results), built, results


@dataclass
class Row:
    target: str
    workload: str
    measured: float
    reference: float
    limit: str
    ok: bool
    note: str = ""
    info: bool = False  # shown for context, not a target (not counted)

    @property
    def ratio(self) -> float:
        return self.measured / self.reference if self.reference else math.nan


def waits(results: Sequence[DayResult], priority: str | None = None) -> list[float]:
    return [
        r.wait
        for day in results
        for r in day.records
        if r.wait is not None and (priority is None or r.priority == priority)
    ]


def ci(summary: Summary) -> str:
    return f"±{summary.mean_ci:.2f} (95% CI)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="a quarter of the days")
    parser.add_argument("--speed", action="store_true", help="only the 10,000-ticket day's speed")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.speed:
        print(_table(_speed(DEFAULT_POLICY, args.seed)))
        return 0
    workers = min(2, os.cpu_count() or 1)
    print(f"seed {args.seed}: day d of every run uses random.Random({args.seed} * 1000003 + d)")
    rows: list[Row] = []
    rate = WINDOWS * LOAD / MEAN_SERVICE
    erlang = mmc_mean_wait(WINDOWS, rate, MEAN_SERVICE)
    with ProcessPoolExecutor(workers) as pool:
        runner = Runner(pool, args.seed, 0.25 if args.quick else 1.0)
        ours = DEFAULT_POLICY

        # 1. Fully comprehensive, exponential and lognormal service.
        mmc, _, _ = runner.summary("comprehensive", ours, 160, estimates=True)
        p95 = mmc_wait_quantile(WINDOWS, rate, MEAN_SERVICE, 0.95)
        rows.append(
            Row(
                "mean wait <= 1.10 x Erlang C",
                "comprehensive",
                mmc.overall.mean,
                erlang,
                "<= 1.10",
                mmc.overall.mean <= 1.10 * erlang,
                ci(mmc),
            )
        )
        rows.append(
            Row(
                "p95 wait <= 1.15 x M/M/c p95",
                "comprehensive",
                mmc.overall.p95,
                p95,
                "<= 1.15",
                mmc.overall.p95 <= 1.15 * p95,
            )
        )
        logn, _, _ = runner.summary("comprehensive-lognormal", ours, 160, estimates=True)
        ac = allen_cunneen_mean_wait(WINDOWS, rate, MEAN_SERVICE, 1.0, 0.75**2)
        rows.append(
            Row(
                "mean wait <= 1.10 x Allen-Cunneen",
                "comprehensive-lognormal",
                logn.overall.mean,
                ac,
                "<= 1.10",
                logn.overall.mean <= 1.10 * ac,
                ci(logn),
            )
        )

        # 2. Chains of two categories per window.
        hot: list[DayResult] = []
        for name, days in (("chain5", 80), ("chain5-hot", 80), ("chain10", 40)):
            chained, built, results = runner.summary(name, ours, days)
            rows.append(
                Row(
                    "mean wait <= 2 x comprehensive (Erlang C)",
                    name,
                    chained.overall.mean,
                    erlang,
                    "<= 2.00",
                    chained.overall.mean <= 2 * erlang,
                    ci(chained),
                )
            )
            if name == "chain5-hot":
                hot = results
                drift = _drift(hot, built.warmup, built.horizon)
        rows.append(
            Row(
                "stable: late/early third mean wait",
                "chain5-hot",
                drift,
                1.0,
                "<= 1.50",
                drift <= 1.5,
                f"backlog at close {_backlog(hot):.1f}",
            )
        )
        hot10 = WORKLOADS["chain10-hot"]()
        loads = {c: r[0] * hot10.service[c].mean for c, r in hot10.rates.items()}
        short = profile_shortfalls({w.id: w.categories for w in hot10.config.windows}, loads)
        built, unstable = runner.run("chain10-hot", ours, 16)
        rows.append(
            Row(
                "stable? (drift; Hall: no policy can)",
                "chain10-hot",
                _drift(unstable, built.warmup, built.horizon),
                1.0,
                "-",
                not short,
                f"{short[0].categories} carry {short[0].load:.2f} Erlangs on"
                f" {short[0].windows} windows"
                if short
                else "",
                info=True,
            )
        )

        # 3. 20% green lane: ours against Cobham and against plain FCFS on the same days.
        built, prio = runner.run("comprehensive-priority", ours, 160)
        _, fcfs = runner.run("comprehensive-priority", "longest-wait", 160)
        cobham = priority_mean_waits(WINDOWS, [0.2 * rate, 0.8 * rate], MEAN_SERVICE)
        green = statistics.fmean(waits(prio, "green"))
        rows.append(
            Row(
                "green mean within 10% of Cobham",
                "comprehensive-priority",
                green,
                cobham[0],
                "0.90-1.10",
                abs(green / cobham[0] - 1) <= 0.10,
                f"normal {statistics.fmean(waits(prio, 'normal')):.2f} vs {cobham[1]:.2f}",
            )
        )
        normal_p95 = quantile(waits(prio, "normal"), 0.95)
        fcfs_p95 = quantile(waits(fcfs), 0.95)
        rows.append(
            Row(
                "normal p95 <= 1.25 x FCFS p95",
                "comprehensive-priority",
                normal_p95,
                fcfs_p95,
                "<= 1.25",
                normal_p95 <= 1.25 * fcfs_p95,
            )
        )
        normal_max, fcfs_max = max(waits(prio, "normal")), max(waits(fcfs))
        rows.append(
            Row(
                "normal max <= FCFS max + 8 min",
                "comprehensive-priority",
                normal_max,
                fcfs_max + MEAN_SERVICE,
                "<= 1.00",
                normal_max <= fcfs_max + MEAN_SERVICE,
            )
        )

        # 4. The skewed day: ours against Novo SGA's ordering (design: scheduling/workloads.py,
        # skewed; printed below), then the first skewed day, whose surge only tax-only windows
        # can serve. For context only: bench/policies.py judges against the peer.
        day_summaries = {
            p: runner.summary("skewed", p, 100, estimates=True)[0] for p in sorted(POLICIES)
        }
        mine, baseline = day_summaries[ours], day_summaries["novosga"]
        rows.append(_skewed_row("skewed", mine, baseline))
        context = (
            runner.summary("skewed-specialised", ours, 100)[0],
            runner.summary("skewed-specialised", "novosga", 100)[0],
        )
        rows.append(_skewed_row("skewed-specialised", *context, specialised=True))

        rows += _speed(ours, args.seed)
        print(_table(rows))
        print()
        print(_design(skewed()))
        print()
        print(_max_table({"skewed": (mine, baseline), "skewed-specialised": context}))
        print()
        print(format_compare(list(day_summaries.values()), reference(skewed()).describe()))
        print()
        print(_sensitivity(runner, ours))
        print()
        print(
            _estimates(
                {
                    "comprehensive": mmc,
                    "comprehensive-lognormal": logn,
                    **{f"skewed/{p}": s for p, s in day_summaries.items()},
                }
            )
        )
        print()
        print(_staffing(skewed()))
    targets = [r for r in rows if not r.info]
    failed = sum(not r.ok for r in targets)
    print(
        f"\n{len(targets) - failed}/{len(targets)} targets met; {time.perf_counter() - began:.0f} s"
        f" wall clock on {workers} worker(s)"
    )
    return 0


def _speed(policy: str, seed: int, runs: int = 3) -> list[Row]:
    """The 10,000-ticket day on one core (this process), the whole ``simulate_day`` call (draws
    included), with the quick estimate at every issue (the target) and without: the median of
    ``runs`` runs, the range in the note (the machine may be shared)."""
    city = big()
    rows = []
    for estimates in (True, False):
        seconds, tickets = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            day = simulate_day(city, policy_named(policy), day_seed(seed, 0), estimates=estimates)
            seconds.append(time.perf_counter() - start)
            tickets = day.tickets
        median = statistics.median(seconds)
        rows.append(
            Row(
                "10,000-ticket day <= 1 s on one core" if estimates else "  the same, no estimates",
                "big",
                median,
                1.0,
                "<= 1.00",
                median <= 1.0,
                f"{tickets} tickets, {policy}; median of {runs} runs"
                f" ({min(seconds):.2f}-{max(seconds):.2f} s)",
                info=not estimates,
            )
        )
    return rows


def _skewed_row(
    workload: str, mine: Summary, baseline: Summary, *, specialised: bool = False
) -> Row:
    """Ours against Novo SGA's order on a skewed day, an info row: p95, and the categories whose
    max is worse (per category in the max table). Once a target (p95 <= 0.70 x), set against a
    peer that was not Novo SGA as it ships; the judgement against the peer is bench/policies.py's,
    over generated days."""
    worse = [c for c, st in mine.categories.items() if st.max > baseline.categories[c].max]
    note = f"{mine.days} days, seed {mine.seed}; worse max: {', '.join(worse) or 'none'}"
    if specialised:
        note += "; surge on tax-only windows: no calling policy adds capacity there"
    note += "; judged over generated days by bench/policies.py"
    return Row(
        "p95 / novosga p95", workload, mine.overall.p95, baseline.overall.p95, "-", True, note, True
    )


def _design(workload: Workload) -> str:
    """The skewed day's design: its windows' profiles, demand, surge and manager moves."""
    config = workload.config
    targets = {c.id: c.target_wait_minutes for c in config.categories}
    lines = [f"the skewed day ({workload.description}):"]
    lines += [f"  window {w.id:>2}: {' > '.join(w.categories)}" for w in config.windows]
    demand = ", ".join(
        f"{c} {statistics.fmean(r) * workload.period_minutes * 2:.0f}/h"
        f" x {workload.service[c].mean:g} min (target {targets[c]})"
        for c, r in workload.rates.items()
    )
    lines.append(f"  arrivals per hour, day mean (surge included): {demand}")
    opens = workload.start.hour * 60 + workload.start.minute
    for m in workload.profile_moves:
        at = opens + int(m.minute)
        lines.append(
            f"  {at // 60:02d}:{at % 60:02d} manager: window {m.window} serves"
            f" {' > '.join(m.categories)}"
        )
    lines.append(
        f"  {', '.join(f'{share:.0%} {p}' for p, share in workload.priority_share.items())};"
        f" {workload.no_show:.0%} no-shows; {workload.pauses_per_window:g} pauses per window;"
        f" mean load {workload.offered_load() / len(config.windows):.0%}"
    )
    return "\n".join(lines)


def _max_table(days: dict[str, tuple[Summary, Summary]]) -> str:
    """Per category, p95 and max wait of ours and of the baseline, on each skewed day."""
    lines = []
    for name, (mine, base) in days.items():
        lines += [
            f"{name}: {mine.days} days, seed {mine.seed}; minutes, {mine.policy} vs {base.policy}",
            f"{'category':<12} {'p95 ours':>9} {'p95 base':>9} {'max ours':>9} {'max base':>9}",
        ]
        for c, st in [*mine.categories.items(), ("ALL", mine.overall)]:
            b = base.overall if c == "ALL" else base.categories[c]
            verdict = "worse" if st.max > b.max else "ok"
            lines.append(
                f"{c:<12} {st.p95:>9.2f} {b.p95:>9.2f} {st.max:>9.1f} {b.max:>9.1f}  {verdict}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def _drift(results: Sequence[DayResult], warmup: float, horizon: float) -> float:
    """Mean wait of tickets issued in the last third of the counted span over the first third:
    about 1 in steady state, growing with the day when the queue is unstable."""
    third = (horizon - warmup) / 3
    early = [
        r.wait
        for d in results
        for r in d.records
        if r.wait is not None and r.issued < warmup + third
    ]
    late = [
        r.wait
        for d in results
        for r in d.records
        if r.wait is not None and r.issued >= horizon - third
    ]
    return statistics.fmean(late) / statistics.fmean(early)


def _max(results: Sequence[DayResult], category: str) -> float:
    return max(
        (r.wait or 0.0 for d in results for r in d.records if r.category == category), default=0.0
    )


def _backlog(results: Sequence[DayResult]) -> float:
    return statistics.fmean(d.backlog for d in results)


def _table(rows: Sequence[Row]) -> str:
    lines = [
        f"{'target':<44} {'workload':<24} {'measured':>9} {'reference':>9} {'ratio':>6}"
        f" {'limit':>9}  result",
    ]
    for r in rows:
        lines.append(
            f"{r.target:<44} {r.workload:<24} {r.measured:>9.2f} {r.reference:>9.2f}"
            f" {r.ratio:>6.2f} {r.limit:>9}  {'info' if r.info else 'pass' if r.ok else 'FAIL'}"
            + (f"  {r.note}" if r.note else "")
        )
    return "\n".join(lines)


def _sensitivity(runner: Runner, ours: str) -> str:
    """The skewed day's verdict under other surges and loads: how robust the comparison is."""
    lines = [
        "skewed-day sensitivity (ours / novosga, same days):",
        f"{'variant':<32} {'p95 ratio':>9} {'categories with a worse max':<40}",
    ]
    for scale, surge, surging in (
        (1.0, 3.0, "tax"),
        (0.9, 3.0, "tax"),
        (1.0, 2.0, "tax"),
        (1.0, 3.0, "medical"),
        (0.9, 3.0, "medical"),
        (1.0, 3.0, "general"),
    ):
        built, mine = runner.run("skewed*", ours, 30, (scale, surge, surging))
        _, base = runner.run("skewed*", "novosga", 30, (scale, surge, surging))
        worse = [c for c in sorted(built.rates) if _max(mine, c) > _max(base, c)]
        ratio = quantile(waits(mine), 0.95) / quantile(waits(base), 0.95)
        lines.append(
            f"{f'{surging} x{surge:g} at load x{scale:g}':<32} {ratio:>9.2f}"
            f" {', '.join(worse) or '-':<40}"
        )
    return "\n".join(lines)


def _estimates(summaries: dict[str, Summary]) -> str:
    lines = [
        "wait estimate at issue vs the actual wait, minutes:",
        f"{'run':<32} {'mean wait':>9} {'bias':>7} {'MAE':>7} {'p90 |e|':>8} {'within':>7}",
    ]
    for name, s in summaries.items():
        e = s.estimate
        if e is not None:
            lines.append(
                f"{name:<32} {s.overall.mean:>9.2f} {e.bias:>+7.2f} {e.mae:>7.2f}"
                f" {e.p90:>8.2f} {e.within:>7.1%}"
            )
    lines.append("within: |error| <= max(2 min, 25% of the actual wait)")
    return "\n".join(lines)


def _staffing(workload: Workload) -> str:
    arrivals = {
        c: [r * workload.period_minutes for r in rates] for c, rates in workload.rates.items()
    }
    means = {c: s.mean for c, s in workload.service.items()}
    cvs = {c: math.sqrt(s.cs2) for c, s in workload.service.items()}
    plan = staffing_plan(arrivals, means, cvs, slot_minutes=workload.period_minutes)
    lines = [
        f"windows for 80% called within 10 min ({workload.name}; Erlang C + Allen-Cunneen):",
        f"{'from':>5} {'visitors':>9} {'Erlangs':>8} {'comprehensive':>14} {'dedicated':>10}",
    ]
    for p in plan:
        minute = int(p.start) + workload.start.hour * 60 + workload.start.minute
        lines.append(
            f"{minute // 60:02d}:{minute % 60:02d} {p.arrivals:>9.1f} {p.load:>8.2f}"
            f" {p.pooled:>14} {p.dedicated:>10}"
        )
    lines.append(f"(the skewed day opens {len(workload.config.windows)} windows all day)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
