"""A small hall for the pure domain tests, and a driver that keeps every event it produced.

The hall: three categories (general A, tax B, estate C), three windows (1: general then tax,
2: tax then general, 3: estate only), four staff members (carol only at window 3; a manager),
two priority classes. Times are fixed aware datetimes; the hall's day is Asia/Shanghai's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from hall.config import HallConfig, loads
from hall.domain.commands import AnyCommand
from hall.domain.decide import execute
from hall.domain.events import AnyEvent
from hall.domain.state import HallState
from scheduling.policy import profile_order

# argon2id of "test-password", made once with argon2-cffi (hashing at import would cost ~50 ms).
PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$klE0e++W5ky/ccY3GSBQSw"
    "$mZs/rfJeqYJA3Yz2geg1JRFduhd2doCag3JNcDyC4aE"
)

# Monday 4 March 2024, 09:00 in Shanghai (UTC+8, no daylight saving).
T0 = datetime(2024, 3, 4, 1, 0, tzinfo=UTC)
# The first instant of Tuesday 5 March 2024 in Shanghai.
NEXT_LOCAL_MIDNIGHT = datetime(2024, 3, 4, 16, 0, tzinfo=UTC)

WINDOWS_SMALL = ("1", "2", "3")
STAFF_SMALL = ("alice", "bob", "carol", "boss")


def small_hall_toml(
    *,
    number_digits: int = 3,
    daily_quota: int = 0,
    issue_outside_hours: bool = True,
    periods: str = "",
) -> str:
    """The TOML text of the small hall; ``periods`` is extra ``[[hours.periods]]`` tables."""
    return f"""
[hall]
id = "unit-hall"
name = "单元测试大厅"
name_en = "Unit Test Hall"
timezone = "Asia/Shanghai"
number_digits = {number_digits}

[[zones]]
id = "general"
name = "综合"
name_en = "General"

[[categories]]
id = "general"
prefix = "A"
name = "综合事务"
name_en = "General affairs"
zone = "general"
daily_quota = {daily_quota}

[[categories]]
id = "tax"
prefix = "B"
name = "税务"
name_en = "Tax"
zone = "general"

[[categories]]
id = "estate"
prefix = "C"
name = "不动产"
name_en = "Real estate"
zone = "general"

[[windows]]
id = "1"
name = "1号窗口"
name_en = "Window 1"
zone = "general"
categories = ["general", "tax"]

[[windows]]
id = "2"
name = "2号窗口"
name_en = "Window 2"
zone = "general"
categories = ["tax", "general"]

[[windows]]
id = "3"
name = "3号窗口"
name_en = "Window 3"
zone = "general"
categories = ["estate"]

[[priorities]]
id = "green"
name = "绿色通道"
name_en = "Green lane"
rank = 20

[[priorities]]
id = "appointment"
name = "预约"
name_en = "Appointment"
rank = 10

[[staff]]
username = "alice"
name = "Alice"
password_hash = "{PASSWORD_HASH}"

[[staff]]
username = "bob"
name = "Bob"
password_hash = "{PASSWORD_HASH}"

[[staff]]
username = "carol"
name = "Carol"
password_hash = "{PASSWORD_HASH}"
windows = ["3"]

[[staff]]
username = "boss"
name = "Boss"
role = "manager"
password_hash = "{PASSWORD_HASH}"

[hours]
issue_outside_hours = {"true" if issue_outside_hours else "false"}
{periods}
"""


def small_hall(
    *,
    number_digits: int = 3,
    daily_quota: int = 0,
    issue_outside_hours: bool = True,
    periods: str = "",
) -> HallConfig:
    """The small hall, decoded and checked like any hall file."""
    text = small_hall_toml(
        number_digits=number_digits,
        daily_quota=daily_quota,
        issue_outside_hours=issue_outside_hours,
        periods=periods,
    )
    return loads(text, "<small hall>")


@dataclass
class Driver:
    """Runs commands through ``execute`` on one live state and keeps every event, in order."""

    config: HallConfig
    state: HallState = field(init=False)
    log: list[AnyEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = HallState.initial(self.config)

    def do(self, command: AnyCommand, now: datetime = T0) -> list[AnyEvent]:
        events = execute(self.state, command, now, profile_order)
        self.log.extend(events)
        return events


@pytest.fixture(scope="session")
def config() -> HallConfig:
    return small_hall()


@pytest.fixture
def hall(config: HallConfig) -> Driver:
    return Driver(config)
