"""The discipline watcher through the real core: every command goes through ``execute``, the
watcher sees each event as the engine's hook would, and each breach it finds is recorded as a
command again (so the state's breaches, and the watcher's view of them, are the real ones)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from hall.config import Discipline, HallConfig
from hall.domain import errors
from hall.domain.commands import (
    AnyCommand,
    CallNext,
    ChangeProfile,
    ExcuseBreach,
    Finish,
    ForceClose,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    OpenDay,
    OpenWindow,
    Pause,
    Recall,
    RecordBreach,
    Resume,
    Start,
    Transfer,
)
from hall.domain.decide import execute
from hall.domain.events import (
    AnyEvent,
    BreachExcused,
    BreachRecorded,
    DayStarted,
    ServiceFinished,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
    TicketNoShow,
    WindowPaused,
    WindowResumed,
)
from hall.domain.state import HallState, fold
from hall.oversight.watcher import Watcher
from scheduling.lookahead import callable_count
from scheduling.policy import profile_order
from tests.unit.conftest import NEXT_LOCAL_MIDNIGHT, T0, small_hall

S = timedelta(seconds=1)
M = timedelta(minutes=1)

# Every rule off: each test turns on the one it is about.
OFF: dict[str, Any] = {
    "pause_minutes": 0,
    "pause_total_minutes": 0,
    "idle_seconds": 0,
    "service_factor": 0.0,
    "skips": 0,
    "shift_grace_minutes": 0,
    "call_start_seconds": 0,
}

WEEKDAY_PERIODS = """
[[hours.periods]]
days = ["mon", "tue", "wed", "thu", "fri"]
open = "09:00"
close = "12:00"

[[hours.periods]]
days = ["mon", "tue", "wed", "thu", "fri"]
open = "14:00"
close = "17:00"
"""


def hall_config(periods: str = "", **rules: Any) -> HallConfig:
    config = small_hall(periods=periods)
    return msgspec.structs.replace(config, discipline=Discipline(**{**OFF, **rules}))


@dataclass
class Watched:
    """A hall run through ``execute`` with a watcher beside it, as the server runs one."""

    config: HallConfig
    state: HallState = field(init=False)
    watcher: Watcher = field(init=False)
    log: list[tuple[int, AnyEvent]] = field(default_factory=list)
    found: list[RecordBreach] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = HallState.initial(self.config)
        self.watcher = Watcher(self.config)

    def do(self, command: AnyCommand, now: datetime) -> list[AnyEvent]:
        events = execute(self.state, command, now, profile_order)
        first = self.state.version - len(events) + 1
        found: list[RecordBreach] = []
        for version, event in enumerate(events, first):
            self.log.append((version, event))
            found += self.watcher.observe(self.state, version, event)
        self._record(found, now)
        return events

    def tick(self, now: datetime) -> list[RecordBreach]:
        found = self.watcher.tick(self.state, now)
        self._record(found, now)
        return found

    def _record(self, found: list[RecordBreach], now: datetime) -> None:
        for command in found:
            self.found.append(command)
            made = self.do(command, now)
            assert [type(e) for e in made] == [BreachRecorded], "a breach found twice"

    def issue(self, now: datetime, category: str = "general") -> str:
        issued = self.do(IssueTicket(category=category), now)[-1]
        assert isinstance(issued, TicketIssued)
        return issued.ticket

    def version_of(self, kind: type[Any], window: str | None = None, nth: int = 0) -> int:
        versions = [
            v
            for v, e in self.log
            if isinstance(e, kind) and (window is None or getattr(e, "window", None) == window)
        ]
        return versions[nth]

    def rules(self) -> list[str]:
        return [b.rule for b in self.found]


def only(found: list[RecordBreach]) -> RecordBreach:
    assert len(found) == 1, found
    return found[0]


# -- pauses ---------------------------------------------------------------------------------------


def test_a_pause_longer_than_its_reasons_limit_at_a_tick_not_at_the_limit() -> None:
    hall = Watched(hall_config(pause_minutes=20, pause_limits={"break": 10}))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Pause(window="1", by="alice", reason="break"), T0)
    assert hall.tick(T0 + 10 * M) == []  # exactly the limit: allowed
    breach = only(hall.tick(T0 + 10 * M + S))
    paused = hall.version_of(WindowPaused)
    assert breach.breach == f"pause_too_long:1:{paused}"
    assert (breach.rule, breach.window, breach.staff) == ("pause_too_long", "1", "alice")
    assert breach.since == T0 and breach.limit == 10
    assert breach.measured == pytest.approx(10 + 1 / 60, abs=0.001)
    assert breach.evidence == (paused,)
    assert hall.tick(T0 + 15 * M) == []  # once
    hall.do(Resume(window="1", by="alice"), T0 + 16 * M)
    assert len(hall.found) == 1
    assert hall.state.breaches[breach.breach].rule == "pause_too_long"


def test_a_pause_found_at_its_end_when_no_tick_came_and_other_reasons_take_the_default() -> None:
    hall = Watched(hall_config(pause_minutes=20, pause_limits={"break": 10}))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Login(window="2", by="bob"), T0)
    hall.do(Pause(window="1", by="alice", reason="meeting"), T0)  # 20 minutes
    hall.do(Pause(window="2", by="bob", reason="meeting"), T0)
    hall.do(Resume(window="2", by="bob"), T0 + 20 * M)  # at the limit: fine
    assert hall.found == []
    hall.do(Resume(window="1", by="alice"), T0 + 25 * M)
    breach = only(hall.found)
    paused, resumed = hall.version_of(WindowPaused, "1"), hall.version_of(WindowResumed, "1")
    assert breach.evidence == (paused, resumed)
    assert breach.measured == 25 and breach.limit == 20


def test_a_limit_of_zero_turns_a_reasons_pause_rule_off() -> None:
    hall = Watched(hall_config(pause_minutes=20, pause_limits={"system": 0}))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Pause(window="1", by="alice", reason="system"), T0)
    assert hall.tick(T0 + 300 * M) == []


def test_the_days_total_pause_once_per_window_and_day_and_again_the_next_day() -> None:
    hall = Watched(hall_config(pause_total_minutes=30))
    hall.do(Login(window="1", by="alice"), T0)
    at = T0
    for _ in range(2):  # 15 + 15: exactly the limit
        hall.do(Pause(window="1", by="alice", reason="break"), at)
        hall.do(Resume(window="1", by="alice"), at + 15 * M)
        at += 20 * M
    assert hall.tick(at) == [] and hall.found == []
    hall.do(Pause(window="1", by="alice", reason="break"), at)
    breach = only(hall.tick(at + S))
    assert breach.breach == f"pause_total:1:{T0.date().isoformat()}"
    assert breach.since == T0 and breach.limit == 30
    assert breach.measured == pytest.approx(30 + 1 / 60, abs=0.001)
    assert breach.evidence == tuple(hall.version_of(WindowPaused, "1", n) for n in range(3))
    hall.do(Resume(window="1", by="alice"), at + 10 * M)
    hall.do(Pause(window="1", by="alice", reason="break"), at + 20 * M)
    assert hall.tick(at + 30 * M) == []  # once a day
    hall.do(Resume(window="1", by="alice"), at + 30 * M)
    # The next day counts from nothing again.
    tomorrow = NEXT_LOCAL_MIDNIGHT + 9 * 60 * M
    hall.do(OpenDay(), tomorrow)
    hall.do(Pause(window="1", by="alice", reason="break"), tomorrow)
    assert hall.tick(tomorrow + 30 * M) == []
    second = only(hall.tick(tomorrow + 30 * M + S))
    assert second.breach == "pause_total:1:2024-03-05"
    assert len(hall.found) == 2


# -- idle with a queue ----------------------------------------------------------------------------


def test_idle_with_people_waiting_from_the_onset_once_per_onset() -> None:
    hall = Watched(hall_config(idle_seconds=60))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Login(window="3", by="carol"), T0)  # estate only: general tickets are not for it
    assert hall.tick(T0 + 5 * M) == []  # idle, but nobody waits
    onset = T0 + 5 * M
    hall.issue(onset)
    hall.issue(onset + 30 * S)  # still the same onset
    assert hall.tick(onset + 60 * S) == []
    breach = only(hall.tick(onset + 61 * S))
    issued = hall.version_of(TicketIssued)
    assert breach.breach == f"idle_with_queue:1:{issued}"
    assert breach.since == onset and breach.staff == "alice"
    assert (breach.measured, breach.limit, breach.evidence) == (61, 60, (issued,))
    assert hall.tick(onset + 10 * M) == []
    # Calling ends it; finishing with one still waiting is a new onset.
    hall.do(CallNext(window="1", by="alice"), onset + 11 * M)
    hall.do(Start(window="1", by="alice"), onset + 11 * M)
    again = onset + 12 * M
    hall.do(Finish(window="1", by="alice"), again)
    assert hall.tick(again + 60 * S) == []
    second = only(hall.tick(again + 61 * S))
    assert second.since == again and second.breach != breach.breach
    assert hall.rules() == ["idle_with_queue", "idle_with_queue"]


def test_idle_found_when_it_ends_and_a_pause_is_not_idle() -> None:
    hall = Watched(hall_config(idle_seconds=60))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Login(window="2", by="bob"), T0)
    hall.do(Pause(window="2", by="bob", reason="break"), T0)
    hall.issue(T0)
    hall.issue(T0, "tax")
    hall.do(CallNext(window="1", by="alice"), T0 + 90 * S)  # no tick came: found at the call
    breach = only(hall.found)
    assert breach.window == "1" and breach.measured == 90
    assert breach.evidence == (hall.version_of(TicketIssued), hall.version_of(TicketCalled))
    # Paused meanwhile: window 2 was not idle, however long the tax ticket waited.
    assert hall.tick(T0 + 10 * M) == []
    hall.do(Resume(window="2", by="bob"), T0 + 10 * M)
    assert hall.tick(T0 + 11 * M) == []
    assert only(hall.tick(T0 + 11 * M + S)).window == "2"


def test_a_profile_change_starts_idleness_and_the_watchers_queues_match_the_states() -> None:
    hall = Watched(hall_config(idle_seconds=30))
    hall.do(Login(window="3", by="carol"), T0)
    hall.issue(T0)
    assert hall.tick(T0 + 5 * M) == []  # general tickets are not window 3's
    hall.do(ChangeProfile(window="3", categories=("estate", "general"), by="boss"), T0 + 5 * M)
    assert hall.tick(T0 + 5 * M + 30 * S) == []
    assert only(hall.tick(T0 + 5 * M + 31 * S)).since == T0 + 5 * M
    # The watcher keeps its own count of who waits where: it must be the state's.
    hall.do(Login(window="1", by="alice"), T0 + 6 * M)
    second = hall.issue(T0 + 6 * M, "tax")
    hall.do(CallNext(window="1", by="alice"), T0 + 7 * M)
    hall.do(Transfer(window="1", by="alice", category="tax"), T0 + 7 * M)
    hall.do(ForceClose(window="3", by="boss"), T0 + 8 * M)
    for window in ("1", "2", "3"):
        assert hall.watcher._callable(window) == callable_count(hall.state, window), window
    assert second in hall.state.tickets


# -- services and calls ---------------------------------------------------------------------------


def test_a_service_longer_than_its_categorys_limit_or_factor() -> None:
    config = hall_config(service_factor=2.0)
    general = msgspec.structs.replace(config.categories[0], max_service_minutes=10.0)
    config = msgspec.structs.replace(config, categories=(general, *config.categories[1:]))
    hall = Watched(config)
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Login(window="2", by="bob"), T0)
    hall.issue(T0)
    hall.issue(T0, "tax")
    hall.do(CallNext(window="1", by="alice"), T0)
    hall.do(Start(window="1", by="alice"), T0)
    hall.do(CallNext(window="2", by="bob"), T0)
    hall.do(Start(window="2", by="bob"), T0)
    assert hall.tick(T0 + 10 * M) == []
    breach = only(hall.tick(T0 + 10 * M + S))
    assert (breach.window, breach.limit) == ("1", 10)
    assert breach.evidence == (hall.version_of(ServiceStarted, "1"),)
    hall.do(Finish(window="1", by="alice"), T0 + 20 * M)  # once per ticket and window
    assert len(hall.found) == 1
    # Tax has no maximum: twice its mean (8 minutes), found when it finishes.
    hall.do(Finish(window="2", by="bob"), T0 + 16 * M + S)
    tax = hall.found[-1]
    assert (tax.window, tax.limit) == ("2", 16)
    assert tax.measured == pytest.approx(16 + 1 / 60, abs=0.001)
    assert tax.evidence == (
        hall.version_of(ServiceStarted, "2"),
        hall.version_of(ServiceFinished, "2"),
    )


def test_calling_without_starting_is_not_reset_by_recalls() -> None:
    hall = Watched(hall_config(call_start_seconds=60))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Login(window="2", by="bob"), T0)
    hall.issue(T0)
    hall.issue(T0)
    hall.do(CallNext(window="1", by="alice"), T0)
    hall.do(CallNext(window="2", by="bob"), T0)
    hall.do(Recall(window="1", by="alice"), T0 + 50 * S)
    hall.do(Start(window="2", by="bob"), T0 + 59 * S)
    assert hall.tick(T0 + 60 * S) == []
    breach = only(hall.tick(T0 + 61 * S))
    assert (breach.window, breach.measured, breach.limit) == ("1", 61, 60)
    hall.do(Start(window="1", by="alice"), T0 + 70 * S)
    assert len(hall.found) == 1


# -- no-shows -------------------------------------------------------------------------------------


def test_repeated_no_shows_count_each_once() -> None:
    hall = Watched(hall_config(skips=3, skip_minutes=10))
    hall.do(Login(window="1", by="alice"), T0)
    for _ in range(10):
        hall.issue(T0)

    def skip(at: datetime) -> None:
        hall.do(CallNext(window="1", by="alice"), at)
        hall.do(NoShow(window="1", by="alice"), at)

    for minute in (0, 1, 2):
        skip(T0 + minute * M)
    first = only(hall.found)
    shown = [hall.version_of(TicketNoShow, "1", n) for n in range(3)]
    assert first.evidence == tuple(shown) and first.breach == f"repeated_no_shows:1:{shown[0]}"
    assert (first.measured, first.limit, first.since) == (3, 3, T0)
    skip(T0 + 3 * M)
    skip(T0 + 4 * M)
    assert len(hall.found) == 1  # the first three are spent: two more are not three
    skip(T0 + 5 * M)
    second = hall.found[-1]
    assert second.evidence == tuple(hall.version_of(TicketNoShow, "1", n) for n in (3, 4, 5))
    # Three further apart than skip_minutes: not repeated.
    skip(T0 + 20 * M)
    skip(T0 + 25 * M)
    skip(T0 + 30 * M + S)
    assert len(hall.found) == 2


def test_no_shows_exactly_skip_minutes_apart_still_count() -> None:
    hall = Watched(hall_config(skips=2, skip_minutes=10))
    hall.do(Login(window="1", by="alice"), T0)
    for at in (T0, T0 + 10 * M):
        hall.issue(at)
        hall.do(CallNext(window="1", by="alice"), at)
        hall.do(NoShow(window="1", by="alice"), at)
    assert hall.rules() == ["repeated_no_shows"]


# -- shifts ---------------------------------------------------------------------------------------


def test_a_late_login_is_past_grace_after_a_shifts_start() -> None:
    hall = Watched(hall_config(WEEKDAY_PERIODS, shift_grace_minutes=5))
    # T0 is Monday 09:00 in the hall.
    hall.do(Login(window="1", by="alice"), T0 + 5 * M)  # within grace
    hall.do(Login(window="2", by="bob"), T0 + 5 * M + S)
    breach = only(hall.found)
    assert (breach.rule, breach.window, breach.staff) == ("late_login", "2", "bob")
    assert breach.since == T0 and breach.limit == 5
    assert breach.measured == pytest.approx(5 + 1 / 60, abs=0.001)
    # Back after a logout in the same shift: not a late login (the window was open at start).
    hall.do(Logout(window="2", by="bob"), T0 + 30 * M)
    hall.do(Login(window="2", by="bob"), T0 + 40 * M)
    # Opened by a manager for the staff member: the manager chose when.
    hall.do(OpenWindow(window="3", staff="carol", by="boss"), T0 + 60 * M)
    assert len(hall.found) == 1


def test_an_early_logout_is_decided_at_the_shifts_end() -> None:
    hall = Watched(hall_config(WEEKDAY_PERIODS, shift_grace_minutes=5))
    for window, staff in (("1", "alice"), ("2", "bob"), ("3", "carol")):
        hall.do(Login(window=window, by=staff), T0)
    noon = T0 + 3 * 60 * M
    hall.do(Logout(window="1", by="alice"), noon - 5 * M)  # within grace
    hall.do(Logout(window="2", by="bob"), noon - 5 * M - S)
    hall.do(Logout(window="3", by="carol"), noon - 60 * M)
    hall.do(Login(window="3", by="carol"), noon - 30 * M)  # came back: no breach
    assert hall.tick(noon - S) == []
    breach = only(hall.tick(noon))
    assert (breach.rule, breach.window, breach.staff) == ("early_logout", "2", "bob")
    assert breach.since == noon - 5 * M - S
    assert breach.measured == pytest.approx(5 + 1 / 60, abs=0.001)
    assert hall.tick(noon + M) == []


def test_a_managers_force_close_is_not_an_early_logout() -> None:
    hall = Watched(hall_config(WEEKDAY_PERIODS, shift_grace_minutes=5))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(ForceClose(window="1", by="boss"), T0 + 60 * M)
    assert hall.tick(T0 + 4 * 60 * M) == []


# -- excuses --------------------------------------------------------------------------------------


def test_a_manager_excuses_a_breach_once_and_it_stays_recorded() -> None:
    hall = Watched(hall_config(pause_minutes=1))
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Pause(window="1", by="alice", reason="break"), T0)
    breach = only(hall.tick(T0 + 2 * M)).breach
    before = copy.deepcopy(hall.state)
    with pytest.raises(errors.Forbidden):
        hall.do(ExcuseBreach(breach=breach, reason="system down", by="alice"), T0 + 3 * M)
    with pytest.raises(errors.UnknownBreach) as unknown:
        hall.do(ExcuseBreach(breach="pause_too_long:1:999", reason="x", by="boss"), T0 + 3 * M)
    assert unknown.value.code == "unknown_breach"
    assert hall.state == before
    made = hall.do(ExcuseBreach(breach=breach, reason="system down", by="boss"), T0 + 3 * M)
    assert isinstance(made[-1], BreachExcused) and made[-1].by == "boss"
    assert hall.state.breaches[breach].excused
    with pytest.raises(errors.AlreadyExcused):
        hall.do(ExcuseBreach(breach=breach, reason="again", by="boss"), T0 + 4 * M)
    # Excused, it is still recorded: the watcher does not find it again either.
    assert hall.tick(T0 + 10 * M) == []
    assert list(hall.state.breaches) == [breach]


# -- restart --------------------------------------------------------------------------------------


def busy_day() -> Watched:
    """A morning with one breach of most rules."""
    hall = Watched(
        hall_config(
            WEEKDAY_PERIODS,
            pause_minutes=10,
            idle_seconds=60,
            call_start_seconds=60,
            skips=2,
            shift_grace_minutes=5,
        )
    )
    hall.do(OpenDay(), T0 - 60 * M)
    hall.do(Login(window="1", by="alice"), T0)
    hall.do(Login(window="2", by="bob"), T0 + 20 * M)  # late
    for _ in range(4):
        hall.issue(T0 + 20 * M)
    hall.tick(T0 + 22 * M)  # window 1 idle since the first ticket
    hall.do(CallNext(window="1", by="alice"), T0 + 22 * M)
    hall.tick(T0 + 24 * M)  # called, not started
    hall.do(NoShow(window="1", by="alice"), T0 + 24 * M)
    hall.do(CallNext(window="1", by="alice"), T0 + 24 * M)
    hall.do(NoShow(window="1", by="alice"), T0 + 25 * M)  # two no-shows
    hall.do(Pause(window="2", by="bob", reason="break"), T0 + 30 * M)
    hall.tick(T0 + 45 * M)  # window 2's pause too long; window 1 idle again
    return hall


def test_a_rebuilt_watcher_submits_nothing_already_recorded() -> None:
    hall = busy_day()
    assert set(hall.rules()) >= {
        "late_login",
        "idle_with_queue",
        "call_not_started",
        "repeated_no_shows",
        "pause_too_long",
    }
    rebuilt = Watcher(hall.config)
    again: list[RecordBreach] = []
    for version, event in hall.log:
        again += rebuilt.observe(hall.state, version, event)
    again += rebuilt.tick(hall.state, T0 + 46 * M)
    assert again == []


def test_a_rebuilt_watcher_finds_again_the_breaches_a_crash_lost() -> None:
    """The journal lost its last appends (the breaches of the last tick): a watcher rebuilt
    from what it holds finds those again, and only those."""
    hall = busy_day()
    events = [e for _, e in hall.log]
    cut = len(events)
    while isinstance(events[cut - 1], BreachRecorded):
        cut -= 1
    lost = [e for e in events[cut:] if isinstance(e, BreachRecorded)]
    assert {e.rule for e in lost} == {"pause_too_long", "idle_with_queue"}
    state = fold(hall.config, events[:cut])
    rebuilt = Watcher(hall.config)
    again: list[RecordBreach] = []
    for version, event in enumerate(events[:cut], 1):
        again += rebuilt.observe(state, version, event)
    again += rebuilt.tick(state, T0 + 45 * M)
    assert sorted(b.breach for b in again) == sorted(e.breach for e in lost)


def test_a_rebuilt_watcher_takes_a_window_untouched_today_from_the_state() -> None:
    """A pause begun before the day's start: the events replayed at start-up (today's) do not
    show it, the state does; found once, whichever watcher finds it."""
    hall = Watched(hall_config(pause_minutes=30))
    hall.do(Login(window="1", by="alice"), T0)
    paused_at = NEXT_LOCAL_MIDNIGHT - 10 * M
    hall.do(Pause(window="1", by="alice", reason="break"), paused_at)
    hall.do(OpenDay(), NEXT_LOCAL_MIDNIGHT)
    start = hall.state.day_version
    assert isinstance(dict(hall.log)[start], DayStarted)

    def rebuilt() -> Watcher:
        watcher = Watcher(hall.config)
        watcher.resume(hall.state, "1", start)  # no event names window 1 today
        for version, event in hall.log:
            if version >= start:
                assert watcher.observe(hall.state, version, event) == []
        return watcher

    late = paused_at + 30 * M + S
    assert rebuilt().tick(hall.state, late - S) == []
    found = only(rebuilt().tick(hall.state, late))
    assert (found.rule, found.window, found.staff, found.since) == (
        "pause_too_long",
        "1",
        "alice",
        paused_at,
    )
    assert found.evidence == ()  # the pause's own event is in yesterday's part of the journal
    # The live watcher records it (under its own id): a watcher rebuilt after that does not.
    recorded = only(hall.tick(late))
    assert recorded.evidence == (hall.version_of(WindowPaused),)
    assert rebuilt().tick(hall.state, late + M) == []
