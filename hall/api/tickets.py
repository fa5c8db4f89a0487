"""Tickets: taken at a kiosk (or by staff for a visitor), looked up by anyone, cancelled."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from hall.api.auth import requires
from hall.api.idempotency import request_key
from hall.api.service import estimator
from hall.api.types import AwareTime, Id, Text, aware_time
from hall.domain.commands import CancelTicket, IssueTicket
from hall.domain.errors import UnknownTicket
from hall.domain.events import AnyEvent, TicketIssued
from hall.domain.state import HallState
from hall.engine import HallEngine, Reply
from hall.views import Estimator, TicketView, ticket_view


class IssueRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: Annotated[Id, msgspec.Meta(extra_json_schema={"examples": ["general"]})]
    priority: Id = "normal"
    # The slot's start, with its time zone, for an appointment priority (预约); else absent.
    appointment: AwareTime | None = None

    def __post_init__(self) -> None:
        if self.appointment is not None:
            aware_time(self.appointment)  # a real date and time, or a 400


class CancelRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Text = "cancelled"


def _issued(engine: HallEngine) -> Reply[TicketView]:
    """The new ticket, with its place and estimated wait as of its issue."""

    def reply(state: HallState, events: list[AnyEvent]) -> TicketView:
        event = events[-1]
        assert isinstance(event, TicketIssued)
        return ticket_view(state, state.tickets[event.ticket], Estimator(engine.times, event.at))

    return reply


class TicketController(Controller):
    path = "/api/halls/{hall:str}/tickets"
    tags = ["tickets"]

    @post("/", guards=[requires("device:kiosk", "staff")], status_code=201)
    async def issue(
        self,
        request: Request[Any, Any, Any],
        state: State,
        hall: FromPath[str],
        data: JSONBody[IssueRequest],
    ) -> TicketView:
        """Take a ticket for a category; answers its number and how many wait before it."""
        engine = state.service.engine(hall)
        command = IssueTicket(
            category=data.category,
            priority=data.priority,
            appointment=None if data.appointment is None else aware_time(data.appointment),
        )
        done = await engine.execute(command, _issued(engine), key=request_key(request))
        return done.reply  # type: ignore[no-any-return]

    @get("/{ticket:str}")
    async def lookup(self, state: State, hall: FromPath[str], ticket: FromPath[str]) -> TicketView:
        """A ticket of today (or still active) with its state, place and history."""

        def view(hall_state: HallState) -> TicketView:
            found = hall_state.tickets.get(ticket)
            if found is None:
                raise UnknownTicket(f"no ticket {ticket!r} today", ticket=ticket)
            return ticket_view(hall_state, found, estimator(engine))

        engine = state.service.engine(hall)
        return await engine.read(view)  # type: ignore[no-any-return]

    @post("/{ticket:str}/cancel", guards=[requires("device:kiosk", "staff")], status_code=200)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        state: State,
        hall: FromPath[str],
        ticket: FromPath[str],
        data: JSONBody[CancelRequest],
    ) -> TicketView:
        engine = state.service.engine(hall)
        done = await engine.execute(
            CancelTicket(ticket=ticket, reason=data.reason),
            lambda s, _: ticket_view(s, s.tickets[ticket], estimator(engine)),
            key=request_key(request),
        )
        return done.reply  # type: ignore[no-any-return]
