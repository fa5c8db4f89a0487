"""What the screens show: view models projected from the hall state, and the changes between two.

Pure: no I/O, no clock (``now`` is an argument). A projection is built once per screen kind (the
hall screen; one window's screen) and asked, after each durable batch, for the view of the state
the batch left and for the changes from the view before it. The views carry no personal data:
numbers, windows and categories; a staff member only as the hall configures
(``screens.window.staff_name``: masked by default), never by username.

Hall screen delta ``changes``: ``calls`` the batch's new calls, oldest first (every call and
recall, two in the same second included; after a gap, those since the old view's version too);
``queues``, ``zones``, ``windows`` the changed items only (replace by ``id``); ``notice`` and
``day`` whole when changed. A new ``day`` starts an empty list of calls. Window screen delta
``changes``: the top-level keys that changed, whole. A window view's ``rating`` is the
transaction its pad may offer to rate (the one it finished last, while unrated).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

import msgspec

from hall.config import HallConfig
from hall.domain.events import DayStarted, TicketCalled, TicketRecalled
from hall.domain.state import Called, HallState, TicketState, WindowState
from hall.journal.base import Recorded
from hall.views import next_numbers, notice, public_reason


class _View(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the view Structs: immutable, compared by value to find what changed."""


# -- the hall screen (综合屏) --------------------------------------------------------------------


class HallInfo(_View, frozen=True):
    id: str
    name: str
    name_en: str
    title: str
    title_en: str


class Call(_View, frozen=True):
    version: int  # of the call's event: two calls never share one
    number: str
    window: str
    window_name: str
    window_name_en: str
    category_name: str
    category_name_en: str
    at: datetime
    recall: bool
    audio: str  # the announcement's WAV, on this server


class QueueItem(_View, frozen=True):
    id: str  # the category
    prefix: str
    name: str
    name_en: str
    zone: str
    waiting: int
    next: list[str]  # the next numbers, in the order windows will call them


class ZoneItem(_View, frozen=True):
    id: str
    name: str
    name_en: str
    waiting: int


class WindowItem(_View, frozen=True):
    id: str
    name: str
    name_en: str
    state: str
    number: str | None  # being called or served


class Notice(_View, frozen=True):
    text: str
    text_en: str


class HallView(_View, frozen=True):
    hall: HallInfo
    day: date | None
    calls: list[Call]  # newest first
    queues: list[QueueItem]
    zones: list[ZoneItem]
    windows: list[WindowItem]
    notice: Notice
    highlight_seconds: float


# -- a window screen (窗口屏) --------------------------------------------------------------------


class WindowHall(_View, frozen=True):
    name: str
    name_en: str


class WindowInfo(_View, frozen=True):
    id: str
    name: str
    name_en: str
    zone: str


class OnDuty(_View, frozen=True):
    name: str | None  # as screens.window.staff_name says (masked: 张*伟); None when hidden
    staff_no: str | None


class AtWindow(_View, frozen=True):
    number: str
    category_name: str
    category_name_en: str
    state: str  # called or serving
    since: datetime | None


class PauseReason(_View, frozen=True):
    code: str
    name: str
    name_en: str


class RatingDue(_View, frozen=True):
    """The transaction the window finished last, while neither rated nor recorded as not rated:
    what its evaluation pad offers to rate (within ``[rating] pad_seconds`` of ``finished_at``)."""

    ticket: str  # the ticket's id (the day and the number: public, like the number)
    number: str
    finished_at: datetime


class WindowView(_View, frozen=True):
    hall: WindowHall
    window: WindowInfo
    state: str
    staff: OnDuty | None  # None: nobody on duty
    ticket: AtWindow | None
    pause_reason: PauseReason | None
    rating: RatingDue | None = None


V = TypeVar("V", bound=_View)


class Projection(Protocol[V]):
    """One screen kind's projection: the view of a state, and what changed between two views."""

    def view(self, state: HallState, now: datetime) -> V: ...

    def changes(
        self,
        old: V,
        new: V,
        state: HallState,
        records: Sequence[Recorded],
        after: int | None = None,
    ) -> dict[str, Any]: ...


def changed_fields(old: msgspec.Struct, new: msgspec.Struct) -> dict[str, Any]:
    """The top-level fields of ``new`` that differ from ``old``, whole (a one-object view's
    delta: a window screen's, a ticket's)."""
    return {
        key: value
        for key, value, before in zip(
            old.__struct_fields__,
            msgspec.structs.astuple(new),
            msgspec.structs.astuple(old),
            strict=True,
        )
        if value != before
    }


def mask(name: str, style: str) -> str | None:
    """A staff member's name on a public screen: "masked" keeps the family name and the last
    character (张*伟; 张* for two characters), "full" all of it, "hidden" nothing."""
    if style == "full":
        return name
    if style == "hidden":
        return None
    name = name.strip()
    return name[:1] + "*" if len(name) <= 2 else f"{name[0]}*{name[-1]}"


class HallScreen:
    """The hall screen's projection: the last calls, queues and zones, windows, the notice."""

    def __init__(self, config: HallConfig) -> None:
        self.config = config
        screen = config.screens.hall
        self.shown_zones = screen.zones or tuple(z.id for z in config.zones)
        shown = set(self.shown_zones)
        self.categories = [c for c in config.categories if c.zone in shown]
        self.windows = [w for w in config.windows if w.zone in shown]
        self.zones = [z for zone in self.shown_zones for z in config.zones if z.id == zone]
        self.info = HallInfo(
            id=config.hall.id,
            name=config.hall.name,
            name_en=config.hall.name_en,
            title=screen.title or config.hall.name,
            title_en=screen.title_en or config.hall.name_en,
        )

    def view(self, state: HallState, now: datetime) -> HallView:
        screen = self.config.screens.hall
        waiting = {c.id: len(state.queues.get(c.id, ())) for c in self.categories}
        text, text_en = notice(state)
        return HallView(
            hall=self.info,
            day=state.day,
            calls=[self._call(c) for c in reversed(state.calls[-screen.calls :])],
            queues=[
                QueueItem(
                    id=c.id,
                    prefix=c.prefix,
                    name=c.name,
                    name_en=c.name_en,
                    zone=c.zone,
                    waiting=waiting[c.id],
                    next=(
                        next_numbers(state, c.id, now)[: screen.next_numbers]
                        if waiting[c.id] and screen.next_numbers
                        else []
                    ),
                )
                for c in self.categories
            ],
            zones=[
                ZoneItem(
                    id=z.id,
                    name=z.name,
                    name_en=z.name_en,
                    waiting=sum(waiting[c.id] for c in self.categories if c.zone == z.id),
                )
                for z in self.zones
            ],
            windows=[
                WindowItem(
                    id=w.id,
                    name=w.name,
                    name_en=w.name_en,
                    state=state.windows[w.id].state.value,
                    number=_number(state, state.windows[w.id].ticket),
                )
                for w in self.windows
            ],
            notice=Notice(text=text, text_en=text_en),
            highlight_seconds=screen.highlight_seconds,
        )

    def changes(
        self,
        old: HallView,
        new: HallView,
        state: HallState,
        records: Sequence[Recorded],
        after: int | None = None,
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        calls = self.calls(state, records, after)
        if calls:
            found["calls"] = calls
        for key in ("queues", "zones", "windows"):
            changed = [
                b for a, b in zip(getattr(old, key), getattr(new, key), strict=True) if a != b
            ]
            if changed:
                found[key] = changed
        if old.notice != new.notice:
            found["notice"] = new.notice
        if old.day != new.day:
            found["day"] = new.day
        return found

    def calls(
        self, state: HallState, records: Sequence[Recorded], after: int | None = None
    ) -> list[Call]:
        """Every call and recall since version ``after`` (by default: of the batch), oldest
        first (after the batch's new day, if any).

        ``after`` below the batch is a gap: events that became durable without being published
        (the engine replayed them after a journal outage: a call that answered 503 but landed).
        Those calls come from the day's last calls the state keeps, with their versions."""
        kept = {c.version: c for c in state.calls}
        first = records[0].version if records else state.version + 1
        found = [
            self._call(c) for c in state.calls if after is not None and after < c.version < first
        ]
        for record in records:
            event = record.event
            if isinstance(event, DayStarted):
                found.clear()  # yesterday's: the new day's list starts empty
            elif isinstance(event, TicketCalled | TicketRecalled):
                called = kept.get(record.version) or _called(state, record.version, event)
                if called is not None:
                    found.append(self._call(called))
        return found

    def _call(self, called: Called) -> Call:
        window = self.config.window(called.window)
        category = self.config.category(called.category)
        return Call(
            version=called.version,
            number=called.number,
            window=called.window,
            # A window or category retired from the config since goes by its id.
            window_name=window.name if window else called.window,
            window_name_en=window.name_en if window else called.window,
            category_name=category.name if category else called.category,
            category_name_en=category.name_en if category else called.category,
            at=called.at,
            recall=called.recall,
            audio=f"/api/halls/{self.config.hall.id}/announcements/{called.number}/{called.window}.wav",
        )


class WindowScreen:
    """One window's screen: who is on duty (as the hall names them), the ticket, the state."""

    def __init__(self, config: HallConfig, window: str) -> None:
        defined = config.window(window)
        if defined is None:
            raise KeyError(window)
        self.config, self.id = config, window
        self.hall = WindowHall(name=config.hall.name, name_en=config.hall.name_en)
        self.info = WindowInfo(
            id=defined.id, name=defined.name, name_en=defined.name_en, zone=defined.zone
        )

    def view(self, state: HallState, now: datetime) -> WindowView:
        window = state.windows[self.id]
        reason = None
        if window.state is WindowState.PAUSED:
            found = public_reason(self.config.pause_reasons, window.pause_reason)
            if found is not None:
                reason = PauseReason(code=found.code, name=found.name, name_en=found.name_en)
        return WindowView(
            hall=self.hall,
            window=self.info,
            state=window.state.value,
            staff=self._staff(window.staff),
            ticket=self._ticket(state, window.ticket),
            pause_reason=reason,
            rating=_rating_due(state, window.served),
        )

    def changes(
        self,
        old: WindowView,
        new: WindowView,
        state: HallState,
        records: Sequence[Recorded],
        after: int | None = None,
    ) -> dict[str, Any]:
        return changed_fields(old, new)

    def _staff(self, username: str | None) -> OnDuty | None:
        if username is None:
            return None
        member = self.config.staff_member(username)
        if member is None:  # no longer in the hall file: someone is there, nameless
            return OnDuty(name=None, staff_no=None)
        style = self.config.screens.window.staff_name
        return OnDuty(name=mask(member.name, style), staff_no=member.staff_no)

    def _ticket(self, state: HallState, ticket_id: str | None) -> AtWindow | None:
        ticket = state.tickets.get(ticket_id) if ticket_id else None
        if ticket is None:
            return None
        category = self.config.category(ticket.category)
        serving = ticket.state is TicketState.SERVING
        return AtWindow(
            number=ticket.number,
            category_name=category.name if category else ticket.category,
            category_name_en=category.name_en if category else ticket.category,
            state=ticket.state.value,
            since=ticket.started_at if serving else ticket.called_at,
        )


def _rating_due(state: HallState, ticket_id: str | None) -> RatingDue | None:
    ticket = state.tickets.get(ticket_id) if ticket_id else None
    if ticket is None or ticket.finished_at is None:
        return None
    if ticket.rating is not None or ticket.not_rated:  # one rating (or "not rated") each
        return None
    return RatingDue(ticket=ticket.id, number=ticket.number, finished_at=ticket.finished_at)


def _number(state: HallState, ticket_id: str | None) -> str | None:
    ticket = state.tickets.get(ticket_id) if ticket_id else None
    return ticket.number if ticket else None


def _called(state: HallState, version: int, event: TicketCalled | TicketRecalled) -> Called | None:
    """A call the state no longer keeps (a batch of more calls than it keeps), from its ticket."""
    ticket = state.tickets.get(event.ticket)
    if ticket is None:
        return None
    recall = isinstance(event, TicketRecalled)
    return Called(
        version, ticket.id, ticket.number, ticket.category, event.window, event.at, recall
    )
