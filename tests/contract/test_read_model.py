"""The reports' read model is fed through the journal port: it folds the same rows from every
backend (memory, SQLite, Redis), in whatever pages the backend answers, and a second catch-up
after more appends adds only what is new."""

from __future__ import annotations

import random
import sqlite3
from datetime import date
from pathlib import Path

from hall.domain.events import AnyEvent, TicketIssued
from hall.domain.state import HallState
from hall.reports.store import ReadModel
from scheduling.history import History, Plan, working_days
from scheduling.policy import profile_order
from tests.contract.conftest import Store
from tests.unit.report_support import HALL, report_hall

TABLES = ("tickets", "ratings", "cases", "case_steps", "breaches", "pauses")


def rows(model: ReadModel) -> dict[str, list[tuple[object, ...]]]:
    with model.reading() as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def days() -> list[list[AnyEvent]]:
    history = History(
        HallState.initial(report_hall()),
        profile_order,
        {"1": "alice", "2": "bob", "3": "carol"},
        ("boss", "boss2"),
        random.Random(11),
    )
    return [list(day) for day in history.days(working_days(date(2026, 3, 2), 3), Plan(40))]


async def test_the_read_model_folds_the_same_rows_from_every_backend(
    store: Store, tmp_path: Path
) -> None:
    journal = store.open()
    first, *rest = days()
    await journal.append(HALL, first, 0)
    model = ReadModel(tmp_path / "model.sqlite3")
    assert await model.catch_up(journal, HALL, page=37) == len(first)
    after_first = rows(model)
    assert after_first["tickets"] and after_first["ratings"]
    version = len(first)
    for day in rest:
        await journal.append(HALL, day, version)
        version += len(day)
    assert await model.catch_up(journal, HALL, page=37) == version
    # The same journal folded at once from the start, into a model of its own, by SQLite alone.
    whole = ReadModel(tmp_path / "whole.sqlite3")
    await whole.catch_up(journal, HALL)
    assert rows(model) == rows(whole)  # paged and in two goes, or at once: the same rows
    conn = sqlite3.connect(tmp_path / "model.sqlite3")
    try:
        (issued,) = conn.execute("SELECT count(*) FROM tickets").fetchone()
    finally:
        conn.close()
    expected = sum(isinstance(e, TicketIssued) for day in [first, *rest] for e in day)
    assert issued == expected
    model.close()
    whole.close()
