"""Typed domain errors: each has a stable ``code`` that the HTTP layer maps to one status."""

from __future__ import annotations

from typing import Any, ClassVar

ECHO_CHARS = 40


def shown(text: str) -> str:
    """Client input echoed in a message or a page: at most ``ECHO_CHARS`` characters, as repr()
    (control and bidi characters escaped: an id cannot reorder or hide the text around it)."""
    return repr(text[:ECHO_CHARS]) + ("…" if len(text) > ECHO_CHARS else "")


class HallError(Exception):
    """Root of every error a command can meet; nothing was changed when one is raised."""

    code: ClassVar[str] = "hall_error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(HallError):
    code = "not_found"


class UnknownHall(NotFound):
    code = "unknown_hall"


class UnknownTicket(NotFound):
    code = "unknown_ticket"


class UnknownWindow(NotFound):
    code = "unknown_window"


class UnknownCase(NotFound):
    code = "unknown_case"


class UnknownBreach(NotFound):
    code = "unknown_breach"


class InvalidInput(HallError):
    """The command names something the hall does not have (a category, a priority...)."""

    code = "invalid_input"


class UnknownCategory(InvalidInput):
    code = "unknown_category"


class UnknownPriority(InvalidInput):
    code = "unknown_priority"


class UnknownStaff(InvalidInput):
    code = "unknown_staff"


class UnknownReason(InvalidInput):
    code = "unknown_reason"


class Conflict(HallError):
    """The command is well formed but the hall is not in a state that allows it."""

    code = "conflict"


class KeyReused(Conflict):
    """An idempotency key already answered a different command today."""

    code = "idempotency_key_reused"


class WindowNotOpen(Conflict):
    code = "window_not_open"


class WindowBusy(Conflict):
    code = "window_busy"


class WindowNotReady(Conflict):
    """The window is open but not in the state the command needs (e.g. start, nothing called)."""

    code = "window_state"


class TicketNotWaiting(Conflict):
    code = "ticket_not_waiting"


class StaffElsewhere(Conflict):
    code = "staff_elsewhere"


class HallClosed(Conflict):
    code = "hall_closed"


class QuotaReached(Conflict):
    code = "quota_reached"


class AlreadyHolding(Conflict):
    """The person (by their ID number) already holds a live ticket of this category."""

    code = "already_holding"


class NotRatable(Conflict):
    """The ticket's transaction is not finished (or was rated already)."""

    code = "not_ratable"


class AlreadyRated(Conflict):
    code = "already_rated"


class StepRefused(Conflict):
    """The case does not wait for this step (or already had it)."""

    code = "case_step_refused"


class AlreadyExcused(Conflict):
    code = "already_excused"


class Forbidden(HallError):
    """The person is known but may not act on this window."""

    code = "forbidden"


class NotYourWindow(Forbidden):
    code = "not_your_window"


class StaffNotAllowed(Forbidden):
    code = "staff_not_allowed"


class NotServedHere(Forbidden):
    """A pad rates only transactions its own window finished."""

    code = "not_served_here"


class SecondManagerNeeded(Forbidden):
    """A case found not valid is confirmed by another manager than the one who found it so."""

    code = "second_manager_needed"


class WrongSecret(Forbidden):
    code = "wrong_secret"
