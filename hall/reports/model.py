"""What a report says: the figures of a period, for the hall and per group. The contract between
the read model (which computes them), the report pages, the CSV and the command line.

Every rate is a share from 0 to 1, None where nothing was there to count (no rating: no
satisfaction rate); times are minutes. See the README's Reports section for how each is counted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

Grouping = Literal["hall", "zone", "category", "window", "staff"]


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # the group's id ("" for the whole hall)
    name: str  # its name as the hall file gives it (a staff member's in full: manager-only)
    issued: int
    served: int  # finished: done, accepted with papers to follow, or returned
    no_shows: int
    cancelled: int
    expired: int
    wait_mean: float | None  # issue to call
    wait_p90: float | None
    service_mean: float | None  # start to finish
    service_p90: float | None
    within_target: float | None  # share of called tickets called within their category's target
    rated: int  # ratings given (levels 1-5)
    levels: tuple[int, int, int, int, int]  # counts of levels 5, 4, 3, 2, 1
    participation: float | None  # rated / served
    satisfaction: float | None  # (非常满意 + 满意) / rated
    bad_rate: float | None  # (不满意 + 非常不满意) / rated
    cases: int  # bad ratings' cases opened in the period
    feedback_rate: float | None  # cases verified / cases (三个100%: 反馈)
    rectification_rate: float | None  # valid cases rectified / valid cases (整改)
    revisit_rate: float | None  # cases revisited / cases that need it (回访)
    overdue_cases: int  # open cases past their step's deadline now
    breaches: int  # recorded in the period, excused ones included
    excused: int
    pause_minutes: float
    score: float | None = None  # the assessment score, 0-100 (windows and staff only)
    name_en: str = ""  # its English name ("" for staff and for ids the hall file no longer has)


class HourLoad(msgspec.Struct, frozen=True, kw_only=True):
    hour: int  # local hour of day, 0-23
    issued: int
    served: int
    wait_mean: float | None


class DayLoad(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    issued: int
    served: int
    wait_mean: float | None
    satisfaction: float | None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    hall: str
    hall_name: str
    period: str  # as asked: "2026-10", "2026-Q4", "2026-W44", "2026-10-15", "a..b"
    start: date
    end: date  # inclusive
    by: Grouping
    total: Figures
    rows: tuple[Figures, ...]  # one per group (empty when by == "hall")
    hours: tuple[HourLoad, ...]  # the period's load by hour of day
    days: tuple[DayLoad, ...]  # each business day of the period
    breaches_by_rule: dict[str, int]
    version: int  # the journal version the figures include
    generated_at: datetime
