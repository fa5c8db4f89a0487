"""Business days and opening hours, in the hall's own time zone."""

from __future__ import annotations

from datetime import date, datetime

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
