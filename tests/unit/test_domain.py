"""The pure hall domain: decide, apply, execute, fold — with fixed clocks and no I/O."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, date, datetime, timedelta

import pytest

from hall.config import HallConfig
from hall.domain import errors
from hall.domain.commands import (
    AnyCommand,
    CallNext,
    CancelTicket,
    ChangeProfile,
    Finish,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    Pause,
    Recall,
    Resume,
    Start,
    Transfer,
)
from hall.domain.decide import day_events, decide
from hall.domain.events import (
    DayStarted,
    Outcome,
    ProfileChanged,
    ServiceFinished,
    TicketCalled,
    TicketIssued,
    TicketRecalled,
    TicketTransferred,
    WindowClosed,
    WindowOpened,
    WindowPaused,
    decode,
    encode,
)
from hall.domain.state import TicketState, WindowState, fold
from scheduling.policy import profile_order
from tests.unit.conftest import NEXT_LOCAL_MIDNIGHT, T0, Driver, small_hall

MINUTE = timedelta(minutes=1)


def issue(
    hall: Driver, category: str = "general", priority: str = "normal", now: datetime = T0
) -> str:
    """Issue a ticket; return its id."""
    events = hall.do(IssueTicket(category=category, priority=priority), now)
    issued = events[-1]
    assert isinstance(issued, TicketIssued)
    return issued.ticket


def call(hall: Driver, window: str, by: str, now: datetime = T0) -> str | None:
    events = hall.do(CallNext(window=window, by=by), now)
    return events[-1].ticket if events else None  # type: ignore[union-attr]


def refused(
    hall: Driver, command: AnyCommand, error: type[errors.HallError], now: datetime = T0
) -> errors.HallError:
    """The command is refused with ``error``, and the state is left exactly as it was."""
    before = copy.deepcopy(hall.state)
    with pytest.raises(error) as caught:
        decide(hall.state, command, now, profile_order)
    assert hall.state == before
    assert caught.value.code == error.code
    return caught.value


@pytest.fixture
def staffed(hall: Driver) -> Driver:
    """The small hall with alice at window 1 and bob at window 2 (day already started)."""
    hall.do(Login(window="1", by="alice"))
    hall.do(Login(window="2", by="bob"))
    return hall


# --------------------------------------------------------------------------- issuing


class TestIssue:
    def test_numbers_count_up_per_category_zero_padded(self, hall: Driver) -> None:
        ids = [issue(hall, "general", now=T0 + i * MINUTE) for i in range(3)]
        ids.append(issue(hall, "tax", now=T0 + 3 * MINUTE))
        numbers = [hall.state.tickets[t].number for t in ids]
        assert numbers == ["A001", "A002", "A003", "B001"]
        assert ids == ["20240304-A001", "20240304-A002", "20240304-A003", "20240304-B001"]
        assert hall.state.sequences == {"general": 3, "tax": 1}

    def test_issued_event(self, hall: Driver) -> None:
        events = hall.do(IssueTicket(category="tax", priority="green"), T0)
        assert isinstance(events[0], DayStarted) and events[0].day == date(2024, 3, 4)
        assert events[1] == TicketIssued(
            at=T0,
            ticket="20240304-B001",
            number="B001",
            category="tax",
            seq=1,
            day=date(2024, 3, 4),
            priority="green",
        )
        ticket = hall.state.tickets["20240304-B001"]
        assert ticket.state is TicketState.WAITING
        assert ticket.issued_at == T0
        assert [step.what for step in ticket.history] == ["issued"]

    def test_number_width_follows_the_config(self) -> None:
        hall = Driver(small_hall(number_digits=4))
        ticket_id = issue(hall)  # before reading state.tickets: a new day replaces that dict
        assert hall.state.tickets[ticket_id].number == "A0001"

    def test_queues_keep_arrival_order(self, hall: Driver) -> None:
        ids = [issue(hall, now=T0 + i * MINUTE) for i in range(3)]
        other = issue(hall, "tax", now=T0 + 4 * MINUTE)
        assert hall.state.queues["general"] == ids
        assert hall.state.queues["tax"] == [other]
        hall.do(Login(window="1", by="alice"))
        assert call(hall, "1", "alice") == ids[0]
        assert hall.state.queues["general"] == ids[1:]

    def test_the_day_is_the_local_day(self, hall: Driver) -> None:
        # 23:30 UTC on the 4th is 07:30 on the 5th in Shanghai.
        ticket = issue(hall, now=datetime(2024, 3, 4, 23, 30, tzinfo=UTC))
        assert ticket == "20240305-A001"
        assert hall.state.day == date(2024, 3, 5)

    def test_unknown_category(self, hall: Driver) -> None:
        error = refused(hall, IssueTicket(category="passport"), errors.UnknownCategory)
        assert error.code == "unknown_category"
        assert error.detail == {"category": "passport"}

    def test_unknown_priority(self, hall: Driver) -> None:
        error = refused(
            hall, IssueTicket(category="general", priority="vip"), errors.UnknownPriority
        )
        assert error.code == "unknown_priority"


class TestQuota:
    def test_daily_quota(self) -> None:
        hall = Driver(small_hall(daily_quota=2))
        issue(hall)
        issue(hall)
        error = refused(hall, IssueTicket(category="general"), errors.QuotaReached)
        assert error.code == "quota_reached"
        assert error.detail == {"category": "general"}
        assert hall.state.tickets[issue(hall, "tax")].number == "B001"  # others unaffected
        # A new local day restarts the count.
        assert issue(hall, now=NEXT_LOCAL_MIDNIGHT) == "20240305-A001"

    def test_the_number_width_limits_a_day(self) -> None:
        hall = Driver(small_hall(number_digits=2))
        for _ in range(99):
            last = issue(hall)
        assert hall.state.tickets[last].number == "A99"
        refused(hall, IssueTicket(category="general"), errors.QuotaReached)


WEEKDAY_MORNINGS = """
[[hours.periods]]
days = ["mon", "tue", "wed", "thu", "fri"]
open = "08:30"
close = "12:00"
"""


class TestOpeningHours:
    @pytest.fixture
    def strict(self) -> Driver:
        return Driver(small_hall(issue_outside_hours=False, periods=WEEKDAY_MORNINGS))

    @pytest.mark.parametrize(
        "local",
        [datetime(2024, 3, 4, 8, 30), datetime(2024, 3, 4, 11, 59), datetime(2024, 3, 8, 9, 0)],
        ids=["opening", "last-minute", "friday"],
    )
    def test_open(self, strict: Driver, local: datetime) -> None:
        issue(strict, now=(local - timedelta(hours=8)).replace(tzinfo=UTC))

    @pytest.mark.parametrize(
        "local",
        [
            datetime(2024, 3, 4, 8, 29),
            datetime(2024, 3, 4, 12, 0),
            datetime(2024, 3, 4, 15, 0),
            datetime(2024, 3, 9, 9, 0),
        ],
        ids=["before", "at-close", "afternoon", "saturday"],
    )
    def test_closed(self, strict: Driver, local: datetime) -> None:
        now = (local - timedelta(hours=8)).replace(tzinfo=UTC)
        error = refused(strict, IssueTicket(category="general"), errors.HallClosed, now)
        assert error.code == "hall_closed"

    def test_a_demo_hall_issues_at_any_hour(self) -> None:
        hall = Driver(small_hall(issue_outside_hours=True, periods=WEEKDAY_MORNINGS))
        issue(hall, now=datetime(2024, 3, 9, 20, 0, tzinfo=UTC))  # Sunday 04:00 in Shanghai


# --------------------------------------------------------------------------- calling


class TestCalling:
    def test_profile_order(self, staffed: Driver) -> None:
        tax = issue(staffed, "tax", now=T0)
        general = issue(staffed, "general", now=T0 + MINUTE)
        # Window 1 prefers general, window 2 prefers tax, whatever came first.
        assert call(staffed, "1", "alice") == general
        assert call(staffed, "2", "bob") == tax

    def test_profile_falls_through_to_the_next_category(self, staffed: Driver) -> None:
        tax = issue(staffed, "tax")
        assert call(staffed, "1", "alice") == tax

    def test_fifo_within_a_category(self, staffed: Driver) -> None:
        first, second = issue(staffed, now=T0), issue(staffed, now=T0 + MINUTE)
        assert call(staffed, "1", "alice") == first
        assert call(staffed, "2", "bob") == second

    def test_priority_first_within_a_category(self, staffed: Driver) -> None:
        normal = issue(staffed, now=T0)
        appointment = issue(staffed, priority="appointment", now=T0 + MINUTE)
        green = issue(staffed, priority="green", now=T0 + 2 * MINUTE)
        green2 = issue(staffed, priority="green", now=T0 + 3 * MINUTE)
        order = []
        for _ in range(4):
            order.append(call(staffed, "1", "alice"))
            staffed.do(NoShow(window="1", by="alice"))
        assert order == [green, green2, appointment, normal]

    def test_priority_does_not_beat_the_profile(self, staffed: Driver) -> None:
        tax_green = issue(staffed, "tax", priority="green")
        general = issue(staffed, "general", now=T0 + MINUTE)
        assert call(staffed, "1", "alice") == general
        assert call(staffed, "2", "bob") == tax_green

    def test_called_ticket(self, staffed: Driver) -> None:
        ticket_id = issue(staffed)
        now = T0 + 5 * MINUTE
        events = staffed.do(CallNext(window="1", by="alice"), now)
        assert events == [TicketCalled(at=now, ticket=ticket_id, window="1")]
        ticket = staffed.state.tickets[ticket_id]
        assert (ticket.state, ticket.window, ticket.called_at) == (TicketState.CALLED, "1", now)
        window = staffed.state.windows["1"]
        assert (window.state, window.ticket, window.since) == (WindowState.CALLING, ticket_id, now)
        assert staffed.state.queues["general"] == []

    def test_nothing_to_call(self, staffed: Driver) -> None:
        issue(staffed, "estate")  # window 1 does not serve estate
        assert staffed.do(CallNext(window="1", by="alice")) == []
        assert staffed.state.windows["1"].state is WindowState.OPEN

    def test_call_while_calling(self, staffed: Driver) -> None:
        issue(staffed)
        issue(staffed)
        call(staffed, "1", "alice")
        error = refused(staffed, CallNext(window="1", by="alice"), errors.WindowNotReady)
        assert error.code == "window_state"
        assert error.detail == {"window": "1", "state": "calling"}

    def test_recall_counts(self, staffed: Driver) -> None:
        ticket_id = issue(staffed)
        call(staffed, "1", "alice")
        first = staffed.do(Recall(window="1", by="alice"), T0 + MINUTE)
        second = staffed.do(Recall(window="1", by="alice"), T0 + 2 * MINUTE)
        assert first == [TicketRecalled(at=T0 + MINUTE, ticket=ticket_id, window="1", count=1)]
        assert isinstance(second[0], TicketRecalled) and second[0].count == 2
        ticket = staffed.state.tickets[ticket_id]
        assert ticket.recalls == 2
        assert [s.what for s in ticket.history] == ["issued", "called", "recalled", "recalled"]

    def test_recall_needs_a_called_ticket(self, staffed: Driver) -> None:
        refused(staffed, Recall(window="1", by="alice"), errors.WindowNotReady)


# --------------------------------------------------------------------------- serving


class TestService:
    @pytest.mark.parametrize("outcome", list(Outcome))
    def test_start_and_finish(self, staffed: Driver, outcome: Outcome) -> None:
        ticket_id = issue(staffed)
        call(staffed, "1", "alice", T0 + MINUTE)
        staffed.do(Start(window="1", by="alice"), T0 + 2 * MINUTE)
        ticket = staffed.state.tickets[ticket_id]
        assert ticket.state is TicketState.SERVING and ticket.started_at == T0 + 2 * MINUTE
        assert staffed.state.windows["1"].state is WindowState.SERVING
        events = staffed.do(Finish(window="1", by="alice", outcome=outcome), T0 + 9 * MINUTE)
        assert events == [
            ServiceFinished(at=T0 + 9 * MINUTE, ticket=ticket_id, window="1", outcome=outcome)
        ]
        assert ticket.state is TicketState.FINISHED  # type: ignore[comparison-overlap]
        assert ticket.outcome is outcome
        assert ticket.finished_at == T0 + 9 * MINUTE
        assert ticket.window is None
        window = staffed.state.windows["1"]
        assert (window.state, window.ticket) == (WindowState.OPEN, None)
        assert [s.what for s in ticket.history] == ["issued", "called", "started", "finished"]
        assert ticket.history[-1].detail == outcome.value

    def test_start_needs_a_called_ticket(self, staffed: Driver) -> None:
        refused(staffed, Start(window="1", by="alice"), errors.WindowNotReady)

    def test_finish_needs_service_started(self, staffed: Driver) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        refused(staffed, Finish(window="1", by="alice"), errors.WindowNotReady)

    def test_no_show(self, staffed: Driver) -> None:
        ticket_id = issue(staffed)
        call(staffed, "1", "alice")
        staffed.do(NoShow(window="1", by="alice"), T0 + 3 * MINUTE)
        ticket = staffed.state.tickets[ticket_id]
        assert ticket.state is TicketState.NO_SHOW and ticket.window is None
        assert staffed.state.windows["1"].state is WindowState.OPEN
        assert ticket.history[-1].what == "no_show"

    def test_no_show_only_while_calling(self, staffed: Driver) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        staffed.do(Start(window="1", by="alice"))
        refused(staffed, NoShow(window="1", by="alice"), errors.WindowNotReady)


# --------------------------------------------------------------------------- transfers


class TestTransfer:
    def test_to_a_category_keeps_identity_and_place(self, staffed: Driver) -> None:
        early_tax = issue(staffed, "tax", now=T0)
        general = issue(staffed, "general", now=T0 + MINUTE)
        late_tax = issue(staffed, "tax", now=T0 + 2 * MINUTE)
        assert call(staffed, "1", "alice", T0 + 3 * MINUTE) == general
        staffed.do(Start(window="1", by="alice"), T0 + 4 * MINUTE)
        events = staffed.do(Transfer(window="1", by="alice", category="tax"), T0 + 5 * MINUTE)
        assert events == [
            TicketTransferred(at=T0 + 5 * MINUTE, ticket=general, window="1", category="tax")
        ]
        ticket = staffed.state.tickets[general]
        assert (ticket.id, ticket.number, ticket.issued_at) == (general, "A001", T0 + MINUTE)
        assert ticket.category == "tax" and ticket.state is TicketState.WAITING
        assert ticket.window is None and ticket.called_at is None and ticket.started_at is None
        assert ticket.transfers == 1
        # Back at its original place: after the tax ticket issued before it, before the later one.
        assert staffed.state.queues["tax"] == [early_tax, general, late_tax]
        assert staffed.state.queues["general"] == []
        assert staffed.state.windows["1"].state is WindowState.OPEN
        step = ticket.history[-1]
        assert (step.what, step.window, step.detail) == ("transferred", "1", "tax")
        # Window 2 (tax first) now calls it in arrival order.
        assert call(staffed, "2", "bob") == early_tax
        staffed.do(NoShow(window="2", by="bob"))
        assert call(staffed, "2", "bob") == general

    def test_to_a_named_window_only_that_window_calls_it(self, staffed: Driver) -> None:
        ticket_id = issue(staffed, "general", now=T0)
        other = issue(staffed, "general", now=T0 + MINUTE)
        tax = issue(staffed, "tax", now=T0 + 2 * MINUTE)
        call(staffed, "1", "alice")
        staffed.do(Login(window="3", by="carol"))
        staffed.do(Transfer(window="1", by="alice", to_window="3"), T0 + 3 * MINUTE)
        ticket = staffed.state.tickets[ticket_id]
        assert ticket.target_window == "3" and ticket.category == "general"
        assert staffed.state.queues["@3"] == [ticket_id]
        assert ticket_id not in staffed.state.queues["general"]
        assert ticket.history[-1].detail == "general -> window 3"
        # Windows 1 and 2 serve general but may not call it.
        assert call(staffed, "1", "alice") == other
        assert call(staffed, "2", "bob") == tax
        # Window 3 serves only estate, yet calls the ticket sent to it, before its own queue.
        issue(staffed, "estate", now=T0)
        assert call(staffed, "3", "carol") == ticket_id
        assert ticket.target_window is None
        assert "@3" not in staffed.state.queues

    def test_not_to_a_closed_window(self, staffed: Driver) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        error = refused(
            staffed, Transfer(window="1", by="alice", to_window="3"), errors.WindowNotOpen
        )
        assert error.detail == {"window": "3"}

    def test_closing_a_window_returns_its_transfers_to_their_queue(self, staffed: Driver) -> None:
        staffed.do(Login(window="3", by="carol"))
        first = issue(staffed, "general", now=T0)
        later = issue(staffed, "general", now=T0 + MINUTE)
        call(staffed, "1", "alice")
        staffed.do(Transfer(window="1", by="alice", to_window="3"), T0 + 2 * MINUTE)
        staffed.do(Logout(window="3", by="carol"), T0 + 3 * MINUTE)
        ticket = staffed.state.tickets[first]
        assert ticket.target_window is None
        assert "@3" not in staffed.state.queues
        # Back in its category at its original place, before the later ticket.
        assert staffed.state.queues["general"] == [first, later]
        assert (ticket.history[-1].what, ticket.history[-1].window) == ("requeued", "3")
        assert call(staffed, "2", "bob") == first

    def test_to_a_named_window_and_category(self, staffed: Driver) -> None:
        ticket_id = issue(staffed)
        call(staffed, "1", "alice")
        staffed.do(Transfer(window="1", by="alice", category="estate", to_window="2"))
        ticket = staffed.state.tickets[ticket_id]
        assert (ticket.category, ticket.target_window) == ("estate", "2")
        assert call(staffed, "2", "bob") == ticket_id  # window 2 does not serve estate itself

    @pytest.mark.parametrize(
        ("transfer", "error"),
        [
            (Transfer(window="1", by="alice"), errors.InvalidInput),
            (Transfer(window="1", by="alice", to_window="1"), errors.InvalidInput),
            (Transfer(window="1", by="alice", category="visa"), errors.UnknownCategory),
            (Transfer(window="1", by="alice", to_window="9"), errors.UnknownWindow),
        ],
        ids=["nowhere", "own-window", "unknown-category", "unknown-window"],
    )
    def test_refused(
        self, staffed: Driver, transfer: Transfer, error: type[errors.HallError]
    ) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        refused(staffed, transfer, error)

    def test_needs_a_ticket(self, staffed: Driver) -> None:
        refused(staffed, Transfer(window="1", by="alice", category="tax"), errors.WindowNotReady)


# --------------------------------------------------------------------------- cancel


class TestCancel:
    def test_waiting(self, staffed: Driver) -> None:
        first, second = issue(staffed), issue(staffed, now=T0 + MINUTE)
        cancel = CancelTicket(ticket=first, reason="visitor", note="left the hall")
        staffed.do(cancel, T0 + 2 * MINUTE)
        ticket = staffed.state.tickets[first]
        assert ticket.state is TicketState.CANCELLED
        assert ticket.history[-1].detail == "visitor"
        assert staffed.state.queues["general"] == [second]

    def test_called_frees_the_window(self, staffed: Driver) -> None:
        ticket_id = issue(staffed)
        call(staffed, "1", "alice")
        staffed.do(CancelTicket(ticket=ticket_id, by="alice"))
        assert staffed.state.tickets[ticket_id].window is None
        assert staffed.state.windows["1"].state is WindowState.OPEN
        assert staffed.state.windows["1"].ticket is None

    def test_finished_cannot_be_cancelled(self, staffed: Driver) -> None:
        ticket_id = issue(staffed)
        call(staffed, "1", "alice")
        staffed.do(NoShow(window="1", by="alice"))
        error = refused(staffed, CancelTicket(ticket=ticket_id), errors.TicketNotWaiting)
        assert error.code == "ticket_not_waiting"

    def test_unknown_ticket(self, hall: Driver) -> None:
        error = refused(hall, CancelTicket(ticket="20240304-Z999"), errors.UnknownTicket)
        assert error.code == "unknown_ticket"


# --------------------------------------------------------------------------- windows and staff


class TestWindow:
    def test_login(self, hall: Driver) -> None:
        events = hall.do(Login(window="1", by="alice"), T0)
        assert events[-1] == WindowOpened(at=T0, window="1", staff="alice")
        window = hall.state.windows["1"]
        assert (window.state, window.staff) == (WindowState.OPEN, "alice")
        assert hall.state.staff_at == {"alice": "1"}

    def test_login_again_is_a_no_op(self, staffed: Driver) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        assert staffed.do(Login(window="1", by="alice")) == []
        assert staffed.state.windows["1"].state is WindowState.CALLING

    @pytest.mark.parametrize(
        ("login", "error", "code"),
        [
            (Login(window="3", by="mallory"), errors.UnknownStaff, "unknown_staff"),
            (Login(window="1", by="carol"), errors.StaffNotAllowed, "staff_not_allowed"),
            (Login(window="3", by="alice"), errors.StaffElsewhere, "staff_elsewhere"),
            (Login(window="1", by="boss"), errors.WindowBusy, "window_busy"),
            (Login(window="7", by="alice"), errors.UnknownWindow, "unknown_window"),
        ],
        ids=["unknown-staff", "not-allowed", "elsewhere", "window-taken", "unknown-window"],
    )
    def test_login_refused(
        self, staffed: Driver, login: Login, error: type[errors.HallError], code: str
    ) -> None:
        assert refused(staffed, login, error).code == code

    def test_not_your_window(self, staffed: Driver) -> None:
        issue(staffed)
        error = refused(staffed, CallNext(window="1", by="bob"), errors.NotYourWindow)
        assert error.code == "not_your_window"
        refused(staffed, Logout(window="1", by="bob"), errors.NotYourWindow)

    def test_closed_window(self, hall: Driver) -> None:
        error = refused(hall, CallNext(window="1", by="alice"), errors.WindowNotOpen)
        assert error.code == "window_not_open"

    def test_pause_and_resume(self, staffed: Driver) -> None:
        issue(staffed)
        events = staffed.do(Pause(window="1", by="alice", reason="break"), T0 + MINUTE)
        assert events == [WindowPaused(at=T0 + MINUTE, window="1", reason="break")]
        window = staffed.state.windows["1"]
        assert (window.state, window.pause_reason, window.since) == (
            WindowState.PAUSED,
            "break",
            T0 + MINUTE,
        )
        refused(staffed, CallNext(window="1", by="alice"), errors.WindowNotReady)
        refused(staffed, Pause(window="1", by="alice", reason="again"), errors.WindowNotReady)
        staffed.do(Resume(window="1", by="alice"), T0 + 31 * MINUTE)
        assert (window.state, window.pause_reason) == (WindowState.OPEN, None)
        assert call(staffed, "1", "alice") is not None

    def test_pause_needs_an_idle_window(self, staffed: Driver) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        refused(staffed, Pause(window="1", by="alice", reason="break"), errors.WindowNotReady)

    def test_resume_needs_a_paused_window(self, staffed: Driver) -> None:
        refused(staffed, Resume(window="1", by="alice"), errors.WindowNotReady)

    def test_logout(self, staffed: Driver) -> None:
        events = staffed.do(Logout(window="1", by="alice"), T0 + MINUTE)
        assert events == [WindowClosed(at=T0 + MINUTE, window="1", staff="alice")]
        window = staffed.state.windows["1"]
        assert (window.state, window.staff) == (WindowState.CLOSED, None)
        assert staffed.state.staff_at == {"bob": "2"}
        refused(staffed, CallNext(window="1", by="alice"), errors.WindowNotOpen)
        staffed.do(Login(window="3", by="alice"))  # free to work elsewhere now

    def test_logout_while_paused(self, staffed: Driver) -> None:
        staffed.do(Pause(window="1", by="alice", reason="meeting"))
        staffed.do(Logout(window="1", by="alice"))
        assert staffed.state.windows["1"].state is WindowState.CLOSED

    @pytest.mark.parametrize("serving", [False, True], ids=["called", "serving"])
    def test_logout_refused_while_holding_a_ticket(self, staffed: Driver, serving: bool) -> None:
        issue(staffed)
        call(staffed, "1", "alice")
        if serving:
            staffed.do(Start(window="1", by="alice"))
        error = refused(staffed, Logout(window="1", by="alice"), errors.WindowBusy)
        assert error.code == "window_busy"


class TestChangeProfile:
    def test_takes_effect_at_once(self, staffed: Driver) -> None:
        estate = issue(staffed, "estate")
        events = staffed.do(
            ChangeProfile(window="1", categories=("estate", "general"), by="boss"), T0 + MINUTE
        )
        assert events == [
            ProfileChanged(at=T0 + MINUTE, window="1", categories=("estate", "general"), by="boss")
        ]
        assert staffed.state.windows["1"].categories == ("estate", "general")
        assert call(staffed, "1", "alice") == estate

    @pytest.mark.parametrize(
        ("categories", "error"),
        [
            ((), errors.InvalidInput),
            (("tax", "tax"), errors.InvalidInput),
            (("tax", "visa"), errors.UnknownCategory),
        ],
        ids=["empty", "twice", "unknown-category"],
    )
    def test_refused(
        self, hall: Driver, categories: tuple[str, ...], error: type[errors.HallError]
    ) -> None:
        refused(hall, ChangeProfile(window="1", categories=categories, by="boss"), error)

    def test_unknown_window(self, hall: Driver) -> None:
        refused(
            hall, ChangeProfile(window="0", categories=("tax",), by="boss"), errors.UnknownWindow
        )


# --------------------------------------------------------------------------- business days


class TestBusinessDay:
    def test_first_command_starts_the_day(self, hall: Driver) -> None:
        assert day_events(hall.state, T0) == [DayStarted(at=T0, day=date(2024, 3, 4))]
        hall.do(Login(window="1", by="alice"), T0)
        assert hall.state.day == date(2024, 3, 4)
        assert day_events(hall.state, T0 + timedelta(hours=10)) == []

    def test_the_day_turns_at_local_midnight(self, hall: Driver) -> None:
        last_second = NEXT_LOCAL_MIDNIGHT - timedelta(seconds=1)  # 23:59:59 in Shanghai
        assert issue(hall, now=T0) == "20240304-A001"
        assert issue(hall, now=last_second) == "20240304-A002"
        events = hall.do(IssueTicket(category="general"), NEXT_LOCAL_MIDNIGHT)
        assert isinstance(events[0], DayStarted)
        assert events[0].day == date(2024, 3, 5)
        assert isinstance(events[1], TicketIssued)
        assert (events[1].ticket, events[1].seq) == ("20240305-A001", 1)

    def test_rollover_expires_waiting_and_called_keeps_serving(self, staffed: Driver) -> None:
        serving = issue(staffed, now=T0)
        called = issue(staffed, now=T0 + MINUTE)
        waiting = issue(staffed, now=T0 + 2 * MINUTE)
        finished = issue(staffed, "tax", now=T0 + 3 * MINUTE)
        assert call(staffed, "2", "bob") == finished
        staffed.do(Start(window="2", by="bob"))
        staffed.do(Finish(window="2", by="bob"))
        assert call(staffed, "1", "alice") == serving
        staffed.do(Start(window="1", by="alice"))
        assert call(staffed, "2", "bob") == called

        yesterday = dict(staffed.state.tickets)
        late = NEXT_LOCAL_MIDNIGHT + timedelta(hours=1)
        events = staffed.do(IssueTicket(category="general"), late)
        assert events[0] == DayStarted(at=late, day=date(2024, 3, 5), expired=(called, waiting))
        state = staffed.state
        for expired in (called, waiting):
            assert yesterday[expired].state is TicketState.EXPIRED
            assert yesterday[expired].window is None
            assert yesterday[expired].history[-1].what == "expired"
        assert state.tickets[serving].state is TicketState.SERVING
        # Yesterday's settled tickets leave memory (the journal keeps them).
        assert set(state.tickets) == {serving, "20240305-A001"}
        assert state.windows["2"].state is WindowState.OPEN and state.windows["2"].ticket is None
        assert state.queues["general"] == ["20240305-A001"]
        # Yesterday's service continues to its end.
        staffed.do(Finish(window="1", by="alice", outcome=Outcome.ACCEPTED), late + MINUTE)
        assert state.tickets[serving].state is TicketState.FINISHED
        assert state.tickets[serving].outcome is Outcome.ACCEPTED
        assert call(staffed, "1", "alice", late + MINUTE) == "20240305-A001"

    def test_a_refused_command_does_not_turn_the_day(self, staffed: Driver) -> None:
        issue(staffed)
        before, log = copy.deepcopy(staffed.state), list(staffed.log)
        with pytest.raises(errors.NotYourWindow):
            staffed.do(CallNext(window="1", by="bob"), NEXT_LOCAL_MIDNIGHT)
        # execute() gave no events, so it must have changed nothing: state and log still agree.
        assert staffed.state == before and staffed.log == log
        events = staffed.do(CallNext(window="1", by="alice"), NEXT_LOCAL_MIDNIGHT + MINUTE)
        assert [type(e) for e in events] == [DayStarted]  # yesterday's A001 expired first
        assert fold(staffed.config, staffed.log) == staffed.state

    def test_clock_stepping_back_over_midnight_keeps_the_day(self, staffed: Driver) -> None:
        first, second = issue(staffed), issue(staffed)
        assert call(staffed, "1", "alice") == first
        assert call(staffed, "2", "bob") == second
        staffed.do(Start(window="2", by="bob"))  # serves over midnight
        assert issue(staffed, now=NEXT_LOCAL_MIDNIGHT + timedelta(seconds=5)) == "20240305-A001"
        # NTP sets the clock back 10 s, to 23:59:55 of the 4th: the hall's day stays the 5th,
        # and the number must not repeat yesterday's A002 (still being served at window 2).
        late = issue(staffed, now=NEXT_LOCAL_MIDNIGHT - timedelta(seconds=5))
        assert late == "20240305-A002"
        assert staffed.state.tickets[second].state is TicketState.SERVING
        assert staffed.state.windows["2"].ticket == second

    def test_staff_stay_logged_in_across_midnight(self, staffed: Driver) -> None:
        staffed.do(Pause(window="1", by="alice", reason="break"), T0)
        staffed.do(Resume(window="1", by="alice"), NEXT_LOCAL_MIDNIGHT)
        assert staffed.state.windows["1"].state is WindowState.OPEN
        assert staffed.state.staff_at == {"alice": "1", "bob": "2"}


# --------------------------------------------------------------------------- purity and replay


def _busy(hall: Driver) -> Driver:
    """Every window in a different state, tickets in every state."""
    hall.do(Login(window="1", by="alice"))
    hall.do(Login(window="2", by="bob"))
    hall.do(Login(window="3", by="carol"))
    for i, category in enumerate(["general", "tax", "general", "estate", "tax", "general"]):
        issue(hall, category, "green" if i == 4 else "normal", T0 + i * MINUTE)
    call(hall, "1", "alice")
    hall.do(Start(window="1", by="alice"))
    call(hall, "2", "bob")
    hall.do(Pause(window="3", by="carol", reason="other"))
    return hall


PURITY_COMMANDS: list[AnyCommand] = [
    IssueTicket(category="general"),
    IssueTicket(category="nope"),
    CancelTicket(ticket="20240304-A003"),
    CancelTicket(ticket="20240304-A001"),
    CancelTicket(ticket="missing"),
    Login(window="3", by="alice"),
    Login(window="1", by="alice"),
    CallNext(window="1", by="alice"),
    CallNext(window="2", by="alice"),
    Recall(window="2", by="bob"),
    Start(window="2", by="bob"),
    Finish(window="1", by="alice", outcome=Outcome.RETURNED),
    Finish(window="2", by="bob"),
    NoShow(window="2", by="bob"),
    Transfer(window="1", by="alice", category="tax"),
    Transfer(window="2", by="bob", to_window="3"),
    Transfer(window="2", by="bob", to_window="2"),
    Pause(window="2", by="bob", reason="x"),
    Resume(window="3", by="carol"),
    Logout(window="1", by="alice"),
    Logout(window="3", by="carol"),
    ChangeProfile(window="2", categories=("estate",), by="boss"),
    ChangeProfile(window="2", categories=(), by="boss"),
]


@pytest.mark.parametrize("command", PURITY_COMMANDS, ids=lambda c: type(c).__name__)
def test_decide_never_changes_the_state(config: HallConfig, command: AnyCommand) -> None:
    hall = _busy(Driver(config))
    before = copy.deepcopy(hall.state)
    with contextlib.suppress(errors.HallError):
        decide(hall.state, command, T0 + timedelta(hours=1), profile_order)
    assert hall.state == before


def test_fold_replays_the_live_state(config: HallConfig) -> None:
    hall = _busy(Driver(config))
    hall.do(Transfer(window="1", by="alice", category="tax"), T0 + 20 * MINUTE)
    hall.do(Recall(window="2", by="bob"), T0 + 21 * MINUTE)
    hall.do(IssueTicket(category="tax"), NEXT_LOCAL_MIDNIGHT)
    assert fold(config, hall.log) == hall.state
    assert hall.state.version == len(hall.log)
    # ... and so does the journal's round trip through JSON.
    decoded = [decode(encode(event)) for event in hall.log]
    assert decoded == hall.log
    assert fold(config, decoded) == hall.state


@pytest.mark.parametrize(
    ("error", "code", "base"),
    [
        (errors.UnknownTicket, "unknown_ticket", errors.NotFound),
        (errors.UnknownWindow, "unknown_window", errors.NotFound),
        (errors.UnknownHall, "unknown_hall", errors.NotFound),
        (errors.UnknownCategory, "unknown_category", errors.InvalidInput),
        (errors.UnknownPriority, "unknown_priority", errors.InvalidInput),
        (errors.UnknownStaff, "unknown_staff", errors.InvalidInput),
        (errors.WindowNotOpen, "window_not_open", errors.Conflict),
        (errors.WindowBusy, "window_busy", errors.Conflict),
        (errors.WindowNotReady, "window_state", errors.Conflict),
        (errors.TicketNotWaiting, "ticket_not_waiting", errors.Conflict),
        (errors.StaffElsewhere, "staff_elsewhere", errors.Conflict),
        (errors.HallClosed, "hall_closed", errors.Conflict),
        (errors.QuotaReached, "quota_reached", errors.Conflict),
        (errors.NotYourWindow, "not_your_window", errors.Forbidden),
        (errors.StaffNotAllowed, "staff_not_allowed", errors.Forbidden),
    ],
)
def test_error_codes_are_stable(
    error: type[errors.HallError], code: str, base: type[errors.HallError]
) -> None:
    assert error.code == code
    assert issubclass(error, base) and issubclass(error, errors.HallError)
    instance = error("message", thing=1)
    assert (instance.message, instance.detail, str(instance)) == (
        "message",
        {"thing": 1},
        "message",
    )


def test_codes_are_unique() -> None:
    def subclasses(cls: type[errors.HallError]) -> list[type[errors.HallError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    every = subclasses(errors.HallError)
    assert len({e.code for e in every}) == len(every)
