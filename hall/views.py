"""Read models built from the hall state: what the public snapshot, ticket look-ups and the event
feed show. They carry no personal data: staff appear by window, never by name or username.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

import msgspec

from hall.config import OTHER, Device, HallConfig, Reason, Window
from hall.domain.state import HallState, Step, Ticket, TicketState, targeted_queue
from hall.journal.base import Recorded
from scheduling.estimate import ServiceTimes, places_ahead
from scheduling.forecast import forecast_new, forecast_wait
from scheduling.policy import Policy, policy_named
from scheduling.priority import call_order, priority_table

# Fields of events that name a person (an idempotency key is scoped by one), hold free text, a
# secret or a hash: the public feed leaves them out.
PRIVATE_FIELDS = frozenset(
    {"staff", "by", "note", "password_hash", "secret", "request", "person", "comment"}
)
# Events that are nobody's business on a public screen, not even their time: a rating is an
# assessment of a named staff member, for the hall's managers.
PRIVATE_EVENTS = frozenset(
    {
        "password_changed",
        "ticket_rated",
        "breach_recorded",
        "breach_excused",
        "case_stepped",
        "alert_acknowledged",
    }
)
# Events whose ``reason`` is a code of this list of the hall config (free text before codes).
REASON_LISTS = {"window_paused": "pause_reasons", "ticket_cancelled": "cancel_reasons"}


class QueueView(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    prefix: str
    name: str
    name_en: str
    zone: str
    waiting: int
    next_numbers: list[str]  # the first few waiting, in order
    # About how long a ticket taken now would wait, the median of the forecast (None: no open
    # window serves it).
    estimated_wait_minutes: float | None


class WindowView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    name_en: str
    zone: str
    state: str
    categories: list[str]
    ticket: str | None  # the number being called or served
    pause_reason: str | None  # a code of the hall's pause_reasons
    pause_reason_name: str | None
    pause_reason_name_en: str | None
    since: datetime | None
    transferred_waiting: int  # tickets transferred to this window by name


class DeviceView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    window: str | None
    # "online", "offline" (also: never connected since the journal began), or a hardware state
    # the device reported: "paper_out", "paper_low", "printer_offline", "error".
    status: str
    since: datetime | None


class HallSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    hall: str
    name: str
    name_en: str
    version: int
    day: date | None
    queues: list[QueueView]
    windows: list[WindowView]
    devices: list[DeviceView]


class StepView(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    what: str
    window: str | None
    detail: str | None


class TicketView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str
    category: str
    category_name: str
    category_name_en: str
    priority: str
    appointment: datetime | None  # the slot's start, for an appointment ticket
    state: str
    issued_at: datetime
    ahead: int  # to be called before it from its queue (0 unless waiting)
    estimated_wait_minutes: float | None  # while waiting, if an open window can call it
    # Its 80% interval (the 10th and 90th percentiles of the forecast), where it has one.
    estimated_wait_low_minutes: float | None
    estimated_wait_high_minutes: float | None
    window: str | None
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recalls: int
    transfers: int
    outcome: str | None
    served_at: str | None  # the window that finished its transaction
    rated: bool  # the visitor has rated it (one rating per transaction)
    history: list[StepView]


NEXT_NUMBERS = 10


class Estimator(msgspec.Struct, frozen=True):
    """What estimates need beside the state: the running service times, the time now and the
    calling policy (None: the one the hall file names)."""

    times: ServiceTimes
    now: datetime
    policy: Policy | None = None

    def policy_for(self, state: HallState) -> Policy:
        return self.policy or policy_named(state.config.hall.policy)


def snapshot(state: HallState, estimator: Estimator) -> HallSnapshot:
    config = state.config
    policy = estimator.policy_for(state)
    return HallSnapshot(
        hall=config.hall.id,
        name=config.hall.name,
        name_en=config.hall.name_en,
        version=state.version,
        day=state.day,
        queues=[
            QueueView(
                category=c.id,
                prefix=c.prefix,
                name=c.name,
                name_en=c.name_en,
                zone=c.zone,
                waiting=len(state.queues.get(c.id, ())),
                next_numbers=next_numbers(state, c.id, estimator.now),
                estimated_wait_minutes=_minutes(
                    forecast_new(
                        state, c.id, "normal", estimator.now, estimator.times, policy
                    ).minutes
                ),
            )
            for c in config.categories
        ],
        windows=[_window_view(state, w) for w in config.windows],
        devices=[device_view(state, d) for d in config.devices],
    )


def device_view(state: HallState, device: Device) -> DeviceView:
    health = state.devices.get(device.id)
    return DeviceView(
        id=device.id,
        kind=device.kind,
        window=device.window,
        status=health.status if health else "offline",
        since=health.since if health else None,
    )


def next_numbers(state: HallState, queue: str, now: datetime) -> list[str]:
    """The first few numbers a window will call from ``queue``, in calling order (priority and
    aging included: the order a ticket's ``ahead`` counts)."""
    table = priority_table(state.config)
    order = call_order(state, table, queue, now.timestamp())
    return [ticket.number for _, ticket in itertools.islice(order, NEXT_NUMBERS)]


def window_view(state: HallState, window_id: str) -> WindowView:
    defined = state.config.window(window_id)
    assert defined is not None  # windows come from the config
    return _window_view(state, defined)


def _window_view(state: HallState, defined: Window) -> WindowView:
    window_id = defined.id
    window = state.windows[window_id]
    reason = public_reason(state.config.pause_reasons, window.pause_reason)
    return WindowView(
        id=window.id,
        name=defined.name,
        name_en=defined.name_en,
        zone=defined.zone,
        state=window.state.value,
        categories=list(window.categories),
        ticket=_number(state, window.ticket),
        pause_reason=reason.code if reason else None,
        pause_reason_name=reason.name if reason else None,
        pause_reason_name_en=reason.name_en if reason else None,
        since=window.since,
        transferred_waiting=len(state.queues.get(targeted_queue(window_id), ())),
    )


def ticket_view(state: HallState, ticket: Ticket, estimator: Estimator) -> TicketView:
    """The ticket as anyone may see it; while it waits, its place counts the tickets that will be
    called before it (priority included) and its wait is forecast (scheduling.forecast)."""
    return render_ticket(state.config, ticket_facts(state, ticket, estimator), TicketView)


class TicketFacts(NamedTuple):
    """What a ticket view shows that a later command may change, as of one moment: the ticket
    (a copy: commands change a ticket in place; a step of its history is never changed once
    added, so a copy of the list will do) and its place. Taken inside the writer right after a
    command, which is cheap; made into a view after the writer has moved on (render_ticket)."""

    ticket: Ticket
    ahead: int  # to be called before it from its queue (0 unless waiting)
    minutes: float | None  # its forecast wait (the median)
    low: float | None = None  # the forecast's 80% interval
    high: float | None = None


def ticket_facts(state: HallState, ticket: Ticket, estimator: Estimator) -> TicketFacts:
    copy = replace(ticket, history=list(ticket.history))
    if ticket.state is not TicketState.WAITING:
        return TicketFacts(copy, 0, None)
    now, policy = estimator.now, estimator.policy_for(state)
    forecast = forecast_wait(state, ticket.id, now, estimator.times, policy)
    return TicketFacts(
        copy,
        places_ahead(state, ticket.id, now),
        _minutes(forecast.minutes),
        _minutes(forecast.low),
        _minutes(forecast.high),
    )


View = TypeVar("View", bound=TicketView)


def render_ticket(config: HallConfig, facts: TicketFacts, kind: type[View], **extra: Any) -> View:
    """The view (a ``kind``, with ``extra`` fields) of a ticket as ``facts`` saw it."""
    ticket = facts.ticket
    category = config.category(ticket.category)
    # A category retired from the config since the ticket was issued goes by its id.
    names = (category.name, category.name_en) if category else (ticket.category, ticket.category)
    return kind(
        id=ticket.id,
        number=ticket.number,
        category=ticket.category,
        category_name=names[0],
        category_name_en=names[1],
        priority=ticket.priority,
        appointment=ticket.appointment,
        state=ticket.state.value,
        issued_at=ticket.issued_at,
        ahead=facts.ahead,
        estimated_wait_minutes=facts.minutes,
        estimated_wait_low_minutes=facts.low,
        estimated_wait_high_minutes=facts.high,
        window=ticket.window,
        called_at=ticket.called_at,
        started_at=ticket.started_at,
        finished_at=ticket.finished_at,
        recalls=ticket.recalls,
        transfers=ticket.transfers,
        outcome=ticket.outcome.value if ticket.outcome else None,
        served_at=ticket.served_at,
        rated=ticket.rating is not None,
        history=[_step(config, s) for s in ticket.history],
        **extra,
    )


def _step(config: HallConfig, step: Step) -> StepView:
    detail = step.detail
    if step.what == TicketState.CANCELLED.value:  # its detail is the reason
        detail = _code(public_reason(config.cancel_reasons, detail))
    return StepView(at=step.at, what=step.what, window=step.window, detail=detail)


def notice(state: HallState) -> tuple[str, str]:
    """The hall screen's notice (text, text_en): the one a manager posted, else the hall file's."""
    if state.notice is not None:
        return state.notice
    screen = state.config.screens.hall
    return screen.notice, screen.notice_en


def public_reason(reasons: tuple[Reason, ...], reason: str | None) -> Reason | None:
    """A reason as the public sees it: its code and names, or "other" for what is not a code
    (free text journaled before reasons had codes), so that text never shows."""
    if reason is None:
        return None
    known = {r.code: r for r in reasons}
    return known.get(reason) or known.get(OTHER.code) or OTHER


def _code(reason: Reason | None) -> str | None:
    return reason.code if reason else None


def public_event(record: Recorded, config: HallConfig) -> dict[str, Any]:
    """A recorded event as the public feed sends it: its version, no one's name, no free text."""
    body: dict[str, Any] = msgspec.to_builtins(record.event)
    if body["type"] in PRIVATE_EVENTS:  # not even when: the version alone keeps feeds gapless
        return {"version": record.version, "event": {"type": "private"}}
    for name in PRIVATE_FIELDS:
        body.pop(name, None)
    reasons = REASON_LISTS.get(body["type"])
    if reasons is not None:
        body["reason"] = _code(public_reason(getattr(config, reasons), body.get("reason")))
    return {"version": record.version, "event": body}


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _number(state: HallState, ticket_id: str | None) -> str | None:
    return state.tickets[ticket_id].number if ticket_id else None
