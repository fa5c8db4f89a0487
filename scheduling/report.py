"""Statistics and text tables of simulated days: waits, utilisation, estimate error.

Waits are minutes from issue to call (as in the hall's reports), over the tickets a run counts
(issued after the warm-up); no-shows count too, since they waited like anyone else. Those who left
uncalled (abandoned, or sent home) have no wait; their minutes until they left are reported beside
it, so a policy that makes people leave is not flattered by the waits of those who stayed. Every
ticket issued is in the outcome counts. Utilisation is over opening hours (the windows' available
minutes before closing); the work after closing is reported apart. Quantiles interpolate linearly
between order statistics (the usual "type 7"). Confidence intervals treat days as independent
replications: each day has its own seed and starts empty, so they are.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scheduling.simulator import OUTCOMES, DayResult, Record, TicketOutcome, Workload


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (sorted or not); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class WaitStats:
    n: int
    mean: float
    p90: float
    p95: float
    max: float
    within: float  # share of tickets called within their category's target

    @classmethod
    def of(cls, waits: Sequence[float], targets: Sequence[float]) -> WaitStats:
        if not waits:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ordered = sorted(waits)
        within = sum(1 for w, t in zip(waits, targets, strict=True) if w <= t) / len(waits)
        return cls(
            len(ordered),
            statistics.fmean(ordered),
            quantile(ordered, 0.90),
            quantile(ordered, 0.95),
            ordered[-1],
            within,
        )


@dataclass(frozen=True, slots=True)
class EstimateError:
    """Estimated minus actual wait over called tickets that had an estimate: bias (mean error),
    mean absolute error, 90th percentile of the absolute error, and the share within ±max(2 min,
    25% of the actual wait) — what "about N minutes" on a ticket can honestly promise. Where the
    estimator gave an interval: ``coverage``, the share of actual waits inside [low, high] (over
    ``intervals`` tickets; None when none had one)."""

    n: int
    bias: float
    mae: float
    p90: float
    within: float
    intervals: int = 0
    coverage: float | None = None

    @classmethod
    def of(cls, records: Iterable[Record]) -> EstimateError | None:
        pairs = [
            (r.estimate, r.wait) for r in records if r.estimate is not None and r.wait is not None
        ]
        if not pairs:
            return None
        errors = [e - w for e, w in pairs]
        absolute = [abs(x) for x in errors]
        within = sum(1 for (_, w), a in zip(pairs, absolute, strict=True) if a <= max(2, w / 4))
        inside = [
            r.estimate_low <= r.wait <= r.estimate_high
            for r in records
            if r.estimate_low is not None and r.estimate_high is not None and r.wait is not None
        ]
        return cls(
            len(pairs),
            statistics.fmean(errors),
            statistics.fmean(absolute),
            quantile(absolute, 0.9),
            within / len(pairs),
            len(inside),
            sum(inside) / len(inside) if inside else None,
        )


@dataclass(frozen=True)
class Summary:
    """One policy over the days of one run."""

    workload: str
    policy: str
    seed: int
    days: int
    overall: WaitStats
    categories: Mapping[str, WaitStats]
    priorities: Mapping[str, WaitStats]
    day_means: Sequence[float]
    utilisation: float  # over opening hours
    estimate: EstimateError | None
    tickets: int  # issued, warm-up included: the outcome counts add up to it
    seconds: float
    outcomes: Mapping[TicketOutcome, int]
    left: WaitStats  # minutes from issue to leaving, of the counted tickets that left uncalled
    after_hours: float  # window-minutes worked after closing, mean per day
    # The quick M/M/c estimate's error on the same tickets, where the run's estimate was another.
    quick: EstimateError | None = None

    @property
    def mean_ci(self) -> float:
        """Half-width of a 95% confidence interval of the mean wait, across days."""
        if len(self.day_means) < 2:
            return math.nan
        return 1.96 * statistics.stdev(self.day_means) / math.sqrt(len(self.day_means))


def summarize(
    workload: Workload,
    policy: str,
    seed: int,
    results: Sequence[DayResult],
    quick: Sequence[DayResult] = (),
) -> Summary:
    """The statistics of a run of ``policy`` on ``workload`` (``results`` from ``simulate``);
    ``quick``: the same days estimated by the quick estimate, for its error beside the run's."""
    target = {c.id: float(c.target_wait_minutes) for c in workload.config.categories}
    called = [r for day in results for r in day.records if r.wait is not None]

    def stats(chosen: list[Record]) -> WaitStats:
        return WaitStats.of([r.wait or 0.0 for r in chosen], [target[r.category] for r in chosen])

    gone = [r for day in results for r in day.records if r.waited is not None]
    day_means = [
        statistics.fmean(waits)
        for day in results
        if (waits := [r.wait for r in day.records if r.wait is not None])
    ]
    available = sum(day.available for day in results)
    return Summary(
        workload=workload.name,
        policy=policy,
        seed=seed,
        days=len(results),
        overall=stats(called),
        categories={c: stats([r for r in called if r.category == c]) for c in sorted(target)},
        priorities={
            p: stats([r for r in called if r.priority == p])
            for p in sorted({r.priority for r in called})
        },
        day_means=day_means,
        utilisation=sum(day.busy for day in results) / available if available else math.nan,
        estimate=EstimateError.of(called),
        tickets=sum(day.tickets for day in results),
        seconds=sum(day.seconds for day in results),
        outcomes={o: sum(day.outcomes.get(o, 0) for day in results) for o in OUTCOMES},
        left=WaitStats.of([r.waited or 0.0 for r in gone], [target[r.category] for r in gone]),
        after_hours=statistics.fmean(day.after_hours for day in results) if results else 0.0,
        quick=EstimateError.of(r for day in quick for r in day.records if r.wait is not None),
    )


def describe_outcomes(summary: Summary) -> str:
    """How every ticket issued ended: the counts add up to the tickets issued."""
    parts = ", ".join(f"{o.replace('-', ' ')} {n}" for o, n in summary.outcomes.items())
    return f"{summary.tickets} tickets issued: {parts}"


def _row(name: str, s: WaitStats, *, target: bool = True) -> str:
    within = f"{s.within:>7.1%}" if target else f"{'-':>7}"
    return f"{name:<16} {s.n:>7} {s.mean:>7.2f} {s.p90:>7.2f} {s.p95:>7.2f} {s.max:>7.1f} {within}"


def format_summary(summary: Summary) -> str:
    """A per-category and overall table of one policy's run."""
    header = f"{'':<16} {'tickets':>7} {'mean':>7} {'p90':>7} {'p95':>7} {'max':>7} {'in tgt':>7}"
    lines = [
        f"policy {summary.policy} on {summary.workload}: {summary.days} day(s), seed"
        f" {summary.seed}, {summary.tickets} tickets, {summary.seconds:.2f} s simulated",
        "waiting time, minutes (issue to call)",
        header,
    ]
    lines += [_row(c, s) for c, s in summary.categories.items() if s.n]
    lines += [
        _row(f"[{p}]", s) for p, s in summary.priorities.items() if len(summary.priorities) > 1
    ]
    lines.append(_row("ALL", summary.overall))
    if summary.left.n:
        lines.append(_row("left uncalled", summary.left, target=False) + "  (issue to leaving)")
    lines.append(describe_outcomes(summary))
    ci = summary.mean_ci
    lines.append(
        f"mean wait 95% CI ±{ci:.2f} min across days; window utilisation over opening hours"
        f" {summary.utilisation:.1%}; after closing {summary.after_hours:.0f} window-minutes"
        " a day"
    )
    if summary.estimate is not None:
        e = summary.estimate
        covered = "" if e.coverage is None else f", 80% interval covers {e.coverage:.1%}"
        lines.append(
            f"wait estimate at issue ({e.n} tickets): bias {e.bias:+.2f} min, mean abs error"
            f" {e.mae:.2f} min, p90 abs error {e.p90:.2f} min, within ±max(2 min, 25%):"
            f" {e.within:.1%}{covered}"
        )
    if summary.quick is not None:
        q = summary.quick
        lines.append(
            f"  the quick M/M/c estimate of the same tickets: bias {q.bias:+.2f} min,"
            f" mean abs error {q.mae:.2f} min, within ±max(2 min, 25%): {q.within:.1%}"
        )
    return "\n".join(lines)


def format_compare(summaries: Sequence[Summary], reference: str | None = None) -> str:
    """Policies side by side (same workload, same seed: common random numbers)."""
    names = [s.policy for s in summaries]
    width = max(12, *(len(n) + 1 for n in names))
    lines = [
        f"{summaries[0].workload}: {summaries[0].days} day(s), seed {summaries[0].seed}"
        " (the same visitors and service times for every policy)",
        f"{'minutes':<24}" + "".join(f"{n:>{width}}" for n in names),
    ]

    def add(label: str, values: Iterable[float], fmt: str = "{:.2f}") -> None:
        shown = ("-" if math.isnan(v) else fmt.format(v) for v in values)  # nan: nothing to show
        lines.append(f"{label:<24}" + "".join(f"{v:>{width}}" for v in shown))

    add("mean wait", (s.overall.mean for s in summaries))
    add("  95% CI ±", (s.mean_ci for s in summaries))
    add("p90 wait", (s.overall.p90 for s in summaries))
    add("p95 wait", (s.overall.p95 for s in summaries))
    add("max wait", (s.overall.max for s in summaries), "{:.1f}")
    add("within target", (s.overall.within * 100 for s in summaries), "{:.1f}%")
    add("left uncalled: mean", (s.left.mean if s.left.n else math.nan for s in summaries))
    add("  p95 (to leaving)", (s.left.p95 if s.left.n else math.nan for s in summaries))
    add("tickets issued", (s.tickets for s in summaries), "{:d}")
    for outcome in OUTCOMES:
        add(f"  {outcome.replace('-', ' ')}", (s.outcomes[outcome] for s in summaries), "{:d}")
    add("utilisation (open)", (s.utilisation * 100 for s in summaries), "{:.1f}%")
    add("after closing, win-min", (s.after_hours for s in summaries), "{:.0f}")
    add(
        "estimate abs error",
        (s.estimate.mae if s.estimate else math.nan for s in summaries),
    )
    if any(s.estimate is not None for s in summaries):
        add("  bias", (s.estimate.bias if s.estimate else math.nan for s in summaries), "{:+.2f}")
    if any(s.quick is not None for s in summaries):
        add("quick estimate abs err", (s.quick.mae if s.quick else math.nan for s in summaries))

    if any(s.estimate is not None and s.estimate.coverage is not None for s in summaries):
        add(
            "80% interval coverage",
            (
                s.estimate.coverage * 100
                if s.estimate is not None and s.estimate.coverage is not None
                else math.nan
                for s in summaries
            ),
            "{:.1f}%",
        )
    for category in summaries[0].categories:
        add(f"{category[:14]} p95/max", (s.categories[category].p95 for s in summaries))
        add("", (s.categories[category].max for s in summaries), "{:.1f}")
    for priority in summaries[0].priorities:
        if len(summaries[0].priorities) > 1:
            add(
                f"[{priority[:12]}] mean",
                (
                    s.priorities[priority].mean if priority in s.priorities else math.nan
                    for s in summaries
                ),
            )
    if reference:
        lines.append(reference)
    return "\n".join(lines)
