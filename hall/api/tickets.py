"""Tickets: taken at a kiosk (or by staff for a visitor), looked up by anyone, cancelled (by staff,
a kiosk while the ticket waits, or the visitor with the secret printed on it)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from hall.api.auth import principal_of, requires
from hall.api.idempotency import request_key
from hall.api.service import estimator
from hall.api.types import AwareTime, Id, Text, aware_time
from hall.domain.commands import CancelTicket, IssueTicket, Rate
from hall.domain.errors import ECHO_CHARS, UnknownTicket, shown
from hall.domain.events import AnyEvent, TicketIssued
from hall.domain.state import HallState
from hall.engine import HallEngine, Reply
from hall.identity import age_on, birth_date, person_hash
from hall.views import Estimator, TicketFacts, TicketView, render_ticket, ticket_facts, ticket_view


class IssueRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: Annotated[Id, msgspec.Meta(extra_json_schema={"examples": ["general"]})]
    priority: Id = "normal"
    # The slot's start, with its time zone, for an appointment priority (预约); else absent.
    appointment: AwareTime | None = None
    # The visitor's resident ID number (18 characters), if they entered it: one live ticket per
    # person and category, and the age rules of the priorities (绿色通道 from 70). Checked, then
    # kept only as a keyed hash; never echoed, logged or shown.
    id_number: Annotated[str, msgspec.Meta(min_length=1, max_length=18)] | None = None

    def __post_init__(self) -> None:
        if self.appointment is not None:
            aware_time(self.appointment)  # a real date and time, or a 400


class RatingRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A pad's rating: 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意; null: the visitor
    left without rating (recorded as not rated)."""

    level: Annotated[int, msgspec.Meta(ge=1, le=5)] | None
    reasons: Annotated[list[Id], msgspec.Meta(max_length=10)] = []  # for levels 1 and 2
    comment: Text | None = None  # the visitor's words; for the hall's managers only


class VisitorRatingRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The visitor's rating from their phone (扫码评), with the secret printed on the ticket."""

    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    level: Annotated[int, msgspec.Meta(ge=1, le=5)]
    reasons: Annotated[list[Id], msgspec.Meta(max_length=10)] = []
    comment: Text | None = None


class CancelRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Id = "other"  # a code of the hall's cancel_reasons: public
    note: Text | None = None  # for staff only


class VisitorCancelRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class IssuedTicket(TicketView, frozen=True, kw_only=True):
    """The new ticket, and the secret printed on it (a retry with the same Idempotency-Key gets
    the same one): whoever holds it may cancel the ticket while it waits."""

    secret: str


def _issued(engine: HallEngine) -> Reply[tuple[TicketFacts, str]]:
    """The new ticket, with its place and estimated wait as of its issue, and its secret (in the
    writer: only what a later command could change; the view is made by the caller)."""

    def reply(state: HallState, events: list[AnyEvent]) -> tuple[TicketFacts, str]:
        event = events[-1]
        assert isinstance(event, TicketIssued)
        ticket = state.tickets[event.ticket]
        estimator = Estimator(engine.times, event.at, engine.policy)
        return ticket_facts(state, ticket, estimator), ticket.secret

    return reply


async def _on_ticket(
    engine: HallEngine, command: CancelTicket | Rate, key: str | None
) -> TicketView:
    """Run a command about one ticket; answer the ticket as it left it."""
    done = await engine.execute(
        command,
        lambda s, _: ticket_facts(s, s.tickets[command.ticket], estimator(engine)),
        key=key,
    )
    return render_ticket(engine.config, done.reply, TicketView)


class TicketController(Controller):
    path = "/api/halls/{hall:str}/tickets"
    tags = ["tickets"]

    @post("/", opt=requires("device:kiosk", "staff"), status_code=201)
    async def issue(
        self, request: Request[Any, Any, Any], hall: FromPath[str], data: JSONBody[IssueRequest]
    ) -> IssuedTicket:
        """Take a ticket for a category; answers its number, how many wait before it, and the
        secret to print on it. A device issues a few at once, then one every few seconds (429)."""
        service = request.app.state.service
        engine = service.engine(hall)
        principal = principal_of(request)
        key = request_key(request)  # a malformed key is bad input before it costs a ticket
        # A retry of an answered request makes no ticket: it does not use up the kiosk's turn.
        retry = key is not None and await engine.read(lambda s: key in s.answered)
        if principal.role == "device" and not retry:
            limit = engine.config.issuing
            service.issue_limits.take(
                hall, principal.name, limit.device_seconds, limit.device_burst
            )
        person, age = "", None
        if data.id_number is not None:
            today = engine.clock().astimezone(engine.config.tz).date()
            age = age_on(birth_date(data.id_number, today), today)
            person = person_hash(service.person_key, data.id_number)
        device = engine.config.device(principal.name) if principal.role == "device" else None
        command = IssueTicket(
            category=data.category,
            priority=data.priority,
            appointment=None if data.appointment is None else aware_time(data.appointment),
            secret=secrets.token_urlsafe(16),  # 128 bits: unguessable, short enough for a QR
            person=person,
            age=age,
            printer=device.printer if device is not None else None,
        )
        done = await engine.execute(command, _issued(engine), key=key)
        facts, secret = done.reply
        return render_ticket(engine.config, facts, IssuedTicket, secret=secret)

    @get("/{ticket:str}")
    async def lookup(self, state: State, hall: FromPath[str], ticket: FromPath[str]) -> TicketView:
        """A ticket of today (or still active) with its state, place and history."""

        def view(hall_state: HallState) -> TicketView:
            found = hall_state.tickets.get(ticket)
            if found is None:
                raise UnknownTicket(f"no ticket {shown(ticket)} today", ticket=ticket[:ECHO_CHARS])
            return ticket_view(hall_state, found, estimator(engine))

        engine = state.service.engine(hall)
        return await engine.read(view)  # type: ignore[no-any-return]

    @post("/{ticket:str}/cancel", opt=requires("device:kiosk", "staff"), status_code=200)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        ticket: FromPath[str],
        data: JSONBody[CancelRequest],
    ) -> TicketView:
        """Cancel with a reason code (public) and an optional note (staff only); a kiosk may
        cancel only a ticket that still waits, never one called or served at a window."""
        principal = principal_of(request)
        command = CancelTicket(
            ticket=ticket,
            reason=data.reason,
            note=data.note,
            by=principal.name,
            waiting_only=principal.role == "device",
        )
        return await _on_ticket(
            request.app.state.service.engine(hall), command, request_key(request)
        )

    @post("/{ticket:str}/rating", opt=requires("device:pad"), status_code=200)
    async def rate(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        ticket: FromPath[str],
        data: JSONBody[RatingRequest],
    ) -> TicketView:
        """The pad of the window that finished the transaction rates it, once (好差评, 一次一评);
        a level of null records that the visitor left without rating."""
        engine = request.app.state.service.engine(hall)
        principal = principal_of(request)
        device = engine.config.device(principal.name)
        command = Rate(
            ticket=ticket,
            level=data.level,
            reasons=tuple(data.reasons),
            comment=data.comment,
            by=principal.name,
            window=device.window if device is not None else None,
        )
        return await _on_ticket(engine, command, request_key(request))

    @post("/{ticket:str}/visitor-rating", status_code=200)
    async def visitor_rate(
        self,
        state: State,
        hall: FromPath[str],
        ticket: FromPath[str],
        data: JSONBody[VisitorRatingRequest],
    ) -> TicketView:
        """The visitor rates their finished transaction from the phone page (扫码评), with the
        secret printed on the ticket; one rating per transaction, pad or phone."""
        command = Rate(
            ticket=ticket,
            level=data.level,
            reasons=tuple(data.reasons),
            comment=data.comment,
            by="visitor",
            secret=data.secret,
        )
        return await _on_ticket(state.service.engine(hall), command, None)

    @post("/{ticket:str}/visitor-cancel", status_code=200)
    async def visitor_cancel(
        self,
        state: State,
        hall: FromPath[str],
        ticket: FromPath[str],
        data: JSONBody[VisitorCancelRequest],
    ) -> TicketView:
        """The visitor cancels their own waiting ticket with the secret printed on it (no token)."""
        command = CancelTicket(
            ticket=ticket,
            reason="visitor",
            by="visitor",
            waiting_only=True,
            secret=data.secret,
        )
        return await _on_ticket(state.service.engine(hall), command, None)
