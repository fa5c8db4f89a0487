"""The periods a report covers: a day, an ISO week, a month, a quarter, a year or a range of
days, as managers write them. Days are the hall's business days (its own calendar dates)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta


class PeriodError(ValueError):
    """A period that cannot be read; the message says what forms are understood."""


FORMS = (
    "2026-10-15 (a day), 2026-W44 (an ISO week), 2026-10 (a month), 2026-Q4 (a quarter), "
    "2026 (a year), 2026-10-01..2026-10-31 (a range), or today, yesterday, this-week, "
    "last-week, this-month, last-month, this-quarter, last-quarter"
)
# A quarter's report is what managers read most; a range much longer is a mistake or a load.
LONGEST_DAYS = 366


@dataclass(frozen=True, slots=True)
class Period:
    label: str  # as asked
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def parse(text: str, today: date) -> Period:
    """The period ``text`` names; ``today`` (the hall's business day) anchors the relative
    names. Raises :class:`PeriodError` on anything else."""
    label = text.strip()
    start, end = _bounds(label.lower(), today)
    if end < start:
        raise PeriodError(f"period {label!r} ends before it starts")
    if (end - start).days + 1 > LONGEST_DAYS:
        raise PeriodError(f"period {label!r} is longer than {LONGEST_DAYS} days")
    return Period(label, start, end)


def _bounds(text: str, today: date) -> tuple[date, date]:
    relative = _relative(text, today)
    if relative is not None:
        return relative
    if ".." in text:
        first, _, last = text.partition("..")
        return _day(first.strip(), text), _day(last.strip(), text)
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        day = _day(text, text)
        return day, day
    if m := re.fullmatch(r"([0-9]{4})-w([0-9]{1,2})", text):
        year, week = int(m[1]), int(m[2])
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise PeriodError(f"{year} has no ISO week {week}") from None
        return monday, monday + timedelta(days=6)
    if m := re.fullmatch(r"([0-9]{4})-q([1-4])", text):
        return _quarter(int(m[1]), int(m[2]))
    if m := re.fullmatch(r"([0-9]{4})-([0-9]{1,2})", text):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"no month {month}: months are 1 to 12")
        return _month(year, month)
    if re.fullmatch(r"[0-9]{4}", text):
        year = int(text)
        _check_year(year)
        return date(year, 1, 1), date(year, 12, 31)
    raise PeriodError(f"cannot read the period {text!r}; write {FORMS}")


def _relative(text: str, today: date) -> tuple[date, date] | None:
    monday = today - timedelta(days=today.weekday())
    quarter = (today.month - 1) // 3 + 1
    match text:
        case "today":
            return today, today
        case "yesterday":
            return today - timedelta(days=1), today - timedelta(days=1)
        case "this-week":
            return monday, monday + timedelta(days=6)
        case "last-week":
            return monday - timedelta(days=7), monday - timedelta(days=1)
        case "this-month":
            return _month(today.year, today.month)
        case "last-month":
            first = today.replace(day=1) - timedelta(days=1)
            return _month(first.year, first.month)
        case "this-quarter":
            return _quarter(today.year, quarter)
        case "last-quarter":
            return _quarter(today.year, quarter - 1) if quarter > 1 else _quarter(today.year - 1, 4)
    return None


def _day(text: str, whole: str) -> date:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise PeriodError(f"cannot read the day {text!r} in {whole!r}; write YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"no such day: {text!r}") from None
    _check_year(day.year)
    return day


def _check_year(year: int) -> None:
    if not 2000 <= year <= 2100:
        raise PeriodError(f"year {year} is outside 2000-2100")


def _month(year: int, month: int) -> tuple[date, date]:
    _check_year(year)
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _quarter(year: int, quarter: int) -> tuple[date, date]:
    start, _ = _month(year, 3 * quarter - 2)
    _, end = _month(year, 3 * quarter)
    return start, end
