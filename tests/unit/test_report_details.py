"""What the oversight API reads from the read model: a case's rating (the phone's, after "not
rated" on the pad) and steps up to a version, a breach's measure, evidence and excuse by day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hall.domain.commands import (
    CallNext,
    ExcuseBreach,
    Finish,
    IssueTicket,
    Login,
    Rate,
    RecordBreach,
    Start,
    StepCase,
)
from hall.reports import details
from tests.unit.conftest import Driver
from tests.unit.report_support import caught_up, journal_of, report_hall

MONDAY = datetime(2026, 3, 2, 1, tzinfo=UTC)  # 09:00 in the hall


def served(hall: Driver, now: datetime, secret: str) -> str:
    issued = hall.do(IssueTicket(category="general", secret=secret), now)
    ticket: str = issued[-1].ticket  # type: ignore[union-attr]
    hall.do(CallNext(window="1", by="alice"), now)
    hall.do(Start(window="1", by="alice"), now)
    hall.do(Finish(window="1", by="alice"), now)
    return ticket


def test_cases_and_breaches_read_back_with_their_words(tmp_path: Path) -> None:
    hall = Driver(report_hall())
    now = MONDAY
    hall.do(Login(window="1", by="alice"), now)
    pad = served(hall, now, secret="other")
    hall.do(
        Rate(ticket=pad, level=1, reasons=("slow", "wait"), comment="太慢", by="pad-1", window="1"),
        now,
    )
    phone = served(hall, now, secret="s3cret")
    hall.do(Rate(ticket=phone, level=None, by="pad-1", window="1"), now)
    hall.do(Rate(ticket=phone, level=2, reasons=("attitude",), by="visitor", secret="s3cret"), now)
    verified = now + timedelta(minutes=5)
    hall.do(StepCase(case=pad, step="verify", by="boss", valid=True, text="属实"), verified)
    upto = len(hall.log)
    hall.do(StepCase(case=pad, step="rectify", by="boss", text="增开窗口"), verified)
    since = now - timedelta(minutes=20)
    for breach, day in (
        ("pause_too_long:1:old", now),
        ("pause_too_long:1:new", now + timedelta(1)),
    ):
        hall.do(
            RecordBreach(
                breach=breach,
                rule="pause_too_long",
                window="1",
                staff="alice",
                since=since,
                measured=20.0,
                limit=15.0,
                evidence=(3, 7),
            ),
            day,
        )
    hall.do(
        ExcuseBreach(breach="pause_too_long:1:new", reason="就医", by="boss"), now + timedelta(1)
    )
    model = caught_up(journal_of(tmp_path / "j.sqlite3", hall.log), tmp_path / "m.sqlite3")

    found = details.cases(model, [pad, phone, "unknown"], upto)
    assert set(found) == {pad, phone}  # an id the model lacks is left out
    assert (found[pad].reasons, found[pad].comment) == (("slow", "wait"), "太慢")
    # The last rating counts: the phone's, after the pad's "not rated".
    assert (found[phone].reasons, found[phone].comment, found[phone].steps) == (
        ("attitude",),
        None,
        [],
    )
    (step,) = found[pad].steps  # the rectify step is past ``upto``: not shown yet
    assert (step.step, step.by, step.valid, step.text, step.at) == (
        "verify",
        "boss",
        True,
        "属实",
        verified,
    )
    assert [s.step for s in details.cases(model, [pad], len(hall.log))[pad].steps] == [
        "verify",
        "rectify",
    ]

    recent = details.breaches(model, date(2026, 3, 3))
    assert list(recent) == ["pause_too_long:1:new"]  # the older day's is before ``since``
    new = recent["pause_too_long:1:new"]
    assert (new.measured, new.limit, new.evidence) == (20.0, 15.0, (3, 7))
    assert new.excuse is not None and (new.excuse.by, new.excuse.reason) == ("boss", "就医")
    old = details.breaches(model, date(2026, 3, 2))["pause_too_long:1:old"]
    assert old.excuse is None and old.evidence == (3, 7)
    model.close()
