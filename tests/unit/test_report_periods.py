"""Periods as managers write them, and clear refusals of the rest."""

from __future__ import annotations

from datetime import date

import pytest

from hall.reports.periods import PeriodError, parse

TODAY = date(2026, 11, 18)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-10", date(2026, 10, 1), date(2026, 10, 31)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2028-2", date(2028, 2, 1), date(2028, 2, 29)),  # leap year
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-W44", date(2026, 10, 26), date(2026, 11, 1)),  # ISO: Monday to Sunday
        ("2026-W01", date(2025, 12, 29), date(2026, 1, 4)),  # week 1 starts in the year before
        ("2020-W53", date(2020, 12, 28), date(2021, 1, 3)),
        ("2026-10-15", date(2026, 10, 15), date(2026, 10, 15)),
        ("2026-10-01..2026-10-31", date(2026, 10, 1), date(2026, 10, 31)),
        (" 2026-10-30 .. 2026-11-02 ", date(2026, 10, 30), date(2026, 11, 2)),
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("today", TODAY, TODAY),
        ("yesterday", date(2026, 11, 17), date(2026, 11, 17)),
        ("this-week", date(2026, 11, 16), date(2026, 11, 22)),
        ("last-week", date(2026, 11, 9), date(2026, 11, 15)),
        ("this-month", date(2026, 11, 1), date(2026, 11, 30)),
        ("last-month", date(2026, 10, 1), date(2026, 10, 31)),
        ("this-quarter", date(2026, 10, 1), date(2026, 12, 31)),
        ("last-quarter", date(2026, 7, 1), date(2026, 9, 30)),
    ],
)
def test_periods(text: str, start: date, end: date) -> None:
    period = parse(text, TODAY)
    assert (period.start, period.end) == (start, end)
    assert period.label == text.strip()
    assert period.days == (end - start).days + 1
    assert start in period and end in period


def test_last_quarter_in_the_first_quarter_is_last_year() -> None:
    period = parse("last-quarter", date(2027, 2, 1))
    assert (period.start, period.end) == (date(2026, 10, 1), date(2026, 12, 31))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-13", "no month 13"),
        ("2026-00", "no month 0"),
        ("2026-W54", "no ISO week 54"),
        ("2027-W53", "no ISO week 53"),  # 2027 has 52 (2026 has 53)
        ("2026-Q5", "cannot read"),
        ("2026-02-30", "no such day"),
        ("2026-10-31..2026-10-01", "ends before it starts"),
        ("2026-01-01..2027-06-30", "longer than 366 days"),
        ("2026-10-01..", "cannot read the day"),
        ("October", "cannot read the period"),
        ("", "cannot read the period"),
        ("1999-10", "outside 2000-2100"),
        ("２０２６-10", "cannot read"),  # full-width digits are not ASCII digits here
    ],
)
def test_bad_periods_say_why(text: str, says: str) -> None:
    with pytest.raises(PeriodError, match=says):
        parse(text, TODAY)
