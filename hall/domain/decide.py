"""Decisions: ``decide(state, command, now, policy) -> events``, pure, raising typed errors.

``decide`` never changes the state; the caller journals the events and then applies them. A new
business day is its own decision (:func:`day_events`), taken before any command of that day.
"""

from __future__ import annotations

import copy
import hmac
from datetime import date, datetime, timedelta

import msgspec

from hall.config import Category
from hall.domain import errors, oversight, rating
from hall.domain.commands import (
    AcknowledgeAlert,
    AnyCommand,
    CallNext,
    CancelTicket,
    ChangePassword,
    ChangeProfile,
    ExcuseBreach,
    Finish,
    ForceClose,
    IssueTicket,
    Login,
    Logout,
    MarkPrinted,
    NoShow,
    OpenDay,
    OpenWindow,
    Pause,
    PostNotice,
    Rate,
    Recall,
    RecordBreach,
    ReportDevice,
    Resume,
    Start,
    StepCase,
    Transfer,
    WindowCommand,
)
from hall.domain.events import (
    AlertAcknowledged,
    AnyEvent,
    BreachExcused,
    BreachRecorded,
    CaseStepped,
    DayStarted,
    DeviceReported,
    NoticePosted,
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
from hall.domain.state import (
    ACTIVE,
    HallState,
    Ticket,
    TicketState,
    WindowState,
    WindowStatus,
    apply,
)
from scheduling.calendar import business_day, is_open
from scheduling.policy import Policy


def day_events(state: HallState, now: datetime) -> list[AnyEvent]:
    """[DayStarted] when ``now`` is in a later business day than the state; else []."""
    today = business_day(state.config, now)
    if state.day is not None and today <= state.day:
        return []
    expired = tuple(
        t.id
        for t in state.tickets.values()
        if t.state in (TicketState.WAITING, TicketState.CALLED) and t.day < today
    )
    return [DayStarted(at=now, day=today, expired=expired)]


def execute(state: HallState, command: AnyCommand, now: datetime, policy: Policy) -> list[AnyEvent]:
    """Decide and apply in one step, for callers with no journal in between (simulator, tests).

    Returns every event applied, a new day's first. A refused command changes nothing, not even
    the turn of the day (the next command turns it): otherwise the caller, who gets an error and
    no events, would hold a state its events do not explain.
    """
    events = day_events(state, now)
    if events:
        # The command is decided on the new day, so on a copy first (once a day, so cheap).
        trial = copy.deepcopy(state, {id(state.config): state.config})
        for event in events:
            apply(trial, event)
        decided = decide(trial, command, now, policy)
    else:
        decided = decide(state, command, now, policy)
    for event in events + decided:
        apply(state, event)
    return events + decided


def decide(state: HallState, command: AnyCommand, now: datetime, policy: Policy) -> list[AnyEvent]:
    match command:
        case IssueTicket():
            return [_issue(state, command, now)]
        case CancelTicket():
            return [_cancel(state, command, now)]
        case ForceClose(window=window_id, by=by, note=note):
            window = _window(state, window_id)
            if window.state is WindowState.CLOSED or window.staff is None:
                raise errors.WindowNotOpen(f"window {window_id} is closed", window=window_id)
            return [
                WindowClosed(
                    at=now,
                    window=window_id,
                    staff=window.staff,
                    by=by,
                    note=note,
                    ticket=window.ticket,
                )
            ]
        case ChangePassword(staff=username, password_hash=password_hash):
            if state.config.staff_member(username) is None:
                raise errors.UnknownStaff(f"unknown staff member {username!r}")
            return [PasswordChanged(at=now, staff=username, password_hash=password_hash)]
        case OpenDay():
            return []  # the day's turn itself is day_events', taken before every command
        case ChangeProfile(window=window_id, categories=categories, by=by):
            _window(state, window_id)
            for category in categories:
                _category(state, category)
            if not categories or len(set(categories)) != len(categories):
                raise errors.InvalidInput("a profile lists each category once, at least one")
            return [ProfileChanged(at=now, window=window_id, categories=categories, by=by)]
        case PostNotice(text=text, text_en=text_en, by=by):
            return [NoticePosted(at=now, text=text, text_en=text_en, by=by)]
        case MarkPrinted(ticket=ticket_id, printer=printer):
            if ticket_id not in state.printing.get(printer, ()):
                return []  # printed and acked before (an ack sent again), or of another day
            return [TicketPrinted(at=now, ticket=ticket_id, printer=printer)]
        case Rate():
            return [_rate(state, command, now)]
        case ReportDevice(device=device, status=status):
            if state.config.device(device) is None:
                raise errors.InvalidInput(f"no device {errors.shown(device)}")
            known = state.devices.get(device)
            if known is not None and known.status == status:
                return []
            return [DeviceReported(at=now, device=device, status=status)]
        case Login():
            return _login(state, command, now)
        case OpenWindow(window=window_id, staff=staff, by=by):
            _manager(state, by)
            opened = _login(state, Login(window=window_id, by=staff), now)
            return [msgspec.structs.replace(e, by=by) for e in opened]
        case RecordBreach():
            return _record_breach(state, command, now)
        case ExcuseBreach(breach=breach_id, reason=reason, by=by):
            _manager(state, by)
            breach = state.breaches.get(breach_id)
            if breach is None:
                raise errors.UnknownBreach(f"no breach {errors.shown(breach_id)} on record")
            if breach.excused:
                raise errors.AlreadyExcused(f"breach {breach_id} is excused already")
            return [BreachExcused(at=now, breach=breach_id, reason=reason, by=by)]
        case StepCase():
            return [_step_case(state, command, now)]
        case AcknowledgeAlert(alert=alert, by=by):
            _manager(state, by)
            if alert in state.acknowledged:
                return []
            return [AlertAcknowledged(at=now, alert=alert, by=by)]
        case WindowCommand():
            return _at_window(state, command, now, policy)
    raise errors.InvalidInput(f"unknown command {type(command).__name__}")


def _cancel(state: HallState, command: CancelTicket, now: datetime) -> TicketCancelled:
    if state.config.cancel_reason(command.reason) is None:
        codes = [r.code for r in state.config.cancel_reasons]
        raise errors.UnknownReason(f"unknown cancel reason {command.reason!r}", known=codes)
    ticket = _ticket(state, command.ticket)
    if command.secret is not None and not (
        ticket.secret and hmac.compare_digest(ticket.secret.encode(), command.secret.encode())
    ):
        raise errors.WrongSecret("that is not this ticket's secret", ticket=ticket.id)
    allowed = {TicketState.WAITING} if command.waiting_only else ACTIVE
    if ticket.state not in allowed:
        raise errors.TicketNotWaiting(
            f"ticket {ticket.number} is {ticket.state.value}", ticket=ticket.id
        )
    holder = state.windows.get(ticket.window) if ticket.window else None
    cancelling = state.config.staff_member(command.by) if command.by else None
    if (
        holder is not None
        and holder.staff != command.by
        and not (cancelling is not None and cancelling.role == "manager")
    ):  # a ticket at a window is that window's business (or a manager's)
        raise errors.NotYourWindow(
            f"ticket {ticket.number} is at window {holder.id}", window=holder.id
        )
    return TicketCancelled(
        at=now, ticket=ticket.id, reason=command.reason, note=command.note, by=command.by
    )


def _rate(state: HallState, command: Rate, now: datetime) -> TicketRated:
    ticket = _ticket(state, command.ticket)
    if command.secret is not None and not (
        ticket.secret and hmac.compare_digest(ticket.secret.encode(), command.secret.encode())
    ):
        raise errors.WrongSecret("that is not this ticket's secret", ticket=ticket.id)
    level = command.level
    if level is None and command.window is None:
        raise errors.InvalidInput("only a pad records a transaction as not rated")
    if level is not None and level not in rating.VALUES:
        raise errors.InvalidInput("a rating is a level from 1 to 5", level=level)
    if level is not None and level in rating.LOW_LEVELS:
        if not command.reasons:
            raise errors.InvalidInput("a rating of 1 or 2 needs at least one reason")
        for code in command.reasons:
            if state.config.rating_reason(code) is None:
                known = [r.code for r in state.config.rating.reasons]
                raise errors.UnknownReason(
                    f"unknown rating reason {errors.shown(code)}", known=known
                )
        if len(set(command.reasons)) != len(command.reasons):
            raise errors.InvalidInput("a rating lists each reason once")
    elif command.reasons:
        raise errors.InvalidInput("reasons go with a rating of 1 or 2 only")
    if level is None and command.comment is not None:
        raise errors.InvalidInput("a transaction not rated has no comment")
    if ticket.state is not TicketState.FINISHED or ticket.served_at is None:
        raise errors.NotRatable(
            f"ticket {ticket.number} has no finished transaction to rate", ticket=ticket.id
        )
    if command.window is not None and command.window != ticket.served_at:
        raise errors.NotServedHere(
            f"ticket {ticket.number} was not served at window {command.window}", ticket=ticket.id
        )
    # After "not rated" only the visitor's phone may still rate: the pad had its turn.
    if ticket.rating is not None or (ticket.not_rated and command.window is not None):
        raise errors.AlreadyRated(
            f"ticket {ticket.number} is rated already: one rating per transaction",
            ticket=ticket.id,
        )
    return TicketRated(
        at=now,
        ticket=ticket.id,
        window=ticket.served_at,
        staff=ticket.served_by or "",
        level=level,
        reasons=command.reasons,
        comment=command.comment,
        by=command.by,
        channel="pad" if command.secret is None else "phone",
    )


def _manager(state: HallState, by: str) -> None:
    staff = state.config.staff_member(by)
    if staff is None or staff.role != "manager":
        raise errors.Forbidden(f"only a manager may do this, not {errors.shown(by)}")


def _record_breach(state: HallState, command: RecordBreach, now: datetime) -> list[AnyEvent]:
    if command.rule not in oversight.RULES:
        raise errors.InvalidInput(f"no discipline rule {errors.shown(command.rule)}")
    _window(state, command.window)
    if command.breach in state.breaches:
        return []  # found again (a watcher rebuilt after a restart): recorded once
    return [
        BreachRecorded(
            at=now,
            breach=command.breach,
            rule=command.rule,
            window=command.window,
            staff=command.staff,
            since=command.since,
            measured=command.measured,
            limit=command.limit,
            evidence=command.evidence,
        )
    ]


def _step_case(state: HallState, command: StepCase, now: datetime) -> CaseStepped:
    _manager(state, command.by)
    followed = state.cases.get(command.case)
    if followed is None:
        raise errors.UnknownCase(
            f"no open case {errors.shown(command.case)} (closed, or never a bad rating)"
        )
    step = command.step
    try:
        oversight.next_stage(followed, step, command.valid)
    except ValueError as exc:
        raise errors.StepRefused(str(exc), stage=followed.stage.value) from None
    if step not in (oversight.Stage.VERIFY, oversight.Stage.CONFIRM) and command.valid is not None:
        raise errors.InvalidInput(f"{step} gives no verdict; leave valid out")
    if step == oversight.Stage.CONFIRM and command.by == followed.verified_by:
        raise errors.SecondManagerNeeded(
            f"{command.by} found case {followed.number} not valid; another manager confirms it"
        )
    needs_text = step == oversight.Stage.RECTIFY or (
        step in (oversight.Stage.VERIFY, oversight.Stage.CONFIRM) and command.valid is False
    )
    if needs_text and not command.text.strip():
        raise errors.InvalidInput(
            "say what was done" if step == "rectify" else "say why it is not valid"
        )
    if step == oversight.Stage.REVISIT:
        if command.result is None or state.config.revisit_result(command.result) is None:
            known = [r.code for r in state.config.cases.revisit_results]
            raise errors.UnknownReason("a revisit gives its result, a known code", known=known)
    elif command.result is not None:
        raise errors.InvalidInput("only a revisit gives a result")
    return CaseStepped(
        at=now,
        case=followed.id,
        step=step,
        by=command.by,
        valid=command.valid,
        result=command.result,
        text=command.text.strip(),
    )


def _age_priority(state: HallState, command: IssueTicket) -> str:
    """The priority a ticket gets: the one asked for, or, for an ordinary ticket whose visitor's
    age is known, the highest-ranked class whose ``min_age`` that age reaches (绿色通道)."""
    if command.priority != "normal" or command.age is None:
        return command.priority
    qualifying = [
        p for p in state.config.priorities if p.min_age is not None and command.age >= p.min_age
    ]
    return max(qualifying, key=lambda p: p.rank).id if qualifying else command.priority


def _issue(state: HallState, command: IssueTicket, now: datetime) -> TicketIssued:
    config = state.config
    category = _category(state, command.category)
    if command.person:
        held = next(
            (
                t
                for t in state.tickets.values()
                if t.person == command.person and t.category == category.id and t.state in ACTIVE
            ),
            None,
        )
        if held is not None:
            raise errors.AlreadyHolding(
                f"this ID number already holds ticket {held.number} for {category.name}",
                number=held.number,
            )
    priority = _age_priority(state, command)
    if config.priority_rank(priority) is None:
        raise errors.UnknownPriority(f"unknown priority {priority!r}", priority=priority)
    slotted = any(p.id == priority and p.slot_minutes for p in config.priorities)
    if slotted != (command.appointment is not None):
        raise errors.InvalidInput(
            f"an appointment time goes with an appointment priority ({priority!r} "
            + ("needs one)" if slotted else "takes none)"),
            priority=priority,
        )
    if command.appointment is not None and command.appointment.tzinfo is None:
        raise errors.InvalidInput("an appointment time must carry its time zone")
    if command.appointment is not None:
        _within_horizon(state, command, now)
    if not config.hours.issue_outside_hours and not is_open(config, now):
        raise errors.HallClosed("the hall is closed now; tickets are issued in opening hours")
    seq = state.sequences.get(category.id, 0) + 1
    limit = 10**config.hall.number_digits - 1
    if category.daily_quota:
        limit = min(limit, category.daily_quota)
    if seq > limit:
        raise errors.QuotaReached(
            f"no more tickets for {category.name} today ({limit} issued)", category=category.id
        )
    # The hall's day, not the clock's: they differ only when the clock stepped back over midnight,
    # and then the clock's day would reuse numbers (and ticket ids) issued on it before.
    day = max(business_day(config, now), state.day or date.min)
    number = f"{category.prefix}{seq:0{config.hall.number_digits}d}"
    return TicketIssued(
        at=now,
        ticket=f"{day:%Y%m%d}-{number}",
        number=number,
        category=category.id,
        seq=seq,
        day=day,
        priority=priority,
        appointment=command.appointment,
        secret=command.secret,
        person=command.person,
        printer=command.printer,
    )


def _within_horizon(state: HallState, command: IssueTicket, now: datetime) -> None:
    """An appointment slot that has not yet ended, within the hall's booking horizon."""
    assert command.appointment is not None
    slot = next(p.slot_minutes for p in state.config.priorities if p.id == command.priority)
    horizon = state.config.hall.booking_days
    if not now - timedelta(minutes=slot) <= command.appointment <= now + timedelta(days=horizon):
        raise errors.InvalidInput(
            f"an appointment slot must not have ended and must start within {horizon} days",
            appointment=command.appointment.isoformat(),
        )


def _login(state: HallState, command: Login, now: datetime) -> list[AnyEvent]:
    window = _window(state, command.window)
    staff = state.config.staff_member(command.by)
    if staff is None:
        raise errors.UnknownStaff(f"unknown staff member {command.by!r}")
    if staff.windows and window.id not in staff.windows:
        raise errors.StaffNotAllowed(
            f"{command.by} may not work at window {window.id}", window=window.id
        )
    elsewhere = state.staff_at.get(command.by)
    if elsewhere is not None and elsewhere != window.id:
        raise errors.StaffElsewhere(
            f"{command.by} is logged in at window {elsewhere}", window=elsewhere
        )
    if window.state is not WindowState.CLOSED:
        if window.staff == command.by:  # logging in again (a new device, a lost token): no change
            return []
        raise errors.WindowBusy(f"window {window.id} is open; {window.staff} must log out first")
    return [WindowOpened(at=now, window=window.id, staff=command.by)]


def _at_window(
    state: HallState, command: WindowCommand, now: datetime, policy: Policy
) -> list[AnyEvent]:
    window = _window(state, command.window)
    if window.state is WindowState.CLOSED:
        raise errors.WindowNotOpen(f"window {window.id} is closed")
    if window.staff != command.by:
        raise errors.NotYourWindow(f"window {window.id} is not yours", window=window.id)
    w = window.id
    match command:
        case CallNext():
            _require(window, WindowState.OPEN, "call a ticket")
            chosen = policy(state, window.id, now)
            return [] if chosen is None else [TicketCalled(ticket=chosen.id, at=now, window=w)]
        case Recall():
            ticket = _held(state, window, WindowState.CALLING, "recall")
            return [TicketRecalled(ticket=ticket.id, count=ticket.recalls + 1, at=now, window=w)]
        case Start():
            ticket = _held(state, window, WindowState.CALLING, "start serving")
            return [ServiceStarted(ticket=ticket.id, at=now, window=w)]
        case Finish(outcome=outcome):
            ticket = _held(state, window, WindowState.SERVING, "finish")
            return [ServiceFinished(ticket=ticket.id, outcome=outcome, at=now, window=w)]
        case NoShow():
            ticket = _held(state, window, WindowState.CALLING, "mark a no-show")
            return [TicketNoShow(ticket=ticket.id, at=now, window=w)]
        case Transfer(category=category_id, to_window=to_window):
            return [_transfer(state, window, category_id, to_window, now)]
        case Pause(reason=reason, note=note):
            _require(window, WindowState.OPEN, "pause")
            if state.config.pause_reason(reason) is None:
                codes = [r.code for r in state.config.pause_reasons]
                raise errors.UnknownReason(f"unknown pause reason {reason!r}", known=codes)
            return [WindowPaused(reason=reason, note=note, at=now, window=w)]
        case Resume():
            _require(window, WindowState.PAUSED, "resume")
            return [WindowResumed(at=now, window=w)]
        case Logout():
            if window.ticket is not None:
                raise errors.WindowBusy(
                    f"window {window.id} still holds a ticket; finish, transfer or mark it first"
                )
            return [WindowClosed(staff=command.by, at=now, window=w)]
    raise errors.InvalidInput(f"unknown window command {type(command).__name__}")


def _transfer(
    state: HallState,
    window: WindowStatus,
    category_id: str | None,
    to_window: str | None,
    now: datetime,
) -> TicketTransferred:
    if window.ticket is None:
        raise errors.WindowNotReady(f"window {window.id} holds no ticket to transfer")
    ticket = state.tickets[window.ticket]
    if category_id is None and to_window is None:
        raise errors.InvalidInput("a transfer names a category, a window, or both")
    if category_id is not None:
        _category(state, category_id)
    if to_window is not None:
        target = _window(state, to_window)
        if to_window == window.id:
            raise errors.InvalidInput("a ticket cannot be transferred to its own window")
        if target.state is WindowState.CLOSED:
            raise errors.WindowNotOpen(
                f"window {to_window} is closed; nobody there would call the ticket",
                window=to_window,
            )
    return TicketTransferred(
        at=now,
        ticket=ticket.id,
        window=window.id,
        category=category_id or ticket.category,
        to_window=to_window,
    )


def _require(window: WindowStatus, needed: WindowState, doing: str) -> None:
    if window.state is not needed:
        raise errors.WindowNotReady(
            f"window {window.id} is {window.state.value}; it must be {needed.value} to {doing}",
            window=window.id,
            state=window.state.value,
        )


def _held(state: HallState, window: WindowStatus, needed: WindowState, doing: str) -> Ticket:
    _require(window, needed, doing)
    assert window.ticket is not None  # calling and serving windows always hold one
    return state.tickets[window.ticket]


def _ticket(state: HallState, ticket_id: str) -> Ticket:
    ticket = state.tickets.get(ticket_id)
    if ticket is None:
        raise errors.UnknownTicket(
            f"no ticket {errors.shown(ticket_id)} today", ticket=ticket_id[: errors.ECHO_CHARS]
        )
    return ticket


def _window(state: HallState, window_id: str) -> WindowStatus:
    window = state.windows.get(window_id)
    if window is None:
        raise errors.UnknownWindow(
            f"no window {errors.shown(window_id)}", window=window_id[: errors.ECHO_CHARS]
        )
    return window


def _category(state: HallState, category_id: str) -> Category:
    category = state.config.category(category_id)
    if category is None:
        raise errors.UnknownCategory(
            f"no category {errors.shown(category_id)}", category=category_id[: errors.ECHO_CHARS]
        )
    return category
