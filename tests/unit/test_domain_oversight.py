"""The oversight rules in the pure domain: a bad rating opens a case that managers walk through
verify, (confirm,) rectify, revisit and close, with deadlines in working days; breaches are
recorded once and excused by a manager, never deleted; alerts are acknowledged once a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hall import checkpoint
from hall.config import ConfigError, loads
from hall.domain import errors
from hall.domain.commands import (
    AcknowledgeAlert,
    CallNext,
    ExcuseBreach,
    Finish,
    IssueTicket,
    Login,
    OpenWindow,
    Rate,
    RecordBreach,
    Start,
    StepCase,
)
from hall.domain.events import AlertAcknowledged, BreachRecorded, CaseStepped, WindowOpened
from hall.domain.oversight import Stage, deadlines, due, overdue
from hall.domain.state import fold
from scheduling.calendar import add_working_days, is_working_day
from scheduling.estimate import ServiceTimes
from tests.unit.conftest import NEXT_LOCAL_MIDNIGHT, PASSWORD_HASH, T0, Driver, small_hall_toml

EXTRA = f"""
[[staff]]
username = "chief"
name = "Chief"
role = "manager"
password_hash = "{PASSWORD_HASH}"

[[devices]]
id = "pad-1"
kind = "pad"
window = "1"
token_sha256 = "{"0" * 64}"

[calendar]
holidays = [2024-03-05]
workdays = [2024-03-09]
"""


@pytest.fixture
def hall() -> Driver:
    return Driver(loads(small_hall_toml() + EXTRA, "<oversight hall>"))


def rated(hall: Driver, level: int, at: datetime = T0) -> str:
    """A ticket served at window 1 by alice and rated ``level`` on the pad; its id."""
    ticket = hall.do(IssueTicket(category="general"), at)[-1].ticket  # type: ignore[union-attr]
    if hall.state.windows["1"].staff is None:
        hall.do(Login(window="1", by="alice"), at)
    for command in (CallNext, Start, Finish):
        hall.do(command(window="1", by="alice"), at)
    reasons = ("attitude",) if level <= 2 else ()
    hall.do(Rate(ticket=ticket, level=level, reasons=reasons, by="pad-1", window="1"), at)
    return ticket


def step(hall: Driver, case: str, name: str, by: str = "boss", **fields: object) -> CaseStepped:
    event = hall.do(StepCase(case=case, step=name, by=by, **fields))[-1]  # type: ignore[arg-type]
    assert isinstance(event, CaseStepped)
    return event


def test_only_the_two_lowest_levels_open_a_case(hall: Driver) -> None:
    kept = [rated(hall, level) for level in (5, 4, 3, 2, 1)]
    assert sorted(hall.state.cases) == sorted(kept[3:])
    case = hall.state.cases[kept[4]]
    assert (case.window, case.staff, case.category, case.level) == ("1", "alice", "general", 1)
    assert (case.stage, case.day, case.channel) == (Stage.VERIFY, date(2024, 3, 4), "pad")


def test_a_valid_case_is_verified_rectified_revisited_and_closed(hall: Driver) -> None:
    case = rated(hall, 2)
    assert step(hall, case, "verify", valid=True).valid is True
    assert hall.state.cases[case].stage is Stage.RECTIFY
    assert step(hall, case, "rectify", text="talked the rules over with alice").by == "boss"
    revisit = step(hall, case, "revisit", by="chief", result="satisfied", text="called back")
    assert revisit.result == "satisfied"
    assert hall.state.cases[case].stage is Stage.CLOSE
    step(hall, case, "close")
    assert case not in hall.state.cases
    with pytest.raises(errors.UnknownCase):  # closed: nothing follows
        step(hall, case, "close")


def test_not_valid_needs_a_reason_and_a_second_manager(hall: Driver) -> None:
    case = rated(hall, 1)
    with pytest.raises(errors.InvalidInput):
        step(hall, case, "verify", valid=False)
    step(hall, case, "verify", valid=False, text="the visitor pressed the wrong button")
    assert hall.state.cases[case].stage is Stage.CONFIRM
    with pytest.raises(errors.SecondManagerNeeded):
        step(hall, case, "confirm", valid=False, text="I said so")
    step(hall, case, "confirm", by="chief", valid=False, text="seen on the camera")
    assert hall.state.cases[case].stage is Stage.CLOSE
    step(hall, case, "close", by="chief")
    assert not hall.state.cases


def test_a_second_manager_who_finds_it_valid_sends_it_to_rectification(hall: Driver) -> None:
    case = rated(hall, 1)
    step(hall, case, "verify", valid=False, text="mistaken")
    step(hall, case, "confirm", by="chief", valid=True)
    followed = hall.state.cases[case]
    assert (followed.stage, followed.valid) == (Stage.RECTIFY, True)


@pytest.mark.parametrize(
    ("name", "fields", "error"),
    [
        ("rectify", {"text": "x"}, errors.StepRefused),  # not verified yet
        ("close", {}, errors.StepRefused),
        ("verify", {}, errors.StepRefused),  # no verdict
        ("revisit", {"result": "satisfied"}, errors.StepRefused),
        ("skip", {}, errors.StepRefused),
    ],
)
def test_steps_out_of_order_are_refused_and_change_nothing(
    hall: Driver, name: str, fields: dict[str, object], error: type[errors.HallError]
) -> None:
    case = rated(hall, 2)
    before = len(hall.log)
    with pytest.raises(error):
        step(hall, case, name, **fields)
    assert len(hall.log) == before
    assert hall.state.cases[case].stage is Stage.VERIFY


def test_each_step_checks_its_own_fields_and_who_asks(hall: Driver) -> None:
    case = rated(hall, 2)
    with pytest.raises(errors.Forbidden):  # staff do not follow up their own ratings
        step(hall, case, "verify", by="alice", valid=True)
    with pytest.raises(errors.UnknownCase):
        step(hall, "20240304-A999", "verify", valid=True)
    step(hall, case, "verify", valid=True)
    with pytest.raises(errors.InvalidInput):  # what was done, said
        step(hall, case, "rectify", text="   ")
    with pytest.raises(errors.InvalidInput):
        step(hall, case, "rectify", text="done", valid=True)
    step(hall, case, "rectify", text="done")
    with pytest.raises(errors.UnknownReason):
        step(hall, case, "revisit", result="happy")
    with pytest.raises(errors.UnknownReason):
        step(hall, case, "revisit")


def test_working_days_skip_weekends_and_holidays_and_count_make_up_days(hall: Driver) -> None:
    config = hall.config
    assert not is_working_day(config, date(2024, 3, 5))  # a holiday on a Tuesday
    assert is_working_day(config, date(2024, 3, 9))  # a Saturday worked in lieu
    assert not is_working_day(config, date(2024, 3, 10))
    monday = date(2024, 3, 4)
    assert add_working_days(config, monday, 0) == monday
    assert add_working_days(config, monday, 1) == date(2024, 3, 6)
    # 6, 7, 8, 9 (worked Saturday), 11
    assert add_working_days(config, monday, 5) == date(2024, 3, 11)
    limits = deadlines(config, monday)
    assert limits[Stage.VERIFY] == limits[Stage.CONFIRM] == date(2024, 3, 6)
    assert limits[Stage.RECTIFY] == date(2024, 3, 11)
    # 10 working days: the five above, then 12, 13, 14, 15, 18
    assert limits[Stage.REVISIT] == limits[Stage.CLOSE] == date(2024, 3, 18)


def test_a_case_is_overdue_after_its_steps_last_day_in_the_halls_time_zone(hall: Driver) -> None:
    case = hall.state.cases[rated(hall, 2)]
    assert due(hall.config, case) == date(2024, 3, 6)
    last_moment = datetime(2024, 3, 6, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    assert not overdue(hall.config, case, last_moment)
    assert overdue(hall.config, case, last_moment + timedelta(seconds=1))
    step(hall, case.id, "verify", valid=True)  # the next step has its own, later, deadline
    assert not overdue(hall.config, case, last_moment + timedelta(days=2))


def breach(**fields: object) -> RecordBreach:
    values: dict[str, object] = {
        "breach": "idle_with_queue:1:7",
        "rule": "idle_with_queue",
        "window": "1",
        "staff": "alice",
        "since": T0,
        "measured": 200.0,
        "limit": 120.0,
        "evidence": (7,),
    }
    values.update(fields)
    return RecordBreach(**values)  # type: ignore[arg-type]


def test_a_breach_is_recorded_once_and_excused_by_a_manager_without_being_deleted(
    hall: Driver,
) -> None:
    recorded = hall.do(breach())
    assert isinstance(recorded[-1], BreachRecorded)
    assert hall.do(breach(measured=300.0)) == []  # found again: recorded once
    with pytest.raises(errors.InvalidInput):
        hall.do(breach(breach="x:1:1", rule="napping"))
    with pytest.raises(errors.UnknownWindow):
        hall.do(breach(breach="idle_with_queue:9:1", window="9"))
    with pytest.raises(errors.Forbidden):
        hall.do(ExcuseBreach(breach="idle_with_queue:1:7", reason="system down", by="alice"))
    with pytest.raises(errors.UnknownBreach):
        hall.do(ExcuseBreach(breach="nope", reason="system down", by="boss"))
    hall.do(ExcuseBreach(breach="idle_with_queue:1:7", reason="system down", by="boss"))
    kept = hall.state.breaches["idle_with_queue:1:7"]
    assert kept.excused and kept.staff == "alice"
    with pytest.raises(errors.AlreadyExcused):
        hall.do(ExcuseBreach(breach="idle_with_queue:1:7", reason="again", by="chief"))


def test_breaches_stay_a_hundred_days_then_only_the_journal_keeps_them(hall: Driver) -> None:
    hall.do(breach())
    hall.do(IssueTicket(category="general"), T0 + timedelta(days=99))
    assert "idle_with_queue:1:7" in hall.state.breaches
    hall.do(IssueTicket(category="general"), T0 + timedelta(days=101))
    assert not hall.state.breaches


def test_an_alert_is_acknowledged_once_a_day_by_a_manager(hall: Driver) -> None:
    with pytest.raises(errors.Forbidden):
        hall.do(AcknowledgeAlert(alert="idle:1", by="alice"))
    seen = hall.do(AcknowledgeAlert(alert="idle:1", by="boss"))
    assert isinstance(seen[-1], AlertAcknowledged)
    assert hall.do(AcknowledgeAlert(alert="idle:1", by="chief")) == []
    assert hall.state.acknowledged == {"idle:1": "boss"}
    hall.do(IssueTicket(category="general"), NEXT_LOCAL_MIDNIGHT)
    assert hall.state.acknowledged == {}


def test_a_manager_opens_a_window_for_staff_under_the_login_rules(hall: Driver) -> None:
    with pytest.raises(errors.Forbidden):
        hall.do(OpenWindow(window="1", staff="alice", by="bob"))
    with pytest.raises(errors.StaffNotAllowed):  # carol works at window 3 only
        hall.do(OpenWindow(window="1", staff="carol", by="boss"))
    opened = hall.do(OpenWindow(window="1", staff="alice", by="boss"))[-1]
    assert isinstance(opened, WindowOpened) and opened.by == "boss"
    assert hall.state.windows["1"].staff == "alice"
    assert hall.do(Login(window="1", by="alice")) == []  # she arrives: already hers


def test_cases_breaches_and_acknowledgements_survive_a_checkpoint(hall: Driver) -> None:
    case = rated(hall, 1)
    step(hall, case, "verify", valid=False, text="mistaken")
    hall.do(breach())
    hall.do(AcknowledgeAlert(alert="queue:general", by="boss"))
    blob = checkpoint.encode(hall.state, ServiceTimes.from_config(hall.config), hall.log[-1])
    restored = checkpoint.restore(blob, hall.config)
    assert restored is not None
    assert restored.state == hall.state == fold(hall.config, hall.log)
    assert restored.state.cases[case].verified_by == "boss"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[discipline]\npause_limits = {nap = 5}\n", "discipline.pause_limits.nap"),
        ("[assessment]\nweights = {charm = 5.0}\n", "assessment.weights.charm"),
        (
            "[assessment]\nweights = {satisfaction = 0.0, within_target = 0.0, discipline = 0.0,"
            " rectification = 0.0, participation = 0.0}\n",
            "assessment.weights",
        ),
        (
            '[calendar]\nweekend = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n',
            "calendar.weekend",
        ),
        ("[calendar]\nholidays = [2024-03-05]\nworkdays = [2024-03-05]\n", "calendar"),
        ("[cases]\nrevisit_results = []\n", "cases.revisit_results"),
    ],
)
def test_oversight_tables_are_checked_at_load(extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        loads(small_hall_toml() + extra, "<bad>")
    assert raised.value.key == key


def test_two_staff_members_never_share_a_staff_number() -> None:
    text = (
        small_hall_toml()
        .replace('username = "bob"\n', 'username = "bob"\nstaff_no = "7"\n')
        .replace('username = "carol"\n', 'username = "carol"\nstaff_no = "7"\n')
    )
    with pytest.raises(ConfigError) as raised:
        loads(text, "<bad>")
    assert raised.value.key == "staff[2].staff_no"
