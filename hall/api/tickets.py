"""Tickets: taken at a kiosk (or by staff for a visitor), looked up by anyone, cancelled."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from hall.api.auth import requires
from hall.domain.commands import CancelTicket, IssueTicket
from hall.domain.errors import UnknownTicket
from hall.domain.events import AnyEvent, TicketIssued
from hall.domain.state import HallState
from hall.views import TicketView, ticket_view

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class IssueRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: Id
    priority: Id = "normal"


class CancelRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "cancelled"


class IssuedTicket(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str
    category: str
    category_name: str
    category_name_en: str
    priority: str
    ahead: int  # tickets of its queue waiting before it
    issued_at: Any


def _issued(state: HallState, events: list[AnyEvent]) -> IssuedTicket:
    event = events[0]
    assert isinstance(event, TicketIssued)
    ticket = state.tickets[event.ticket]
    category = state.config.category(ticket.category)
    assert category is not None
    return IssuedTicket(
        id=ticket.id,
        number=ticket.number,
        category=category.id,
        category_name=category.name,
        category_name_en=category.name_en,
        priority=ticket.priority,
        ahead=state.ahead_of(ticket),
        issued_at=ticket.issued_at,
    )


class TicketController(Controller):
    path = "/api/halls/{hall:str}/tickets"
    tags = ["tickets"]

    @post("/", guards=[requires("device:kiosk", "staff")], status_code=201)
    async def issue(
        self, state: State, hall: FromPath[str], data: JSONBody[IssueRequest]
    ) -> IssuedTicket:
        """Take a ticket for a category; answers its number and how many wait before it."""
        engine = state.service.engine(hall)
        done = await engine.execute(
            IssueTicket(category=data.category, priority=data.priority), _issued
        )
        return done.reply  # type: ignore[no-any-return]

    @get("/{ticket:str}")
    async def lookup(self, state: State, hall: FromPath[str], ticket: FromPath[str]) -> TicketView:
        """A ticket of today (or still active) with its state, place and history."""

        def view(hall_state: HallState) -> TicketView:
            found = hall_state.tickets.get(ticket)
            if found is None:
                raise UnknownTicket(f"no ticket {ticket!r} today", ticket=ticket)
            return ticket_view(hall_state, found)

        return await state.service.engine(hall).read(view)  # type: ignore[no-any-return]

    @post("/{ticket:str}/cancel", guards=[requires("device:kiosk", "staff")], status_code=200)
    async def cancel(
        self,
        state: State,
        hall: FromPath[str],
        ticket: FromPath[str],
        data: JSONBody[CancelRequest],
    ) -> TicketView:
        engine = state.service.engine(hall)
        done = await engine.execute(
            CancelTicket(ticket=ticket, reason=data.reason),
            lambda s, _: ticket_view(s, s.tickets[ticket]),
        )
        return done.reply  # type: ignore[no-any-return]
