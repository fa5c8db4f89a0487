"""``hall simulate``: simulate hall days under one calling policy, or compare them all.

    hall simulate --config FILE --policy NAME [--days N] [--seed S] [--load R] [--estimate-every K]
    hall simulate --workload skewed --compare [--days N] [--seed S]

With ``--config`` the day is :func:`scheduling.workloads.from_config` (equal demand per category
at ``--load``); ``--workload`` picks a benchmark day instead (see ``--help``). ``--compare`` runs
every registered policy on the same visitors (common random numbers) and prints them side by
side with the pooled Erlang C / Allen–Cunneen reference. Either way it prints how every ticket
issued ended (served, after hours, no-show, abandoned, sent home), the waits of those who left
uncalled, the windows' utilisation over opening hours, and the error of the wait the hall would
have shown: the forecast (:func:`scheduling.forecast.forecast_wait`, the policy run forward) of
every ``--estimate-every``-th ticket at issue, against the wait it then had (MAE, bias, coverage
of the 80% interval), with the quick M/M/c estimate's error on the same tickets beside it (the
same days again, which cost little beside the forecasts). The seed and the day seeds are printed,
so any run can be repeated exactly. It lives in hall/ (not scheduling/, which stays pure): it
reads hall files and prints. hall/cli.py wires :func:`add_arguments` and :func:`run`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hall.config import DEFAULT_POLICY
from hall.settings import load_hall
from scheduling.forecast import forecast_wait
from scheduling.policy import POLICIES, Policy, policy_named
from scheduling.report import Summary, format_compare, format_summary, summarize
from scheduling.simulator import DayResult, Estimator, Workload, day_seed, simulate
from scheduling.workloads import WORKLOADS, from_config, reference

# A forecast costs 5-40 ms: one in ten tickets keeps a demo-hall day (~800 tickets) to a few
# seconds, and still gives some hundreds of errors over the default five days.
ESTIMATE_EVERY = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="hall file (TOML) to simulate")
    source.add_argument(
        "--workload", choices=sorted(WORKLOADS), help="a benchmark day instead of a hall file"
    )
    parser.add_argument(
        "--policy",
        choices=sorted(POLICIES),
        help=f"calling policy (default: the hall file's, or {DEFAULT_POLICY})",
    )
    parser.add_argument("--compare", action="store_true", help="run every policy side by side")
    parser.add_argument("--days", type=int, default=5, help="independent days (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="base seed (default 1)")
    parser.add_argument(
        "--load", type=float, default=0.8, help="with --config: mean window load (default 0.8)"
    )
    parser.add_argument(
        "--estimate-every",
        type=int,
        default=ESTIMATE_EVERY,
        metavar="K",
        help=f"forecast every K-th ticket's wait at issue (default {ESTIMATE_EVERY})",
    )
    parser.add_argument(
        "--no-estimates", action="store_true", help="skip the wait estimates (much faster)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the run's tables; 2 on a bad argument, else 0."""
    if args.days < 1:
        print("hall simulate: --days must be at least 1")
        return 2
    if not 0 < args.load < 1.5:
        print("hall simulate: --load must be in (0, 1.5)")
        return 2
    if args.estimate_every < 1:
        print("hall simulate: --estimate-every must be at least 1")
        return 2
    workload = _workload(args)
    seeds = ", ".join(str(day_seed(args.seed, d)) for d in range(min(args.days, 3)))
    more = ", ..." if args.days > 3 else ""
    print(f"{workload.description}")
    print(f"seed {args.seed}; day seeds {seeds}{more} (random.Random(day seed) draws each day)")
    names = sorted(POLICIES) if args.compare else [_policy_name(args, workload)]
    summaries: list[Summary] = []
    for name in names:
        policy = policy_named(name)
        try:
            results = _days(args, workload, policy, forecast_wait)
        except ValueError as error:  # a day the simulator cannot hold (issuing past 23:30)
            print(f"hall simulate: {error}")
            return 2
        # The same days (the same seeds) with the quick estimate: nothing else differs.
        quick = [] if args.no_estimates else _days(args, workload, policy, None)
        summaries.append(summarize(workload, name, args.seed, results, quick))
    if args.compare:
        print(format_compare(summaries, reference(workload).describe()))
    else:
        print(format_summary(summaries[0]))
        print(reference(workload).describe())
    return 0


def _days(
    args: argparse.Namespace, workload: Workload, policy: Policy, estimator: Estimator | None
) -> list[DayResult]:
    """The run's days, every ``--estimate-every``-th ticket estimated at issue by ``estimator``
    (None: the quick estimate)."""
    return simulate(
        workload,
        policy,
        days=args.days,
        seed=args.seed,
        estimates=not args.no_estimates,
        estimator=estimator,
        estimate_every=args.estimate_every,
    )


def _workload(args: argparse.Namespace) -> Workload:
    if args.workload:
        return WORKLOADS[args.workload]()
    config = load_hall(args.config)  # ConfigError is reported by hall/cli.py
    return from_config(config, load=args.load)


def _policy_name(args: argparse.Namespace, workload: Workload) -> str:
    if args.policy:
        return str(args.policy)
    configured = workload.config.hall.policy
    return configured if configured in POLICIES else DEFAULT_POLICY
