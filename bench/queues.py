"""Per-command cost against queue length: issue and call-next through HallEngine on SQLite.

    .venv/bin/python bench/queues.py

For each backlog (100, then 10,000 tickets waiting in one category, 5 % green lane), the engine
issues a ticket (its reply with place and estimate, as the kiosk route answers it) and a window
calls the next one (then starts and finishes it), one command at a time; p50 of each over 300
rounds. The target: p50 with 10,000 waiting within 1.5x of the p50 with 100.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from hall import config as hall_config
from hall.bus import Bus
from hall.domain.commands import CallNext, Finish, IssueTicket, Login, Start
from hall.domain.events import Outcome, TicketIssued
from hall.engine import HallEngine
from hall.journal.sqlite import SqliteJournal
from hall.settings import DEFAULT_CONFIG
from hall.views import Estimator, snapshot, ticket_view

ROUNDS = 300


async def measure(backlog: int, workdir: Path) -> dict[str, float]:
    config = hall_config.load(DEFAULT_CONFIG)
    config = msgspec.structs.replace(  # room for 10,000 numbers a day
        config,
        hall=msgspec.structs.replace(config.hall, number_digits=5),
        categories=tuple(msgspec.structs.replace(c, daily_quota=0) for c in config.categories),
    )
    journal = SqliteJournal(workdir / f"q{backlog}.sqlite3")
    engine = HallEngine(config, journal, Bus())
    await engine.start()
    try:
        await engine.execute(Login(window="2", by="zhangwei"))
        for start in range(0, backlog, 500):
            await asyncio.gather(
                *(
                    engine.execute(
                        IssueTicket(
                            category="general", priority="green" if i % 20 == 0 else "normal"
                        )
                    )
                    for i in range(start, min(backlog, start + 500))
                )
            )

        def reply(state, events):  # type: ignore[no-untyped-def]
            event = events[-1]
            assert isinstance(event, TicketIssued)
            return ticket_view(
                state, state.tickets[event.ticket], Estimator(engine.times, event.at)
            )

        issue, call, look = [], [], []
        for _ in range(ROUNDS):
            began = time.perf_counter()
            await engine.execute(IssueTicket(category="general"), reply)
            issue.append(time.perf_counter() - began)
            began = time.perf_counter()
            await engine.execute(CallNext(window="2", by="zhangwei"))
            call.append(time.perf_counter() - began)
            await engine.execute(Start(window="2", by="zhangwei"))
            await engine.execute(Finish(window="2", by="zhangwei", outcome=Outcome.DONE))
            began = time.perf_counter()
            await engine.read(lambda s: snapshot(s, Estimator(engine.times, engine.clock())))
            look.append(time.perf_counter() - began)
        return {
            "issue": statistics.median(issue),
            "call-next": statistics.median(call),
            "snapshot": statistics.median(look),
        }
    finally:
        await engine.stop()
        await journal.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small = asyncio.run(measure(100, Path(tmp)))
        large = asyncio.run(measure(10_000, Path(tmp)))
    print(
        f"{'p50 ms':<10} {'100 waiting':>12} {'10,000 waiting':>15} {'ratio':>6}  (target <= 1.5)"
    )
    for name in small:
        ratio = large[name] / small[name]
        print(f"{name:<10} {small[name] * 1000:12.2f} {large[name] * 1000:15.2f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
