"""The read model: the same rows however the journal is paged, a page all or nothing, a file of
another hall or of a journal started afresh rebuilt, two catch-ups at once, every event type."""

from __future__ import annotations

import asyncio
import inspect
import random
import sqlite3
import typing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hall.domain import events as ev
from hall.domain.commands import (
    AcknowledgeAlert,
    CallNext,
    ChangePassword,
    ChangeProfile,
    ForceClose,
    IssueTicket,
    Login,
    MarkPrinted,
    PostNotice,
    Start,
)
from hall.domain.state import HallState
from hall.journal.base import Recorded
from hall.journal.sqlite import SqliteJournal
from hall.reports import store
from hall.reports.store import ReadModel, ReadModelError
from scheduling.history import History, Plan, working_days
from scheduling.policy import profile_order
from tests.unit.conftest import PASSWORD_HASH, Driver
from tests.unit.report_support import HALL, caught_up, journal_of, report_hall

TABLES = ("tickets", "ratings", "cases", "case_steps", "breaches", "pauses", "windows", "meta")


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    config = report_hall()
    staff = {"1": "alice", "2": "bob", "3": "carol"}
    history = History(
        HallState.initial(config), profile_order, staff, ("boss", "boss2"), random.Random(7)
    )
    events = [e for day in history.days(working_days(date(2026, 3, 2), 6), Plan(60)) for e in day]
    path = tmp_path_factory.mktemp("store") / "journal.sqlite3"
    return journal_of(path, events), len(events)


def dump(model: ReadModel) -> dict[str, list[tuple[object, ...]]]:
    with model.reading() as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def test_the_same_rows_however_paged(weeks: tuple[Path, int], tmp_path: Path) -> None:
    journal, count = weeks
    whole = caught_up(journal, tmp_path / "whole.sqlite3")
    assert whole.version == count
    rows = dump(whole)
    assert len(rows["tickets"]) > 300 and rows["cases"] and rows["breaches"] and rows["pauses"]
    for page in (1, 13, 640):
        paged = caught_up(journal, tmp_path / f"paged-{page}.sqlite3", page=page)
        assert dump(paged) == rows, page
        paged.close()
    again = caught_up(journal, tmp_path / "whole.sqlite3")  # nothing new: nothing changes
    assert dump(again) == rows
    whole.close()
    again.close()


def test_a_page_is_all_or_nothing(tmp_path: Path) -> None:
    hall = Driver(report_hall())
    hall.do(Login(window="1", by="alice"))
    hall.do(IssueTicket(category="general"))
    good = [
        Recorded(hall=HALL, version=i + 1, position=i + 1, event=e) for i, e in enumerate(hall.log)
    ]
    model = ReadModel(tmp_path / "model.sqlite3")
    model.fold(HALL, good[:1])
    # A page whose last event names a ticket nobody issued (another journal's): refused whole.
    stray = ev.TicketCalled(at=datetime(2026, 3, 2, tzinfo=UTC), ticket="nobody", window="1")
    bad = [*good[1:], Recorded(hall=HALL, version=len(good) + 1, position=99, event=stray)]
    with pytest.raises(ReadModelError, match="nobody"):
        model.fold(HALL, bad)
    assert model.version == 1
    assert dump(model)["tickets"] == []  # the page's issue was rolled back with it
    model.fold(HALL, good[1:])
    assert model.version == len(good) and len(dump(model)["tickets"]) == 1
    with pytest.raises(ReadModelError, match="missing"):  # a gap is never folded over
        model.fold(HALL, [Recorded(hall=HALL, version=len(good) + 2, position=100, event=stray)])
    model.close()


def test_another_hall_or_a_fresh_journal_rebuilds(weeks: tuple[Path, int], tmp_path: Path) -> None:
    journal, _ = weeks
    path = tmp_path / "model.sqlite3"
    caught_up(journal, path).close()
    # The journal started afresh (a shorter one at the same place): the model starts over.
    hall = Driver(report_hall())
    hall.do(IssueTicket(category="general"), datetime(2026, 5, 4, 2, tzinfo=UTC))
    short = journal_of(tmp_path / "short.sqlite3", hall.log)
    model = caught_up(short, path)
    assert model.version == len(hall.log)
    assert [r[0] for r in dump(model)["tickets"]] == ["20260504-A001"]
    model.close()
    # A file of another layout is a cache of nothing: rebuilt on open.
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {store.LAYOUT + 1}")
    conn.close()
    assert ReadModel(path).version == 0


def test_another_halls_model_is_rebuilt(weeks: tuple[Path, int], tmp_path: Path) -> None:
    journal, count = weeks
    path = tmp_path / "model.sqlite3"
    model = caught_up(journal, path)
    with model.reading() as conn:
        conn.execute("UPDATE meta SET value = 'elsewhere' WHERE key = 'hall'")
    model.close()
    rebuilt = caught_up(journal, path)
    assert rebuilt.hall == HALL and rebuilt.version == count
    rebuilt.close()


def test_two_catch_ups_at_once(weeks: tuple[Path, int], tmp_path: Path) -> None:
    """A server and ``hall report`` on one file: each page is folded once."""
    journal_path, count = weeks
    one, two = ReadModel(tmp_path / "m.sqlite3"), ReadModel(tmp_path / "m.sqlite3")

    async def both() -> list[int]:
        journal = SqliteJournal(journal_path)
        try:
            return list(
                await asyncio.gather(
                    one.catch_up(journal, HALL, page=50), two.catch_up(journal, HALL, page=70)
                )
            )
        finally:
            await journal.close()

    assert asyncio.run(both()) == [count, count]
    reference = caught_up(journal_path, tmp_path / "ref.sqlite3")
    assert dump(one) == dump(reference)
    for model in (one, two, reference):
        model.close()


def test_every_event_type_is_understood(tmp_path: Path) -> None:
    source = inspect.getsource(store._Page.apply)
    for kind in typing.get_args(ev.AnyEvent):
        assert f"{kind.__name__}(" in source, kind.__name__
    config = report_hall()
    hall = Driver(config)
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    hall.do(Login(window="1", by="alice"), now)
    issued = hall.do(IssueTicket(category="general", printer="printer-1"), now)
    ticket = issued[-1].ticket  # type: ignore[union-attr]
    hall.do(MarkPrinted(ticket=ticket, printer="printer-1"), now)
    hall.do(CallNext(window="1", by="alice"), now + timedelta(minutes=1))
    hall.do(Start(window="1", by="alice"), now + timedelta(minutes=2))
    hall.do(ForceClose(window="1", by="boss", note="went home ill"), now + timedelta(minutes=3))
    hall.do(ChangeProfile(window="2", categories=("general",), by="boss"), now)
    hall.do(ChangePassword(staff="alice", password_hash=PASSWORD_HASH), now)
    hall.do(PostNotice(text="通知", text_en="Notice", by="boss"), now)
    hall.do(AcknowledgeAlert(alert="queue:general", by="boss"), now)
    log = [*hall.log, ev.DeviceReported(at=now, device="printer-1", status="offline")]
    kinds = {type(e).__name__ for e in log}
    assert kinds >= {"TicketPrinted", "WindowClosed", "ProfileChanged", "PasswordChanged",
                     "NoticePosted", "AlertAcknowledged", "DeviceReported"}  # fmt: skip
    model = caught_up(journal_of(tmp_path / "j.sqlite3", log), tmp_path / "m.sqlite3")
    row = dump(model)["tickets"][0]
    # Force-closed mid-service: it waits again, started no more; the window lost its staff.
    assert row[store.TICKET_COLUMNS.index("state")] == "waiting"
    assert row[store.TICKET_COLUMNS.index("started")] is None
    assert row[store.TICKET_COLUMNS.index("called")] is not None  # its first call stands
    assert ("1", None, None) in dump(model)["windows"]
    model.close()
