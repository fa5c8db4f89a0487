"""The live state of one hall: a fold of its events.

``apply(state, event)`` is deterministic and does no I/O. It changes ``state`` in place (a hall day
has tens of thousands of events, and copying the state for each would make replay and simulation
quadratic); only the engine's writer and the simulator hold a state they apply to. Two states built
from the same events compare equal, which is what the replay tests check.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from hall.config import HallConfig
from hall.domain import rating
from hall.domain.events import (
    AlertAcknowledged,
    AnyEvent,
    BreachExcused,
    BreachRecorded,
    CaseStepped,
    DayStarted,
    DeviceReported,
    NoticePosted,
    Outcome,
    PasswordChanged,
    ProfileChanged,
    ServiceFinished,
    ServiceStarted,
    TicketCalled,
    TicketCancelled,
    TicketIssued,
    TicketNoShow,
    TicketPrinted,
    TicketRated,
    TicketRecalled,
    TicketTransferred,
    WindowClosed,
    WindowOpened,
    WindowPaused,
    WindowResumed,
)
from hall.domain.oversight import BREACH_DAYS, Breach, Case, next_stage


class TicketState(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    FINISHED = "finished"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIVE = frozenset({TicketState.WAITING, TicketState.CALLED, TicketState.SERVING})


class WindowState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"  # logged in and idle
    CALLING = "calling"
    SERVING = "serving"
    PAUSED = "paused"


@dataclass(slots=True)
class Step:
    """One line of a ticket's history."""

    at: datetime
    what: str
    window: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class Ticket:
    id: str
    number: str
    category: str
    priority: str
    day: date
    seq: int
    issued_at: datetime
    state: TicketState = TicketState.WAITING
    window: str | None = None  # the window holding it (called or serving)
    target_window: str | None = None  # set by a transfer to a named window: only it may call
    called_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    recalls: int = 0
    transfers: int = 0
    outcome: Outcome | None = None
    appointment: datetime | None = None  # the appointment slot's start, if the visitor holds one
    history: list[Step] = field(default_factory=list)
    secret: str = ""  # printed on the ticket (see TicketIssued); never on a public view
    person: str = ""  # keyed hash of the visitor's ID number (see TicketIssued); never public
    served_at: str | None = None  # the window that finished its transaction (what is rated)
    served_by: str | None = None  # the staff member there
    rating: int | None = None  # the visitor's level, 1..5, once rated
    not_rated: bool = False  # the pad offered a rating and got none

    @property
    def order_key(self) -> tuple[datetime, date, int]:
        """Arrival order: a transferred ticket keeps its place from its original issue time."""
        return (self.issued_at, self.day, self.seq)


@dataclass(slots=True)
class WindowStatus:
    id: str
    categories: tuple[str, ...]  # the work profile, in order of preference
    state: WindowState = WindowState.CLOSED
    staff: str | None = None
    ticket: str | None = None
    pause_reason: str | None = None
    since: datetime | None = None
    served: str | None = None  # the ticket whose transaction it finished last (the pad rates it)


@dataclass(slots=True)
class DeviceHealth:
    status: str  # "online", "offline" or a hardware state the device reported
    since: datetime


@dataclass(slots=True)
class Called:
    """A call (or recall) of a ticket to a window, as the hall screen lists it: ``version`` is
    the call's event's, and the number and category are the ticket's when it was called."""

    version: int
    ticket: str
    number: str
    category: str
    window: str
    at: datetime
    recall: bool = False


# The day's last calls kept in the state (what a hall screen shows on connect): twice the most
# a screen lists (config.HallScreen.calls), so a config change never shows fewer.
CALLS_KEPT = 60


@dataclass(slots=True)
class Answered:
    """The events a command made under an idempotency key today, ending at ``version``."""

    digest: str
    events: list[AnyEvent]
    version: int


@dataclass(slots=True)
class HallState:
    config: HallConfig
    version: int = 0  # events applied, i.e. the journal position this state reflects
    day: date | None = None  # the current business day
    day_version: int = 0  # the version of its DayStarted (where a replay of today begins)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    # Waiting ticket ids in arrival order (see Ticket.order_key), per category, and per window
    # under "@<window>" for tickets transferred to that window by name.
    queues: dict[str, list[str]] = field(default_factory=dict)
    # The same tickets split by priority class: queue -> priority -> ids in arrival order. The
    # calling order and the places ahead read a class's lane by bisection (a class's head start
    # is one constant), so neither walks a long queue.
    lanes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    windows: dict[str, WindowStatus] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)  # last number issued today
    staff_at: dict[str, str] = field(default_factory=dict)  # username -> window
    answered: dict[str, Answered] = field(default_factory=dict)  # today's idempotency keys
    # Argon2 hashes from password changes (username -> latest); they outlive days.
    passwords: dict[str, str] = field(default_factory=dict)
    # The hall screen's notice a manager posted (text, text_en); None: the hall file's.
    notice: tuple[str, str] | None = None
    calls: list[Called] = field(default_factory=list)  # today's last calls, oldest first
    # Today's tickets each printer has yet to print, in issue order (its agent acks each).
    printing: dict[str, list[str]] = field(default_factory=dict)
    devices: dict[str, DeviceHealth] = field(default_factory=dict)  # as last reported
    # Bad ratings' follow-up cases not yet closed, by ticket id; they outlive days.
    cases: dict[str, Case] = field(default_factory=dict)
    # Discipline breaches of the last BREACH_DAYS days, by id, in the order recorded.
    breaches: dict[str, Breach] = field(default_factory=dict)
    acknowledged: dict[str, str] = field(default_factory=dict)  # today's alerts seen: id -> by
    # Bumped whenever a window opens, closes or changes profile: what caches of the windows'
    # layout key on (scheduling.topology), so they need not compare every window at each read.
    # Meaningful for this object only (not stored, not compared).
    layout_version: int = field(default=0, compare=False)

    @classmethod
    def initial(cls, config: HallConfig) -> HallState:
        return cls(
            config=config,
            queues={c.id: [] for c in config.categories},
            lanes={c.id: {} for c in config.categories},
            windows={w.id: WindowStatus(w.id, w.categories) for w in config.windows},
        )

    def waiting(self, queue: str) -> list[Ticket]:
        return [self.tickets[t] for t in self.queues.get(queue, ())]


def queue_key(ticket: Ticket) -> str:
    return f"@{ticket.target_window}" if ticket.target_window else ticket.category


def targeted_queue(window_id: str) -> str:
    return f"@{window_id}"


def fold(config: HallConfig, events: list[AnyEvent]) -> HallState:
    state = HallState.initial(config)
    for event in events:
        apply(state, event)
    return state


def apply(state: HallState, event: AnyEvent) -> HallState:
    """Apply one event (already decided and journaled) to ``state``; return the same object."""
    state.version += 1
    if event.request is not None:
        key, digest = event.request.key, event.request.digest
        answered = state.answered.setdefault(key, Answered(digest, [], state.version))
        answered.events.append(event)
        answered.version = state.version
    match event:
        case DayStarted(day=day, expired=expired):
            for ticket_id in expired:
                ticket = state.tickets[ticket_id]
                _leave_window(state, ticket, event.at)
                _dequeue(state, ticket)
                _settle(ticket, TicketState.EXPIRED, event, "expired at day end")
            # Yesterday's finished tickets leave memory (the journal keeps them), so a server
            # that runs for months holds one day.
            state.tickets = {k: t for k, t in state.tickets.items() if t.state in ACTIVE}
            state.day, state.day_version = day, state.version
            state.sequences = {}
            state.answered = {}
            state.calls = []
            state.printing = {}  # yesterday's unprinted tickets are for nobody now
            state.acknowledged = {}
            oldest = day - timedelta(days=BREACH_DAYS)
            state.breaches = {k: b for k, b in state.breaches.items() if b.at.date() >= oldest}
        case TicketIssued():
            ticket = Ticket(
                id=event.ticket,
                number=event.number,
                category=event.category,
                priority=event.priority,
                day=event.day,
                seq=event.seq,
                issued_at=event.at,
                appointment=event.appointment,
                history=[Step(event.at, "issued", detail=event.category)],
                secret=event.secret,
                person=event.person,
            )
            state.tickets[ticket.id] = ticket
            state.sequences[event.category] = event.seq
            _enqueue(state, ticket)
            if event.printer is not None:
                state.printing.setdefault(event.printer, []).append(ticket.id)
        case TicketPrinted(ticket=ticket_id, printer=printer):
            _unprint(state, ticket_id, printer)
        case TicketRated(ticket=ticket_id, level=level):
            ticket = state.tickets[ticket_id]
            if level is None:
                ticket.not_rated = True
            else:
                ticket.rating = level
            if level in rating.LOW_LEVELS:
                state.cases[ticket_id] = Case(
                    id=ticket_id,
                    number=ticket.number,
                    day=state.day or ticket.day,
                    rated_at=event.at,
                    window=event.window,
                    staff=event.staff,
                    category=ticket.category,
                    level=level,
                    channel=event.channel,
                )
        case CaseStepped(case=case_id, step=step, valid=valid, by=by):
            followed = state.cases[case_id]
            stage = next_stage(followed, step, valid)
            if valid is not None:
                followed.valid = valid
                followed.verified_by = by if not valid else None
            if stage is None:
                del state.cases[case_id]
            else:
                followed.stage = stage
        case BreachRecorded():
            state.breaches[event.breach] = Breach(
                event.breach, event.rule, event.window, event.staff, event.since, event.at
            )
        case BreachExcused(breach=breach_id):
            state.breaches[breach_id].excused = True
        case AlertAcknowledged(alert=alert, by=by):
            state.acknowledged[alert] = by
        case DeviceReported(device=device, status=status):
            state.devices[device] = DeviceHealth(status, event.at)
        case TicketCalled(ticket=ticket_id, window=window_id):
            ticket = state.tickets[ticket_id]
            _dequeue(state, ticket)
            ticket.state, ticket.window, ticket.target_window = TicketState.CALLED, window_id, None
            ticket.called_at = event.at
            ticket.history.append(Step(event.at, "called", window_id))
            _set_window(state, window_id, WindowState.CALLING, event.at, ticket=ticket_id)
            _called(state, ticket, window_id, event.at, recall=False)
        case TicketRecalled(ticket=ticket_id, window=window_id, count=count):
            ticket = state.tickets[ticket_id]
            ticket.recalls = count
            ticket.history.append(Step(event.at, "recalled", window_id, str(count)))
            _called(state, ticket, window_id, event.at, recall=True)
        case ServiceStarted(ticket=ticket_id, window=window_id):
            ticket = state.tickets[ticket_id]
            ticket.state, ticket.started_at = TicketState.SERVING, event.at
            ticket.history.append(Step(event.at, "started", window_id))
            _set_window(state, window_id, WindowState.SERVING, event.at, ticket=ticket_id)
        case ServiceFinished(ticket=ticket_id, outcome=outcome, window=window_id):
            ticket = state.tickets[ticket_id]
            ticket.outcome = outcome
            ticket.served_at = window_id
            window = state.windows.get(window_id)
            ticket.served_by = window.staff if window is not None else None
            if window is not None:
                window.served = ticket_id
            _leave_window(state, ticket, event.at)
            _settle(ticket, TicketState.FINISHED, event, outcome.value)
            _unprint(state, ticket_id)
        case TicketNoShow(ticket=ticket_id):
            ticket = state.tickets[ticket_id]
            _leave_window(state, ticket, event.at)
            _settle(ticket, TicketState.NO_SHOW, event, None)
            _unprint(state, ticket_id)
        case TicketTransferred(ticket=ticket_id, window=window_id):
            ticket = state.tickets[ticket_id]
            _leave_window(state, ticket, event.at)
            ticket.state, ticket.category = TicketState.WAITING, event.category
            ticket.target_window = event.to_window
            ticket.called_at = ticket.started_at = None
            ticket.transfers += 1
            detail = event.category + (f" -> window {event.to_window}" if event.to_window else "")
            ticket.history.append(Step(event.at, "transferred", window_id, detail))
            _enqueue(state, ticket)
        case TicketCancelled(ticket=ticket_id, reason=reason):
            ticket = state.tickets[ticket_id]
            _leave_window(state, ticket, event.at)
            _dequeue(state, ticket)
            _settle(ticket, TicketState.CANCELLED, event, reason)
            _unprint(state, ticket_id)
        case WindowOpened(window=window_id, staff=staff):
            _set_window(state, window_id, WindowState.OPEN, event.at, staff=staff)
            if window_id in state.windows:
                state.staff_at[staff] = window_id
        case WindowPaused(window=window_id, reason=reason):
            _set_window(state, window_id, WindowState.PAUSED, event.at, pause_reason=reason)
        case WindowResumed(window=window_id):
            _set_window(state, window_id, WindowState.OPEN, event.at)
        case WindowClosed(window=window_id, staff=staff):
            if event.ticket is not None:  # a manager's force-close: it waits again, in its place
                ticket = state.tickets[event.ticket]
                ticket.state, ticket.window = TicketState.WAITING, None
                ticket.called_at = ticket.started_at = None
                ticket.history.append(Step(event.at, "requeued", window_id, ticket.category))
                _enqueue(state, ticket)
            _set_window(state, window_id, WindowState.CLOSED, event.at, staff=None)
            state.staff_at.pop(staff, None)
            # Tickets sent to this window by name would wait for nobody: back to their category.
            state.lanes.pop(targeted_queue(window_id), None)
            for ticket_id in state.queues.pop(targeted_queue(window_id), []):
                ticket = state.tickets[ticket_id]
                ticket.target_window = None
                ticket.history.append(Step(event.at, "requeued", window_id, ticket.category))
                _enqueue(state, ticket)
        case ProfileChanged(window=window_id, categories=categories):
            if window_id in state.windows:
                state.windows[window_id].categories = categories
                state.layout_version += 1
        case PasswordChanged(staff=staff, password_hash=password_hash):
            state.passwords[staff] = password_hash
        case NoticePosted(text=text, text_en=text_en):
            state.notice = (text, text_en) if text or text_en else None
    return state


def _called(state: HallState, ticket: Ticket, window: str, at: datetime, *, recall: bool) -> None:
    call = Called(state.version, ticket.id, ticket.number, ticket.category, window, at, recall)
    state.calls.append(call)
    if len(state.calls) > CALLS_KEPT:
        del state.calls[0]


def _unprint(state: HallState, ticket_id: str, printer: str | None = None) -> None:
    """The ticket leaves the print queue (of ``printer``, or whichever holds it): printed, or
    over before its printer took it (cancelled, served, gone), when a slip would only mislead."""
    for name in [printer] if printer is not None else list(state.printing):
        queue = state.printing.get(name)
        if queue is not None and ticket_id in queue:
            queue.remove(ticket_id)  # the head, but for a job acked out of order
            if not queue:
                del state.printing[name]
            return


def _enqueue(state: HallState, ticket: Ticket) -> None:
    if ticket.target_window is not None and ticket.target_window not in state.windows:
        ticket.target_window = None  # a window retired from the config calls nobody
    key = queue_key(ticket)
    lanes = state.lanes.setdefault(key, {})
    for ids in (state.queues.setdefault(key, []), lanes.setdefault(ticket.priority, [])):
        # Walk-ins arrive in order, so the end is the usual place; else bisect, never a rebuild.
        if ids and state.tickets[ids[-1]].order_key > ticket.order_key:
            ids.insert(_place(state, ids, ticket, bisect.bisect_right), ticket.id)
        else:
            ids.append(ticket.id)


def _dequeue(state: HallState, ticket: Ticket) -> None:
    key = queue_key(ticket)
    queue = state.queues.get(key)
    if not queue or not _drop(state, queue, ticket):
        return
    lanes = state.lanes[key]
    _drop(state, lanes[ticket.priority], ticket)
    if not lanes[ticket.priority]:
        del lanes[ticket.priority]
    if not queue and key.startswith("@"):
        del state.queues[key], state.lanes[key]


def _place(state: HallState, ids: list[str], ticket: Ticket, side: Bisect) -> int:
    tickets = state.tickets
    return side(ids, ticket.order_key, key=lambda t: tickets[t].order_key)


def _drop(state: HallState, ids: list[str], ticket: Ticket) -> bool:
    """Remove ``ticket`` from ``ids`` (in arrival order) if there; whether it was."""
    if ids and ids[0] == ticket.id:  # the usual case: the head is called
        del ids[0]
        return True
    index = _place(state, ids, ticket, bisect.bisect_left)
    while index < len(ids) and state.tickets[ids[index]].order_key == ticket.order_key:
        if ids[index] == ticket.id:
            del ids[index]
            return True
        index += 1
    return False


def _leave_window(state: HallState, ticket: Ticket, at: datetime) -> None:
    if ticket.window is not None:
        window = state.windows.get(ticket.window)
        if window is not None and window.ticket == ticket.id:
            _set_window(state, window.id, WindowState.OPEN, at)
        ticket.window = None


def _settle(ticket: Ticket, final: TicketState, event: AnyEvent, detail: str | None) -> None:
    ticket.state, ticket.finished_at, ticket.target_window = final, event.at, None
    ticket.history.append(Step(event.at, final.value, getattr(event, "window", None), detail))


Bisect = Callable[..., int]
_KEEP = object()


def _set_window(
    state: HallState,
    window_id: str,
    new_state: WindowState,
    at: datetime,
    *,
    ticket: str | None = None,
    staff: object = _KEEP,
    pause_reason: str | None = None,
) -> None:
    window = state.windows.get(window_id)
    if window is None:  # retired from the config since: its past events change nothing now
        return
    if (window.state is WindowState.CLOSED) is not (new_state is WindowState.CLOSED):
        state.layout_version += 1
    window.state, window.since, window.ticket = new_state, at, ticket
    window.pause_reason = pause_reason
    if staff is not _KEEP:
        window.staff = staff if isinstance(staff, str) else None
