"""Reports on a quarter of a big hall: how long the read model takes to catch up with the
journal, and how long a quarter's report takes once it has.

    .venv/bin/python bench/reports.py                 # 126 windows, 40,000 tickets, 2026-Q4
    .venv/bin/python bench/reports.py --tickets 64000 # a busier quarter (~400,000 events)

The quarter: 126 windows in 8 zones (3 categories each, 15-16 windows a zone), every weekday of
2026-Q4, the tickets spread evenly over the days; each goes through the real core
(scheduling/history.py: ``decide`` then ``apply``, the weighted policy): calls, recalls,
no-shows, transfers, cancels, outcomes, pad and phone ratings, pauses, late logins and long
pauses recorded as breaches (some excused), and every bad rating's case stepped by two managers.
The events go into a real SQLite journal, cached under ``$HALL_BENCH_DIR`` (default
/var/tmp/hall-bench, as bench/replay.py's: it outlives a reboot) and reused.

Figures: ``full catch-up``: a new read model folds the whole journal (what the first report, or
``hall report`` on a new machine, waits for; a server does it once, in the background, at
start). ``incremental``: the last day, and the last 100 events (what a report waits for on a
server that follows its journal). ``report``: the quarter from a caught-up read model, for the
hall and by window and by staff member (the figures alone), and each through
``hall report --format csv`` as a manager runs it (process start, catch-up check, CSV).
Target: a quarter's report in <= 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hall.config import HallConfig, loads
from hall.domain.state import HallState
from hall.journal.sqlite import SqliteJournal
from hall.reports.figures import compute
from hall.reports.periods import parse
from hall.reports.store import ReadModel, model_path
from scheduling.history import History, Plan
from scheduling.policy import policy_named
from scheduling.simulator import SIM_PASSWORD_HASH

HALL = "quarter"
WINDOWS = 126
ZONES = 8
PERIOD = "2026-Q4"
NOW = datetime(2027, 1, 4, 2, 0, tzinfo=UTC)  # the Monday after: the quarter is read


def quarter_toml() -> str:
    """The hall file: ``hall report`` reads one, as a manager would give it."""
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    parts = [
        f'[hall]\nid = "{HALL}"\nname = "季度测试大厅"\nname_en = "Quarter hall"\n'
        "number_digits = 4\n\n[hours]\nissue_outside_hours = true\n"
    ]
    for z in range(ZONES):
        parts.append(f'[[zones]]\nid = "z{z}"\nname = "专区{z}"\nname_en = "Zone {z}"\n')
        for c in range(3):
            parts.append(
                f'[[categories]]\nid = "z{z}c{c}"\nprefix = "{letters[3 * z + c]}"\n'
                f'name = "事项{z}-{c}"\nname_en = "Matter {z}-{c}"\nzone = "z{z}"\n'
                "mean_service_minutes = 8.0\ntarget_wait_minutes = 15\n"
            )
    for i in range(WINDOWS):
        zone = i % ZONES
        profile = ", ".join(f'"z{zone}c{(i // ZONES + k) % 3}"' for k in range(3))
        parts.append(
            f'[[windows]]\nid = "{i + 1}"\nname = "{i + 1}号窗口"\nname_en = "Window {i + 1}"\n'
            f'zone = "z{zone}"\ncategories = [{profile}]\n'
        )
    people = [(f"s{i + 1}", f"工作人员{i + 1}", "staff") for i in range(WINDOWS)]
    for username, name, role in [
        *people,
        ("boss", "主任", "manager"),
        ("boss2", "副主任", "manager"),
    ]:
        parts.append(
            f'[[staff]]\nusername = "{username}"\nname = "{name}"\nrole = "{role}"\n'
            f'password_hash = "{SIM_PASSWORD_HASH}"\n'
        )
    return "\n".join(parts)


def quarter_config() -> HallConfig:
    return loads(quarter_toml(), "<quarter hall>")


def quarter_days() -> list[date]:
    period = parse(PERIOD, date(2027, 1, 4))
    days = [period.start + timedelta(days=i) for i in range(period.days)]
    return [d for d in days if d.weekday() < 5]


async def generate(partial: Path, tickets: int) -> None:
    config = quarter_config()
    journal = SqliteJournal(partial)
    staff = {w.id: f"s{w.id}" for w in config.windows}
    history = History(
        HallState.initial(config), policy_named("weighted"), staff, ("boss", "boss2"),
        random.Random(2026),
    )  # fmt: skip
    days = quarter_days()
    per_day, version, began = tickets // len(days), 0, time.perf_counter()
    for number, events in enumerate(history.days(days, Plan(tickets=per_day))):
        for i in range(0, len(events), 5000):
            await journal.append(HALL, events[i : i + 5000], version)
            version += len(events[i : i + 5000])
        print(
            f"  day {number + 1}/{len(days)}: {version:,} events, "
            f"{time.perf_counter() - began:.0f} s",
            end="\r",
            flush=True,
        )
    print()
    await journal.close()


async def catch_up(journal_path: Path, model: ReadModel) -> float:
    journal = SqliteJournal(journal_path)
    try:
        began = time.perf_counter()
        await model.catch_up(journal, HALL)
        return time.perf_counter() - began
    finally:
        await journal.close()


async def fold_until(journal_path: Path, model: ReadModel, version: int) -> None:
    journal = SqliteJournal(journal_path)
    try:
        while model.version < version:
            records = await journal.read(HALL, model.version, min(5000, version - model.version))
            await asyncio.to_thread(model.fold, HALL, records)
    finally:
        await journal.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=40_000)
    args = parser.parse_args(argv)
    cache = Path(os.environ.get("HALL_BENCH_DIR", "/var/tmp/hall-bench"))
    cache.mkdir(parents=True, exist_ok=True)
    journal_path = cache / f"reports-{PERIOD}-{WINDOWS}w-{args.tickets}t.sqlite3"
    if not journal_path.exists():
        print(f"generating {PERIOD}: {WINDOWS} windows, {args.tickets:,} tickets -> {journal_path}")
        partial = journal_path.with_suffix(".partial")
        for leftover in partial.parent.glob(partial.name + "*"):
            leftover.unlink()
        asyncio.run(generate(partial, args.tickets))
        for suffix in ("", "-wal", "-shm"):  # whole, or not at all
            source = Path(str(partial) + suffix)
            if source.exists():
                source.rename(Path(str(journal_path) + suffix))
    config = quarter_config()
    work = cache / f"work-{os.getpid()}"
    work.mkdir()
    try:
        run(config, journal_path, work)
    finally:
        shutil.rmtree(work)


def run(config: HallConfig, journal_path: Path, work: Path) -> None:
    model = ReadModel(work / "full.sqlite3")
    full = asyncio.run(catch_up(journal_path, model))
    total = model.version
    with model.reading() as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
    size = (work / "full.sqlite3").stat().st_size / 1e6
    print(f"journal: {total:,} events, {tickets:,} tickets, {PERIOD}, {WINDOWS} windows")
    print(
        f"full catch-up:        {full:6.2f} s  ({total / full:,.0f} events/s; read model "
        f"{size:.1f} MB)"
    )
    for behind in (len_last_day(journal_path, total), 100):
        partial = ReadModel(work / f"partial-{behind}.sqlite3")
        asyncio.run(fold_until(journal_path, partial, total - behind))
        took = asyncio.run(catch_up(journal_path, partial))
        print(f"incremental, {behind:>6,} events behind: {took * 1000:7.1f} ms")
        partial.close()
    period = parse(PERIOD, date(2027, 1, 4))
    worst = 0.0
    for by in ("hall", "window", "staff"):
        times = []
        for _ in range(3):
            began = time.perf_counter()
            report = compute(model, config, period, by, NOW)  # type: ignore[arg-type]
            times.append(time.perf_counter() - began)
        best = min(times)
        worst = max(worst, best)
        print(
            f"report {PERIOD} by {by:<6}: {best * 1000:7.0f} ms  ({len(report.rows)} rows, "
            f"{report.total.issued:,} tickets, score of the first row "
            f"{report.rows[0].score if report.rows else '-'})"
        )
    model.close()
    # As a manager runs it: a data directory with the journal and its (followed) read model.
    data = work / "data"
    data.mkdir()
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(journal_path) + suffix)
        if source.exists():
            shutil.copy(source, data / f"journal.sqlite3{suffix}")
    shutil.copy(work / "full.sqlite3", model_path(data, HALL))
    hall_file = work / "quarter.toml"
    hall_file.write_text(quarter_toml(), encoding="utf-8")
    for by in ("hall", "window", "staff"):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "hall.cli", "report", "--config", str(hall_file), "--data",
             str(data), "--period", PERIOD, "--by", by, "--format", "csv"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        took = time.perf_counter() - began
        worst = max(worst, took)
        lines = done.stdout.count("\n")
        print(
            f"hall report --period {PERIOD} --by {by:<6} --format csv: {took:5.2f} s, {lines} lines"
        )
    print(f"slowest report: {worst:.2f} s (target <= 5 s) {'PASS' if worst <= 5 else 'MISS'}")
    cold = full + worst
    print(f"from nothing (full catch-up, then the slowest report): {cold:.2f} s")


def len_last_day(journal_path: Path, total: int) -> int:
    """Events of the quarter's last day (from its DayStarted on)."""

    async def count() -> int:
        journal = SqliteJournal(journal_path)
        try:
            tail = await journal.read(HALL, max(0, total - 20_000))
        finally:
            await journal.close()
        starts = [r.version for r in tail if type(r.event).__name__ == "DayStarted"]
        return total - starts[-1] + 1

    return asyncio.run(count())


if __name__ == "__main__":
    main()
