"""Business days and opening hours, in the hall's own time zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hall.config import WEEKDAYS, HallConfig, parse_clock


def local(config: HallConfig, now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(config.tz)


def business_day(config: HallConfig, now: datetime) -> date:
    """The hall's calendar day at ``now``: numbering restarts at local midnight."""
    return local(config, now).date()


def is_open(config: HallConfig, now: datetime) -> bool:
    """Whether ``now`` falls in one of the hall's opening periods (always, if none are set)."""
    if not config.hours.periods:
        return True
    moment = local(config, now)
    weekday, clock = WEEKDAYS[moment.weekday()], moment.time()
    return any(
        weekday in period.days and parse_clock(period.open) <= clock < parse_clock(period.close)
        for period in config.hours.periods
    )


def is_working_day(config: HallConfig, day: date) -> bool:
    """A working day of the hall's calendar: not a weekend day (unless worked in lieu, 调休)
    and not a holiday."""
    calendar = config.calendar
    if day in calendar.workdays:
        return True
    return WEEKDAYS[day.weekday()] not in calendar.weekend and day not in calendar.holidays


def add_working_days(config: HallConfig, start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself when ``days`` is 0): a
    deadline of "N working days" from something that happened on ``start``."""
    day = start
    for _ in range(days):
        day += timedelta(days=1)
        # A calendar with no working day at all cannot be configured away: stop after a year.
        for _ in range(366):
            if is_working_day(config, day):
                break
            day += timedelta(days=1)
    return day
