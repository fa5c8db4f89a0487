"""What the state keeps for oversight: bad ratings' follow-up cases (差评整改) and discipline
breaches (纪律), with the rules each follows. Pure: no I/O, no clock.

A case's life, one manager's step at a time (each a ``CaseStepped`` event)::

    verify --valid--> rectify --> revisit --> close --> (closed)
       \\--not valid--> confirm --a second manager agrees: not valid--> close
                          \\--they find it valid--> rectify
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from scheduling.calendar import add_working_days, business_day

if TYPE_CHECKING:
    from hall.config import HallConfig


class Stage(StrEnum):
    """The step a case waits for."""

    VERIFY = "verify"
    CONFIRM = "confirm"
    RECTIFY = "rectify"
    REVISIT = "revisit"
    CLOSE = "close"


@dataclass(slots=True)
class Case:
    id: str  # the rated ticket's id
    number: str
    day: date  # the business day of the rating: deadlines count from it
    rated_at: datetime
    window: str
    staff: str
    category: str
    level: int
    channel: str
    stage: Stage = Stage.VERIFY
    valid: bool | None = None  # the verdict so far (None: not verified yet)
    verified_by: str | None = None  # who found it not valid: someone else must confirm


@dataclass(slots=True)
class Breach:
    id: str
    rule: str
    window: str
    staff: str | None
    since: datetime
    at: datetime
    excused: bool = False


# Each rule of hall.config.Discipline, with the unit of its ``measured`` and ``limit``.
RULES: dict[str, tuple[str, str, str]] = {
    "pause_too_long": ("超时暂停", "Pause too long", "minutes"),
    "pause_total": ("暂停累计超时", "Too much pause in a day", "minutes"),
    "idle_with_queue": ("有人等候时空闲", "Idle while people wait", "seconds"),
    "service_too_long": ("超时办理", "Transaction too long", "minutes"),
    "repeated_no_shows": ("频繁过号", "Repeated no-shows", "no-shows"),
    "late_login": ("迟到登录", "Logged in late", "minutes"),
    "early_logout": ("提前退出", "Logged out early", "minutes"),
    "call_not_started": ("叫号未办理", "Called but not started", "seconds"),
}

# Breaches stay in the state this long (a quarter and a little): a manager excuses them while
# preparing the quarterly assessment. The journal keeps them for ever.
BREACH_DAYS = 100


def next_stage(case: Case, step: str, valid: bool | None) -> Stage | None:
    """The stage after ``step`` (None: closed), or raise ValueError saying why the step does not
    follow. ``valid`` is the verdict a verify or confirm step gives."""
    expected = case.stage.value
    if step != expected:
        raise ValueError(f"case {case.number} waits for {expected}, not {step}")
    match case.stage:
        case Stage.VERIFY | Stage.CONFIRM:
            if valid is None:
                raise ValueError(f"{step} gives a verdict: valid true or false")
            if case.stage is Stage.VERIFY and not valid:
                return Stage.CONFIRM
            return Stage.RECTIFY if valid else Stage.CLOSE
        case Stage.RECTIFY:
            return Stage.REVISIT
        case Stage.REVISIT:
            return Stage.CLOSE
        case Stage.CLOSE:
            return None


def deadlines(config: HallConfig, day: date) -> dict[Stage, date]:
    """The last day for each step of a case opened on ``day`` (working days, inclusive);
    confirming and closing share the step before and after them."""
    cases = config.cases
    verify = add_working_days(config, day, cases.verify_days)
    revisit = add_working_days(config, day, cases.revisit_days)
    return {
        Stage.VERIFY: verify,
        Stage.CONFIRM: verify,
        Stage.RECTIFY: add_working_days(config, day, cases.rectify_days),
        Stage.REVISIT: revisit,
        Stage.CLOSE: revisit,
    }


def due(config: HallConfig, case: Case) -> date:
    """The last day of the step the case waits for."""
    return deadlines(config, case.day)[case.stage]


def overdue(config: HallConfig, case: Case, now: datetime) -> bool:
    """Past the end of its step's last day, in the hall's time zone."""
    return business_day(config, now) > due(config, case)
