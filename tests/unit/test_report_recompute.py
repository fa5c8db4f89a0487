"""Every figure of a simulated month's report, recomputed here from the raw events by a fold of
this test's own (plain Python over the event list, nothing of hall/reports), and compared: for
the hall and per zone, category, window and staff member, for the month, a week and a day.

The month runs through the real core (scheduling/history.py): calls, recalls, no-shows,
transfers, cancels, outcomes, pad and phone ratings, "not rated", pauses, late logins and long
pauses recorded as breaches (some excused), and every bad rating's case stepped by two managers
over the following days, some left to go overdue. The read model folds it in small pages and in
two sittings, as a server catching up would.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from hall.config import HallConfig
from hall.domain import events as ev
from hall.domain.state import HallState
from hall.journal.sqlite import SqliteJournal
from hall.reports.figures import compute
from hall.reports.periods import parse
from hall.reports.store import ReadModel
from scheduling.history import History, Plan, working_days
from scheduling.policy import profile_order
from tests.unit.report_support import HALL, journal_of, report_hall

NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # the reports are read on Tuesday 3 November
STAFF = {"1": "alice", "2": "bob", "3": "carol"}


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ev.AnyEvent], ReadModel]:
    config = report_hall()
    history = History(
        HallState.initial(config), profile_order, STAFF, ("boss", "boss2"), random.Random(44)
    )
    events: list[ev.AnyEvent] = []
    for day in history.days(working_days(date(2026, 10, 1), 22), Plan(tickets=110)):
        events += day
    directory = tmp_path_factory.mktemp("recompute")
    journal_path = journal_of(directory / "journal.sqlite3", events, chunk=777)
    model = ReadModel(directory / "reports.sqlite3")

    async def catch_up() -> None:
        journal = SqliteJournal(journal_path)
        try:
            half = await journal.read(HALL, 0, len(events) // 2)
            model.fold(HALL, half)  # a first sitting stopped half-way
            model.fold(HALL, half[-100:])  # a page folded again changes nothing
            await model.catch_up(journal, HALL, page=997)
        finally:
            await journal.close()

    asyncio.run(catch_up())
    return events, model


def test_the_month_has_what_the_figures_need(
    month: tuple[list[ev.AnyEvent], ReadModel],
) -> None:
    events, model = month
    kinds = {type(e).__name__ for e in events}
    assert kinds >= {
        "TicketRecalled", "TicketNoShow", "TicketTransferred", "TicketCancelled", "DayStarted",
        "WindowPaused", "WindowResumed", "BreachRecorded", "BreachExcused", "CaseStepped",
    }  # fmt: skip
    steps = {e.step for e in events if isinstance(e, ev.CaseStepped)}
    assert steps == {"verify", "confirm", "rectify", "revisit", "close"}
    assert any(isinstance(e, ev.TicketRated) and e.channel == "phone" for e in events)
    assert any(isinstance(e, ev.TicketRated) and e.level is None for e in events)
    assert model.version == len(events)


@pytest.mark.parametrize("period", ["2026-10", "2026-W42", "2026-10-20"])
@pytest.mark.parametrize("by", ["hall", "zone", "category", "window", "staff"])
def test_every_figure_recomputed(
    month: tuple[list[ev.AnyEvent], ReadModel], period: str, by: str
) -> None:
    events, model = month
    config = report_hall()
    asked = parse(period, date(2026, 11, 3))
    report = compute(model, config, asked, by, NOW)  # type: ignore[arg-type]
    expected = recompute(config, events, asked.start, asked.end, by)
    assert report.version == len(events)
    assert report.total.issued > 0
    _same(_figures(report.total), expected["total"], "total")
    got = {f.key: _figures(f) for f in report.rows}
    if by == "hall":
        assert got == {}
    else:
        # Every group with something to count has its row (the hall file's groups all do).
        assert set(expected["rows"]) <= set(got)
        for key, row in got.items():
            _same(row, expected["rows"].get(key, _blank(config, by, key)), key)
    assert report.breaches_by_rule == expected["by_rule"]
    assert [(h.hour, h.issued, h.served) for h in report.hours] == expected["hours"]
    assert [h.wait_mean for h in report.hours] == pytest.approx(expected["hour_waits"])
    assert [(d.day, d.issued, d.served) for d in report.days] == expected["days"]
    assert [d.wait_mean for d in report.days] == pytest.approx(expected["day_waits"])
    assert [d.satisfaction for d in report.days] == pytest.approx(expected["day_satisfaction"])


def _figures(f: Any) -> dict[str, Any]:
    import msgspec

    row = msgspec.structs.asdict(f)
    for name in ("key", "name", "name_en"):
        row.pop(name)
    return row


def _same(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert set(got) == set(want), where
    for name, value in want.items():
        if isinstance(value, float):
            assert got[name] == pytest.approx(value, abs=1e-6), f"{where}: {name}"
        else:
            assert got[name] == value, f"{where}: {name}"


# -- the test's own fold ------------------------------------------------------------------------


@dataclass
class T:
    day: date
    category: str
    issued: datetime
    called: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    window: str | None = None
    staff: str | None = None
    state: str = "waiting"
    level: int | None = None


@dataclass
class C:
    day: date
    category: str
    window: str
    staff: str
    stage: str = "verify"
    verified: bool = False
    valid: bool | None = None
    rectified: bool = False
    revisited: bool = False


@dataclass
class Group:
    tickets: list[T] = field(default_factory=list)
    cases: list[C] = field(default_factory=list)
    breaches: list[tuple[str, bool]] = field(default_factory=list)
    paused: float = 0.0


def recompute(
    config: HallConfig, events: list[ev.AnyEvent], start: date, end: date, by: str
) -> dict[str, Any]:
    tickets: dict[str, T] = {}
    cases: dict[str, C] = {}
    breaches: dict[str, list[Any]] = {}  # id -> [day, rule, window, staff, excused]
    pauses: list[list[Any]] = []  # [day, window, staff, start, end]
    at_window: dict[str, str | None] = {}
    open_pause: dict[str, list[Any]] = {}
    today: date | None = None

    def end_pause(window: str, when: datetime) -> None:
        if window in open_pause:
            open_pause.pop(window)[4] = when

    for e in events:
        match e:
            case ev.DayStarted():
                today = e.day
                for t in e.expired:
                    tickets[t].state, tickets[t].ended = "expired", e.at
            case ev.TicketIssued():
                tickets[e.ticket] = T(e.day, e.category, e.at)
                today = today or e.day
            case ev.TicketCalled():
                t = tickets[e.ticket]
                t.called = t.called or e.at
                t.window, t.staff, t.state = e.window, at_window.get(e.window), "called"
            case ev.ServiceStarted():
                t = tickets[e.ticket]
                t.started, t.window, t.staff = e.at, e.window, at_window.get(e.window)
                t.state = "serving"
            case ev.ServiceFinished() | ev.TicketNoShow():
                t = tickets[e.ticket]
                t.window, t.staff, t.ended = e.window, at_window.get(e.window), e.at
                t.state = "finished" if isinstance(e, ev.ServiceFinished) else "no_show"
            case ev.TicketTransferred():
                tickets[e.ticket].state, tickets[e.ticket].started = "waiting", None
            case ev.TicketCancelled():
                tickets[e.ticket].state = "cancelled"
            case ev.WindowOpened():
                end_pause(e.window, e.at)
                at_window[e.window] = e.staff
            case ev.WindowClosed():
                end_pause(e.window, e.at)
                at_window[e.window] = None
                if e.ticket is not None:
                    tickets[e.ticket].state, tickets[e.ticket].started = "waiting", None
            case ev.WindowPaused():
                end_pause(e.window, e.at)
                pause = [today, e.window, at_window.get(e.window), e.at, None]
                pauses.append(pause)
                open_pause[e.window] = pause
            case ev.WindowResumed():
                end_pause(e.window, e.at)
            case ev.TicketRated():
                t = tickets[e.ticket]
                if e.level is not None:
                    t.level = e.level
                if e.level in (1, 2):
                    cases[e.ticket] = C(today or t.day, t.category, e.window, e.staff)
            case ev.CaseStepped():
                c = cases[e.case]
                if e.step == "verify":
                    c.verified = True
                if e.step in ("verify", "confirm"):
                    c.valid = e.valid
                c.rectified |= e.step == "rectify"
                c.revisited |= e.step == "revisit"
                c.stage = {
                    "verify": "rectify" if e.valid else "confirm",
                    "confirm": "rectify" if e.valid else "close",
                    "rectify": "revisit",
                    "revisit": "close",
                    "close": "closed",
                }[e.step]
            case ev.BreachRecorded():
                breaches[e.breach] = [today, e.rule, e.window, e.staff, False]
            case ev.BreachExcused():
                breaches[e.breach][4] = True

    zone = {c.id: c.zone for c in config.categories}
    window_zone = {w.id: w.zone for w in config.windows}

    def ticket_group(category: str, window: str | None, staff: str | None) -> str | None:
        return {"hall": None, "zone": zone.get(category), "category": category,
                "window": window, "staff": staff}[by]  # fmt: skip

    def window_group(window: str, staff: str | None) -> str | None:
        return {"hall": None, "zone": window_zone.get(window), "category": None,
                "window": window, "staff": staff}[by]  # fmt: skip

    total, rows = Group(), defaultdict[str, Group](Group)

    def into(key: str | None) -> list[Group]:
        return [total] if key is None else [total, rows[key]]

    inside = [t for t in tickets.values() if start <= t.day <= end]
    for t in inside:
        for g in into(ticket_group(t.category, t.window, t.staff)):
            g.tickets.append(t)
    for c in cases.values():
        if start <= c.day <= end:
            for g in into(ticket_group(c.category, c.window, c.staff)):
                g.cases.append(c)
    by_rule: dict[str, int] = defaultdict(int)
    for day, rule, window, staff, excused in breaches.values():
        if start <= day <= end:
            by_rule[rule] += 1
            for g in into(window_group(window, staff)):
                g.breaches.append((rule, excused))
    for day, window, staff, began, ended in pauses:
        if start <= day <= end:
            if ended is None:
                midnight = datetime.combine(day + timedelta(days=1), time(), config.tz)
                ended = max(began, min(NOW, midnight))
            for g in into(window_group(window, staff)):
                g.paused += (ended - began).total_seconds()

    scored = by in ("window", "staff")
    hours: dict[int, list[Any]] = defaultdict(lambda: [0, 0, []])
    days: dict[date, list[Any]] = defaultdict(lambda: [0, 0, [], []])
    for t in inside:
        hour = hours[t.issued.astimezone(config.tz).hour]
        hour[0] += 1
        days[t.day][0] += 1
        if t.called is not None:
            hour[2].append(_wait(t))
            days[t.day][2].append(_wait(t))
        if t.state == "finished":
            assert t.ended is not None
            hours[t.ended.astimezone(config.tz).hour][1] += 1
            days[t.day][1] += 1
        if t.level is not None:
            days[t.day][3].append(t.level)
    span = range(min(hours), max(hours) + 1) if hours else range(0)
    return {
        "total": expected_figures(config, total, False),
        "rows": {k: expected_figures(config, g, scored) for k, g in rows.items()},
        "by_rule": dict(sorted(by_rule.items())),
        "hours": [(h, hours[h][0], hours[h][1]) for h in span],
        "hour_waits": [_mean(hours[h][2]) for h in span],
        "days": [(d, v[0], v[1]) for d, v in sorted(days.items())],
        "day_waits": [_mean(v[2]) for _, v in sorted(days.items())],
        "day_satisfaction": [
            _share(sum(x >= 4 for x in v[3]), len(v[3])) for _, v in sorted(days.items())
        ],
    }


def _wait(t: T) -> float:
    assert t.called is not None
    return (t.called - t.issued).total_seconds() / 60


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _p90(values: list[float]) -> float | None:
    return sorted(values)[math.ceil(len(values) * 9 / 10) - 1] if values else None


def _working_days_after(config: HallConfig, day: date, n: int) -> date:
    """The n-th weekday after ``day`` (the report hall has no holidays)."""
    assert not config.calendar.holidays and not config.calendar.workdays
    while n:
        day += timedelta(days=1)
        n -= day.weekday() < 5
    return day


def _overdue(config: HallConfig, c: C) -> bool:
    if c.stage == "closed":
        return False
    cases = config.cases
    days = {"verify": cases.verify_days, "confirm": cases.verify_days,
            "rectify": cases.rectify_days}.get(c.stage, cases.revisit_days)  # fmt: skip
    return NOW.astimezone(config.tz).date() > _working_days_after(config, c.day, days)


def expected_figures(config: HallConfig, g: Group, scored: bool) -> dict[str, Any]:
    targets = {c.id: c.target_wait_minutes for c in config.categories}
    served = [t for t in g.tickets if t.state == "finished"]
    called = [t for t in g.tickets if t.called is not None]
    waits = [_wait(t) for t in called]
    services = [(t.ended - t.started).total_seconds() / 60 for t in served if t.ended and t.started]
    levels = [t.level for t in g.tickets if t.level is not None]
    valid = [c for c in g.cases if c.valid]
    unexcused = sum(not excused for _, excused in g.breaches)
    figures: dict[str, Any] = {
        "issued": len(g.tickets),
        "served": len(served),
        "no_shows": sum(t.state == "no_show" for t in g.tickets),
        "cancelled": sum(t.state == "cancelled" for t in g.tickets),
        "expired": sum(t.state == "expired" for t in g.tickets),
        "wait_mean": _mean(waits),
        "wait_p90": _p90(waits),
        "service_mean": _mean(services),
        "service_p90": _p90(services),
        "within_target": _share(sum(_wait(t) <= targets[t.category] for t in called), len(called)),
        "rated": len(levels),
        "levels": tuple(levels.count(level) for level in (5, 4, 3, 2, 1)),
        "participation": _share(len(levels), len(served)),
        "satisfaction": _share(sum(x >= 4 for x in levels), len(levels)),
        "bad_rate": _share(sum(x <= 2 for x in levels), len(levels)),
        "cases": len(g.cases),
        "feedback_rate": _share(sum(c.verified for c in g.cases), len(g.cases)),
        "rectification_rate": _share(sum(c.rectified for c in valid), len(valid)),
        "revisit_rate": _share(sum(c.revisited for c in valid), len(valid)),
        "overdue_cases": sum(_overdue(config, c) for c in g.cases),
        "breaches": len(g.breaches),
        "excused": len(g.breaches) - unexcused,
        "pause_minutes": g.paused / 60,
        "score": None,
    }
    if scored and g.tickets:
        parts = {
            "satisfaction": figures["satisfaction"],
            "within_target": figures["within_target"],
            "discipline": max(0.0, 1 - config.assessment.breach_penalty * unexcused / 100),
            "rectification": 1.0 if not valid else figures["rectification_rate"],
            "participation": figures["participation"],
        }
        weights = config.assessment.weights
        used = [(weights[k], v * 100) for k, v in parts.items() if v is not None and weights[k]]
        figures["score"] = sum(w * v for w, v in used) / sum(w for w, _ in used)
    return figures


def _blank(config: HallConfig, by: str, key: str) -> dict[str, Any]:
    return expected_figures(config, Group(), by in ("window", "staff"))
