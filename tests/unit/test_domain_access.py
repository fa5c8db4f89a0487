"""Decisions about who may do what: reason codes, cancels by kiosks and visitors, a manager's
force-close, and password changes; all pure, and replayed from their events alone."""

from __future__ import annotations

import hashlib

import pytest

from hall.domain import errors
from hall.domain.commands import (
    CancelTicket,
    ChangePassword,
    ForceClose,
    IssueTicket,
    Login,
    Pause,
)
from hall.domain.events import PasswordChanged, WindowClosed
from hall.domain.state import TicketState, WindowState, fold
from tests.unit.conftest import T0, Driver
from tests.unit.test_domain import MINUTE, call, issue, refused

SECRET = hashlib.sha256(b"printed on the ticket").hexdigest()


@pytest.fixture
def staffed(hall: Driver) -> Driver:
    """The small hall with alice at window 1 and bob at window 2."""
    hall.do(Login(window="1", by="alice"))
    hall.do(Login(window="2", by="bob"))
    return hall


def test_reasons_are_codes_of_the_hall(staffed: Driver) -> None:
    error = refused(staffed, Pause(window="1", by="alice", reason="lunch"), errors.UnknownReason)
    assert "break" in error.detail["known"]
    ticket = issue(staffed)
    refused(staffed, CancelTicket(ticket=ticket, reason="left"), errors.UnknownReason)
    staffed.do(Pause(window="1", by="alice", reason="break", note="王先生 called"))
    assert staffed.state.windows["1"].pause_reason == "break"


def test_a_kiosk_cancels_only_a_waiting_ticket(staffed: Driver) -> None:
    ticket = issue(staffed)
    call(staffed, "1", "alice")
    refused(staffed, CancelTicket(ticket=ticket, waiting_only=True), errors.TicketNotWaiting)
    staffed.do(CancelTicket(ticket=ticket, by="alice"))  # the staff member holding it may
    assert staffed.state.tickets[ticket].state is TicketState.CANCELLED


def test_a_ticket_at_a_window_is_cancelled_by_its_staff_or_a_manager(staffed: Driver) -> None:
    ticket = issue(staffed)
    call(staffed, "1", "alice")
    refused(staffed, CancelTicket(ticket=ticket, by="bob"), errors.NotYourWindow)
    staffed.do(CancelTicket(ticket=ticket, by="boss"))
    assert staffed.state.tickets[ticket].state is TicketState.CANCELLED
    assert staffed.state.windows["1"].ticket is None


def test_a_visitor_cancels_with_the_secret_only(staffed: Driver) -> None:
    events = staffed.do(IssueTicket(category="general", secret=SECRET))
    ticket = events[-1].ticket  # type: ignore[union-attr]
    wrong = SECRET[:-1] + "x"
    mine = CancelTicket(ticket=ticket, reason="visitor", waiting_only=True, secret=SECRET)
    refused(
        staffed,
        CancelTicket(ticket=ticket, secret=wrong, waiting_only=True),
        errors.WrongSecret,
    )
    # A ticket issued without a secret cannot be cancelled by anyone claiming to hold one.
    plain = issue(staffed)
    refused(staffed, CancelTicket(ticket=plain, secret=""), errors.WrongSecret)
    staffed.do(mine)
    assert staffed.state.tickets[ticket].state is TicketState.CANCELLED


@pytest.mark.parametrize("held", [False, True])
def test_force_close_requeues_the_held_ticket_in_its_place(staffed: Driver, held: bool) -> None:
    first = issue(staffed)
    second = issue(staffed, now=T0 + MINUTE)
    if held:
        assert call(staffed, "1", "alice") == first
    events = staffed.do(ForceClose(window="1", by="boss", note="gone home"), T0 + 2 * MINUTE)
    assert events == [
        WindowClosed(
            at=T0 + 2 * MINUTE,
            window="1",
            staff="alice",
            by="boss",
            note="gone home",
            ticket=first if held else None,
        )
    ]
    window = staffed.state.windows["1"]
    assert (window.state, window.staff, window.ticket) == (WindowState.CLOSED, None, None)
    assert "alice" not in staffed.state.staff_at
    assert staffed.state.queues["general"] == [first, second]
    assert staffed.state.tickets[first].state is TicketState.WAITING
    refused(staffed, ForceClose(window="1", by="boss"), errors.WindowNotOpen)
    assert fold(staffed.state.config, staffed.log) == staffed.state


def test_a_password_change_is_kept_in_the_state(staffed: Driver) -> None:
    refused(
        staffed, ChangePassword(staff="mallory", password_hash="$argon2id$x"), errors.UnknownStaff
    )
    events = staffed.do(ChangePassword(staff="alice", password_hash="$argon2id$new"))
    assert events == [PasswordChanged(at=T0, staff="alice", password_hash="$argon2id$new")]
    assert staffed.state.passwords == {"alice": "$argon2id$new"}
