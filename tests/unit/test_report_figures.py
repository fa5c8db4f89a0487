"""Report figures on a few hand-made days through the real core, with answers worked out by
hand: waits, services, ratings, a case through every step and one left to go overdue, an excused
breach, a pause, a no-show, a cancel and an expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hall.domain.commands import (
    CallNext,
    CancelTicket,
    ExcuseBreach,
    Finish,
    IssueTicket,
    Login,
    NoShow,
    Pause,
    Rate,
    Recall,
    RecordBreach,
    Resume,
    Start,
    StepCase,
)
from hall.reports.figures import compute, score
from hall.reports.model import Figures, Report
from hall.reports.periods import parse
from tests.unit.conftest import Driver
from tests.unit.report_support import caught_up, journal_of, report_hall

NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def at(day: int, hh: int, mm: int) -> datetime:
    """Local time in Shanghai (UTC+8) on October ``day``, 2026."""
    return datetime(2026, 10, day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hall = Driver(report_hall())
    do = hall.do
    # Monday 5 October.
    for window, who in (("1", "alice"), ("2", "bob")):
        do(Login(window=window, by=who), at(5, 9, 0))
    do(Login(window="3", by="carol"), at(5, 9, 20))  # 20 minutes late: a breach, not excused
    do(
        RecordBreach(
            breach="late_login:3:2026-10-05", rule="late_login", window="3", staff="carol",
            since=at(5, 9, 0), measured=20, limit=5,
        ),
        at(5, 9, 20),
    )  # fmt: skip
    a1 = do(IssueTicket(category="general"), at(5, 9, 0))[-1].ticket  # type: ignore[union-attr]
    a2 = do(IssueTicket(category="general"), at(5, 9, 2))[-1].ticket  # type: ignore[union-attr]
    do(IssueTicket(category="tax"), at(5, 9, 5))
    do(IssueTicket(category="estate"), at(5, 9, 10))
    do(CallNext(window="1", by="alice"), at(5, 9, 4))  # A001: waited 4 minutes
    do(Start(window="1", by="alice"), at(5, 9, 5))
    do(Finish(window="1", by="alice"), at(5, 9, 15))  # served 10 minutes
    do(Rate(ticket=a1, level=5, by="pad-1", window="1"), at(5, 9, 16))
    do(CallNext(window="2", by="bob"), at(5, 9, 6))  # B001: 1 minute
    do(Start(window="2", by="bob"), at(5, 9, 6))
    do(Finish(window="2", by="bob"), at(5, 9, 26))  # 20 minutes
    b1 = hall.state.windows["2"].served
    assert b1 is not None
    do(Rate(ticket=b1, level=2, reasons=("slow",), by="pad-2", window="2"), at(5, 9, 27))
    assert do(CallNext(window="1", by="alice"), at(5, 9, 20))[-1].ticket == a2  # type: ignore[union-attr]
    do(Recall(window="1", by="alice"), at(5, 9, 22))
    do(NoShow(window="1", by="alice"), at(5, 9, 25))  # A002: 18 minutes, over its target of 15
    do(Pause(window="2", by="bob", reason="break"), at(5, 9, 30))
    do(CallNext(window="3", by="carol"), at(5, 9, 40))  # C001: 30 minutes
    do(Start(window="3", by="carol"), at(5, 9, 41))
    do(Finish(window="3", by="carol"), at(5, 9, 49))  # 8 minutes
    c1 = hall.state.windows["3"].served
    assert c1 is not None
    do(Rate(ticket=c1, level=None, by="pad-3", window="3"), at(5, 9, 50))  # not rated
    do(Resume(window="2", by="bob"), at(5, 10, 10))  # 40 minutes paused, over 30
    do(
        RecordBreach(
            breach="pause_too_long:2:x", rule="pause_too_long", window="2", staff="bob",
            since=at(5, 9, 30), measured=40, limit=30,
        ),
        at(5, 10, 10),
    )  # fmt: skip
    do(ExcuseBreach(breach="pause_too_long:2:x", reason="system", by="boss"), at(5, 11, 0))
    a3 = do(IssueTicket(category="general"), at(5, 10, 0))[-1].ticket  # type: ignore[union-attr]
    do(CancelTicket(ticket=a3, reason="visitor"), at(5, 10, 5))
    do(IssueTicket(category="general"), at(5, 16, 0))  # A004: never called, expires
    # Tuesday 6 October: the case of B001 verified; a new bad rating, by phone, left alone.
    do(StepCase(case=b1, step="verify", by="boss", valid=True), at(6, 8, 50))
    d2 = do(IssueTicket(category="general", secret="s3cret"), at(6, 9, 0))[-1].ticket  # type: ignore[union-attr]
    do(CallNext(window="1", by="alice"), at(6, 9, 0))  # 0 minutes
    do(Start(window="1", by="alice"), at(6, 9, 0))
    do(Finish(window="1", by="alice"), at(6, 9, 30))  # 30 minutes
    do(Rate(ticket=d2, level=1, reasons=("attitude",), by="visitor", secret="s3cret"), at(6, 9, 31))
    do(StepCase(case=b1, step="rectify", by="boss", text="retrained"), at(7, 9, 0))
    do(StepCase(case=b1, step="revisit", by="boss2", result="satisfied"), at(8, 9, 0))
    do(StepCase(case=b1, step="close", by="boss"), at(8, 9, 5))
    directory = tmp_path_factory.mktemp("report-figures")
    journal_of(directory / "journal.sqlite3", hall.log)
    return directory


def report(model_dir: Path, period: str, by: str = "hall") -> Report:
    model = caught_up(model_dir / "journal.sqlite3", model_dir / "reports.sqlite3")
    try:
        return compute(model, report_hall(), parse(period, date(2026, 11, 1)), by, NOW)  # type: ignore[arg-type]
    finally:
        model.close()


def test_the_month_for_the_hall(model_dir: Path) -> None:
    month = report(model_dir, "2026-10")
    t = month.total
    assert (t.issued, t.served, t.no_shows, t.cancelled, t.expired) == (7, 4, 1, 1, 1)
    assert t.wait_mean == pytest.approx((4 + 1 + 18 + 30 + 0) / 5)
    assert t.wait_p90 == pytest.approx(30)  # nearest rank: the 5th of 5
    assert t.within_target == pytest.approx(3 / 5)
    assert t.service_mean == pytest.approx((10 + 20 + 8 + 30) / 4)
    assert t.service_p90 == pytest.approx(30)
    assert (t.rated, t.levels) == (3, (1, 0, 0, 1, 1))
    assert t.participation == pytest.approx(3 / 4)
    assert t.satisfaction == pytest.approx(1 / 3)
    assert t.bad_rate == pytest.approx(2 / 3)
    assert t.cases == 2
    assert t.feedback_rate == pytest.approx(1 / 2)  # the phone's case is not verified yet
    assert t.rectification_rate == 1.0 and t.revisit_rate == 1.0
    assert t.overdue_cases == 1  # verify was due on the 7th
    assert (t.breaches, t.excused) == (2, 1)
    assert month.breaches_by_rule == {"late_login": 1, "pause_too_long": 1}
    assert t.pause_minutes == pytest.approx(40)
    assert t.score is None and month.rows == ()
    assert [(h.hour, h.issued) for h in month.hours if h.issued] == [(9, 5), (10, 1), (16, 1)]
    assert [h.hour for h in month.hours] == list(range(9, 17))
    assert [(d.day.day, d.issued, d.served) for d in month.days] == [(5, 6, 3), (6, 1, 1)]
    assert month.days[0].satisfaction == pytest.approx(1 / 2)


def test_windows_and_their_scores(model_dir: Path) -> None:
    rows = {f.key: f for f in report(model_dir, "2026-10", "window").rows}
    assert list(rows) == ["1", "2", "3"]
    one, two, three = rows["1"], rows["2"], rows["3"]
    assert (one.issued, one.served, one.no_shows) == (3, 2, 1)
    assert one.wait_mean == pytest.approx(22 / 3)
    assert one.within_target == pytest.approx(2 / 3)
    assert (one.cases, one.overdue_cases, one.rectification_rate) == (1, 1, None)
    # satisfaction 50, within target 66.7, discipline 100, rectification 100 (none valid yet),
    # participation 100; weights 40/20/20/10/10.
    assert one.score == pytest.approx(
        (40 * 50 + 20 * 200 / 3 + 20 * 100 + 1000 + 1000) / 100, abs=0.01
    )
    assert (two.breaches, two.excused, two.pause_minutes) == (1, 1, pytest.approx(40))
    assert two.score == pytest.approx(60)  # satisfaction 0; the excused breach costs nothing
    assert (three.rated, three.participation, three.satisfaction) == (0, 0.0, None)
    # No satisfaction to weigh: within target 0, discipline 95 (one breach), rectification 100,
    # participation 0, over weights 20+20+10+10.
    assert three.score == pytest.approx((20 * 95 + 10 * 100) / 60, abs=0.01)
    assert three.name == "3号窗口" and three.name_en == "Window 3"


def test_staff_zones_and_categories(model_dir: Path) -> None:
    staff = {f.key: f for f in report(model_dir, "2026-10", "staff").rows}
    assert list(staff) == ["alice", "bob", "carol"]  # the manager has no row
    assert staff["carol"].name == "Carol" and staff["carol"].breaches == 1
    assert staff["bob"].cases == 1 and staff["alice"].cases == 1
    zones = report(model_dir, "2026-10", "zone").rows
    assert [(z.key, z.issued, z.breaches) for z in zones] == [("general", 7, 2)]
    categories = {f.key: f for f in report(model_dir, "2026-10", "category").rows}
    assert [(k, f.issued) for k, f in categories.items()] == [
        ("general", 5),
        ("tax", 1),
        ("estate", 1),
    ]
    assert categories["tax"].bad_rate == 1.0 and categories["tax"].breaches == 0


def test_a_day_holds_that_day_only(model_dir: Path) -> None:
    tuesday = report(model_dir, "2026-10-06").total
    assert (tuesday.issued, tuesday.served, tuesday.cases, tuesday.breaches) == (1, 1, 1, 0)
    assert tuesday.feedback_rate == 0.0 and tuesday.rectification_rate is None
    week = report(model_dir, "2026-W41").total  # 5 to 11 October: everything
    assert week.issued == 7
    assert report(model_dir, "2026-09").total.issued == 0


def test_score_weights_only_what_is_defined() -> None:
    config = report_hall()
    blank = Figures(
        key="x", name="x", issued=0, served=0, no_shows=0, cancelled=0, expired=0,
        wait_mean=None, wait_p90=None, service_mean=None, service_p90=None, within_target=None,
        rated=0, levels=(0, 0, 0, 0, 0), participation=None, satisfaction=None, bad_rate=None,
        cases=0, feedback_rate=None, rectification_rate=None, revisit_rate=None,
        overdue_cases=0, breaches=30, excused=0, pause_minutes=0,
    )  # fmt: skip
    assert score(blank, config) is None  # handled nothing: nothing to assess
    import msgspec

    busy = msgspec.structs.replace(blank, issued=1, satisfaction=1.0)
    # discipline floors at 0 (30 breaches x 5 points); rectification 100 with no valid case.
    assert score(busy, config) == pytest.approx((40 * 100 + 20 * 0 + 10 * 100) / 70, abs=0.01)
