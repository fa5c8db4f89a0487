"""``hall report``: catch the hall's read model up with its journal, then print a report."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import msgspec

from hall.config import HallConfig
from hall.reports import csv, text
from hall.reports.figures import GROUPINGS, compute
from hall.reports.model import Grouping, Report
from hall.reports.periods import FORMS, PeriodError, parse
from hall.reports.store import ReadModel, model_path
from scheduling.calendar import business_day

FORMATS = ("text", "csv", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", required=True, help=f"the period: {FORMS}")
    parser.add_argument(
        "--by", choices=GROUPINGS, default="hall", help="one row per group (default %(default)s)"
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="(default %(default)s)")
    parser.add_argument(
        "--hall", metavar="ID", help="the hall to report on, when --config names several"
    )


def run(
    args: argparse.Namespace, configs: list[HallConfig], journal_url: str, data_dir: Path
) -> int:
    if args.hall is not None:
        configs = [c for c in configs if c.hall.id == args.hall]
        if not configs:
            print(f"hall: no hall {args.hall!r} in the hall files given", file=sys.stderr)
            return 2
    if len(configs) != 1:
        ids = ", ".join(c.hall.id for c in configs)
        print(f"hall: several halls ({ids}): choose one with --hall", file=sys.stderr)
        return 2
    config = configs[0]
    now = datetime.now(UTC)
    try:
        period = parse(args.period, business_day(config, now))
    except PeriodError as exc:
        print(f"hall: {exc}", file=sys.stderr)
        if FORMS not in str(exc):  # the API gives them in detail.forms; here they are said
            print(f"hall: write the period as {FORMS}", file=sys.stderr)
        return 2
    if not journal_url.startswith(("redis://", "rediss://")) and not Path(journal_url).is_file():
        print(f"hall: no journal at {journal_url}", file=sys.stderr)
        return 2
    report = asyncio.run(_report(config, journal_url, data_dir, period, args.by, now))
    match args.format:
        case "csv":
            sys.stdout.write(csv.render(report))
        case "json":
            sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        case _:
            sys.stdout.write(text.render(report, config.tz))
    return 0


async def _report(
    config: HallConfig,
    journal_url: str,
    data_dir: Path,
    period: object,
    by: Grouping,
    now: datetime,
) -> Report:
    from hall.journal import open_journal
    from hall.reports.periods import Period

    assert isinstance(period, Period)
    journal = open_journal(journal_url)
    model = ReadModel(model_path(data_dir, config.hall.id))
    try:
        bar = Bar(sys.stderr)
        await model.catch_up(journal, config.hall.id, bar.update)
        bar.done()
        return await asyncio.to_thread(compute, model, config, period, by, now)
    finally:
        model.close()
        await journal.close()


class Bar:
    """Catch-up progress on standard error: a bar on a terminal; elsewhere, a line every tenth,
    once it has taken a few seconds (a log should not fill with a quick catch-up's steps)."""

    WIDTH = 30
    QUIET_SECONDS = 2.0

    def __init__(self, out: TextIO) -> None:
        self.out, self.began = out, time.monotonic()
        self.tty = out.isatty()
        self.shown = -1  # the last tenth (or bar width) drawn
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        if total <= 0:
            return
        share = done / total
        elapsed = time.monotonic() - self.began
        if self.tty:
            filled = int(share * self.WIDTH)
            if filled == self.shown and done < total:
                return
            self.shown, self.drawn = filled, True
            rate = done / elapsed if elapsed > 0 else 0.0
            self.out.write(
                f"\rcatching up {'#' * filled}{'.' * (self.WIDTH - filled)} "
                f"{done:,}/{total:,} events ({rate:,.0f}/s)"
            )
            self.out.flush()
        elif elapsed >= self.QUIET_SECONDS and int(share * 10) > self.shown:
            self.shown, self.drawn = int(share * 10), True
            self.out.write(f"catching up: {done:,}/{total:,} events ({share:.0%})\n")
            self.out.flush()

    def done(self) -> None:
        if self.tty and self.drawn:
            self.out.write("\n")
            self.out.flush()
