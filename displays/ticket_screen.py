"""The visitor's phone page follows one ticket: a screen-like projection over it (pure, ``now`` an
argument), served at ``/ws/halls/{hall}/screens/tickets/{ticket}`` by :func:`displays.feed.serve`.

The view is what the ticket printed on paper already tells anyone holding it, kept current: its
number and service, its state, how many are ahead and the estimated wait (the same figures as
``GET …/tickets/{id}``: :func:`hall.views.ticket_facts` with the engine's running service times),
the window it is called to or was served at (with the window's names), and whether it was rated.
Nothing personal: no secret, no person hash, no staff, no rating level or comment. Delta
``changes``: the top-level keys that changed, whole (as a window screen's).

A ticket leaves the hall's memory the day after it ends (the journal keeps it): its view then says
``"gone"``, from what its id tells (the number, and the service by its prefix).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from displays.projection import WindowHall, changed_fields
from hall.config import HallConfig
from hall.domain.state import HallState
from hall.journal.base import Recorded
from hall.views import Estimator, ticket_facts
from scheduling.estimate import ServiceTimes

GONE = "gone"  # no longer among the hall's tickets: an earlier day's


class _View(msgspec.Struct, frozen=True, kw_only=True):
    """Immutable, compared by value to find what changed."""


class TicketWindow(_View, frozen=True):
    id: str
    name: str
    name_en: str


class TicketScreenView(_View, frozen=True):
    hall: WindowHall
    id: str
    number: str
    category: str | None  # None only for a gone ticket whose prefix no service has now
    category_name: str
    category_name_en: str
    state: str  # waiting, called, serving, finished, no_show, cancelled, expired, or gone
    ahead: int  # to be called before it (0 unless waiting)
    estimated_wait_minutes: float | None  # while waiting, if an open window can call it
    window: TicketWindow | None  # the window calling or serving it
    called_at: datetime | None
    recalls: int  # a recall changes it: the phone alerts again
    served_at: TicketWindow | None  # the window that finished its transaction (what is rated)
    rated: bool


class TicketScreen:
    """One ticket's projection. ``times`` answers the engine's running service times (replaced
    when the engine rebuilds its state, so asked at each view)."""

    def __init__(self, config: HallConfig, ticket: str, times: Callable[[], ServiceTimes]) -> None:
        self.config, self.id, self.times = config, ticket, times
        self.hall = WindowHall(name=config.hall.name, name_en=config.hall.name_en)

    def view(self, state: HallState, now: datetime) -> TicketScreenView:
        ticket = state.tickets.get(self.id)
        if ticket is None:
            return self._gone()
        facts = ticket_facts(state, ticket, Estimator(self.times(), now))
        category = self.config.category(ticket.category)
        return TicketScreenView(
            hall=self.hall,
            id=ticket.id,
            number=ticket.number,
            category=ticket.category,
            category_name=category.name if category else ticket.category,
            category_name_en=category.name_en if category else ticket.category,
            state=ticket.state.value,
            ahead=facts.ahead,
            estimated_wait_minutes=facts.minutes,
            window=self._window(ticket.window),
            called_at=ticket.called_at,
            recalls=ticket.recalls,
            served_at=self._window(ticket.served_at),
            rated=ticket.rating is not None,
        )

    def changes(
        self,
        old: TicketScreenView,
        new: TicketScreenView,
        state: HallState,
        records: Sequence[Recorded],
        after: int | None = None,
    ) -> dict[str, Any]:
        return changed_fields(old, new)

    def _window(self, window_id: str | None) -> TicketWindow | None:
        if window_id is None:
            return None
        window = self.config.window(window_id)
        # A window retired from the config since goes by its id.
        names = (window.name, window.name_en) if window else (window_id, window_id)
        return TicketWindow(id=window_id, name=names[0], name_en=names[1])

    def _gone(self) -> TicketScreenView:
        number = self.id.partition("-")[2]
        prefix = number.rstrip("0123456789")
        category = next((c for c in self.config.categories if c.prefix == prefix), None)
        return TicketScreenView(
            hall=self.hall,
            id=self.id,
            number=number,
            category=category.id if category else None,
            category_name=category.name if category else "",
            category_name_en=category.name_en if category else "",
            state=GONE,
            ahead=0,
            estimated_wait_minutes=None,
            window=None,
            called_at=None,
            recalls=0,
            served_at=None,
            rated=False,
        )
