"""What the window caller (呼叫器) shows its staff: the window screen's view, and what the desk
needs beside it: the ticket held with its times, the queue the window serves in the order its
call-next would take it, and the other windows (for a transfer).

Pure, like :mod:`displays.projection`. No personal data beyond the window screen's (the staff
name as ``[screens.window] staff_name`` says; numbers are public). Delta ``changes``: the
top-level keys that changed, whole, as the window screen's.
"""

from __future__ import annotations

from datetime import datetime

from displays.projection import WindowItem, WindowScreen, WindowView, _number, _View
from hall.config import HallConfig
from hall.domain.state import HallState, Ticket
from scheduling.lookahead import callable_count, next_calls
from scheduling.policy import Policy

QUEUE_SHOWN = 10  # the next numbers a desk lists
# How often a desk's view is projected again with no event: under the weighted policy the call
# order changes with time alone (displays.hub, refresh_seconds).
REFRESH_SECONDS = 2.0


class Held(_View, frozen=True):
    """The ticket the window holds (called or serving) with what the desk times."""

    id: str
    number: str
    category: str
    priority: str
    priority_name: str | None  # None: an ordinary ticket
    priority_name_en: str | None
    issued_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    recalls: int
    transfers: int


class Next(_View, frozen=True):
    """A ticket the window will call, in call order."""

    number: str
    category: str
    category_name: str
    category_name_en: str
    priority: str
    priority_name: str | None
    priority_name_en: str | None
    issued_at: datetime  # the page counts the minutes waited on its own clock
    sent: bool  # transferred to this window by name


class DeskView(WindowView, frozen=True, kw_only=True):
    held: Held | None
    since: datetime | None  # when the window entered its state
    profile: list[str]  # the categories it serves, in its order of preference
    queue: list[Next]  # the next QUEUE_SHOWN its call-next would take, in that order
    waiting: int  # all the tickets it may call
    windows: list[WindowItem]  # every window of the hall (a transfer goes to an open one)


class DeskScreen(WindowScreen):
    """One window's desk: the window screen's view and the desk's additions."""

    refresh_seconds = REFRESH_SECONDS

    def __init__(self, config: HallConfig, policy: Policy, window: str) -> None:
        super().__init__(config, window)
        self.policy = policy

    def view(self, state: HallState, now: datetime) -> DeskView:
        base = super().view(state, now)
        window = state.windows[self.id]
        held = state.tickets.get(window.ticket) if window.ticket else None
        return DeskView(
            hall=base.hall,
            window=base.window,
            state=base.state,
            staff=base.staff,
            ticket=base.ticket,
            pause_reason=base.pause_reason,
            rating=base.rating,
            held=self._held(held) if held else None,
            since=window.since,
            profile=list(window.categories),
            queue=[
                self._next(t) for t in next_calls(state, self.id, now, self.policy, QUEUE_SHOWN)
            ],
            waiting=callable_count(state, self.id),
            windows=[
                WindowItem(
                    id=w.id,
                    name=w.name,
                    name_en=w.name_en,
                    state=state.windows[w.id].state.value,
                    number=_number(state, state.windows[w.id].ticket),
                )
                for w in self.config.windows
            ],
        )

    def _priority(self, priority: str) -> tuple[str | None, str | None]:
        found = next((p for p in self.config.priorities if p.id == priority), None)
        return (found.name, found.name_en) if found else (None, None)

    def _held(self, ticket: Ticket) -> Held:
        name, name_en = self._priority(ticket.priority)
        return Held(
            id=ticket.id,
            number=ticket.number,
            category=ticket.category,
            priority=ticket.priority,
            priority_name=name,
            priority_name_en=name_en,
            issued_at=ticket.issued_at,
            called_at=ticket.called_at,
            started_at=ticket.started_at,
            recalls=ticket.recalls,
            transfers=ticket.transfers,
        )

    def _next(self, ticket: Ticket) -> Next:
        category = self.config.category(ticket.category)
        name, name_en = self._priority(ticket.priority)
        return Next(
            number=ticket.number,
            category=ticket.category,
            category_name=category.name if category else ticket.category,
            category_name_en=category.name_en if category else ticket.category,
            priority=ticket.priority,
            priority_name=name,
            priority_name_en=name_en,
            issued_at=ticket.issued_at,
            sent=ticket.target_window == self.id,
        )
