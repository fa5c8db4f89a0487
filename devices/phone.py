"""The visitor's phone page (from the QR code on the ticket): the ticket's place and estimated
wait, live; the call, with vibration and a beep where the phone allows; cancel while waiting;
the rating form after the service (扫码评).

``/phone/{hall}/{ticket}#s={secret}``: the secret stays in the fragment (the page keeps it in the
browser's storage for reloads) and goes only in the bodies of visitor-cancel and visitor-rating.
The page follows ``/ws/halls/{hall}/screens/tickets/{ticket}``, a screen-like feed of one ticket
(:mod:`displays.ticket_screen`), open to anyone as ``GET …/tickets/{id}`` is: it carries what the
paper ticket tells, nothing personal.
"""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, get, websocket
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from displays.feed import serve
from displays.pages import hall_or_404, not_found
from displays.ticket_screen import TicketScreen
from hall.domain import rating
from hall.domain.errors import ECHO_CHARS, UnknownTicket, shown
from hall.domain.state import HallState
from hall.engine import HallEngine


@get("/phone/{hall:str}/{ticket:str}", include_in_schema=False)
async def phone_page(state: State, hall: FromPath[str], ticket: FromPath[str]) -> Template:
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    engine: HallEngine = state.service.engine(hall)
    if not await engine.read(lambda s: ticket in s.tickets):
        return not_found(
            f"今天没有号票 {shown(ticket)}",
            f"No ticket {shown(ticket)} today: tickets are valid on the day they are taken",
        )
    return Template(
        "phone.html",
        context={
            "config": config,
            "levels": rating.LEVELS,
            "reasons": config.rating.reasons,
            "settings": {
                "hall": config.hall.id,
                "ticket": ticket,
                "feed": f"/ws/halls/{config.hall.id}/screens/tickets/{ticket}",
                "api": f"/api/halls/{config.hall.id}/tickets/{ticket}",
                "low_levels": rating.LOW_LEVELS,
            },
        },
    )


@websocket("/ws/halls/{hall:str}/screens/tickets/{ticket:str}")
async def ticket_feed(
    socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str], ticket: FromPath[str]
) -> None:
    async def known(engine: HallEngine) -> None:
        def check(hall_state: HallState) -> None:
            if ticket not in hall_state.tickets:
                raise UnknownTicket(f"no ticket {shown(ticket)} today", ticket=ticket[:ECHO_CHARS])

        await engine.read(check)

    await serve(
        socket,
        state.screens,
        hall,
        ("ticket", ticket),
        None,
        lambda engine: TicketScreen(engine.config, ticket, lambda: engine.times),
        admit=known,
    )


ROUTES: list[Any] = [phone_page, ticket_feed]
PAGES: tuple[Any, ...] = ()
