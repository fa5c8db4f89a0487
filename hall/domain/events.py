"""Everything that happens in a hall, as frozen tagged Structs: the journal stores these.

Schema evolution: a new field gets a default; an existing field never changes type or tag. When a
change cannot follow that rule, bump ``SCHEMA_VERSION`` and upcast older records on read.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import msgspec

SCHEMA_VERSION = 1


class Outcome(StrEnum):
    DONE = "done"  # 办结
    ACCEPTED = "accepted"  # 容缺受理: accepted, materials to follow
    RETURNED = "returned"  # 退回


class Requested(msgspec.Struct, frozen=True):
    """The idempotency key a client sent with the command that made an event, and a digest of
    that command: a retry with the key is answered from the journal, not done twice."""

    key: str
    digest: str


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=str.lower):
    at: datetime
    request: Requested | None = None  # None: no key was given (and on every older event)


class DayStarted(Event, frozen=True, tag="day_started"):
    """A new business day: numbering restarts; tickets left waiting or called from before expire."""

    day: date
    expired: tuple[str, ...] = ()


class TicketIssued(Event, frozen=True, tag="ticket_issued"):
    ticket: str
    number: str
    category: str
    seq: int
    day: date
    priority: str = "normal"
    appointment: datetime | None = None  # the appointment slot's start, if the visitor holds one
    # The secret printed on the ticket (in its QR code), by which the visitor may cancel it ("":
    # none). Kept here, never on a public view: a retried issue, or a reprint after a restart,
    # must print the same one.
    secret: str = ""
    # A keyed hash of the visitor's ID number when one was entered at the kiosk ("": none), so
    # a person holds one live ticket per category; the number itself is never kept.
    person: str = ""
    # The printer device that prints the ticket (the kiosk's), or None: nothing to print.
    printer: str | None = None


class TicketPrinted(Event, frozen=True, tag="ticket_printed"):
    """The printer's agent acknowledged the ticket as printed: it is not sent again."""

    ticket: str
    printer: str


class TicketRated(Event, frozen=True, tag="ticket_rated"):
    """好差评: the visitor's rating of a finished transaction, bound to the ticket (办件) and to
    the window and staff member who finished it. ``level`` 5 (非常满意) to 1 (非常不满意); None:
    the pad offered the rating and nobody gave one ("not rated", never a made-up level)."""

    ticket: str
    window: str
    staff: str  # never public
    level: int | None
    reasons: tuple[str, ...] = ()  # codes of the hall's rating reasons (the two lowest levels)
    comment: str | None = None  # the visitor's words; never public
    by: str = ""  # the pad's device id, or "visitor" (the phone); never public
    channel: str = "pad"  # "pad" or "phone"


class DeviceReported(Event, frozen=True, tag="device_reported"):
    """A device came online, went offline, or its hardware changed state (a printer out of
    paper): ``status`` is "online", "offline" or what the device reported."""

    device: str
    status: str


class TicketCalled(Event, frozen=True, tag="ticket_called"):
    ticket: str
    window: str


class TicketRecalled(Event, frozen=True, tag="ticket_recalled"):
    ticket: str
    window: str
    count: int


class ServiceStarted(Event, frozen=True, tag="service_started"):
    ticket: str
    window: str


class ServiceFinished(Event, frozen=True, tag="service_finished"):
    ticket: str
    window: str
    outcome: Outcome


class TicketNoShow(Event, frozen=True, tag="ticket_no_show"):
    ticket: str
    window: str


class TicketTransferred(Event, frozen=True, tag="ticket_transferred"):
    """The ticket waits again, in ``category`` and, when given, for ``to_window`` only."""

    ticket: str
    window: str
    category: str
    to_window: str | None = None


class TicketCancelled(Event, frozen=True, tag="ticket_cancelled"):
    ticket: str
    reason: str  # a code of the hall's cancel_reasons (free text in events from before codes)
    note: str | None = None  # free text for staff; never public
    by: str | None = None  # staff username, device id or "visitor"; never public


class WindowOpened(Event, frozen=True, tag="window_opened"):
    window: str
    staff: str
    by: str | None = None  # the manager who opened it for the staff member; None: they did


class WindowPaused(Event, frozen=True, tag="window_paused"):
    window: str
    reason: str  # a code of the hall's pause_reasons (free text in events from before codes)
    note: str | None = None  # free text for staff; never public


class WindowResumed(Event, frozen=True, tag="window_resumed"):
    window: str


class WindowClosed(Event, frozen=True, tag="window_closed"):
    """The staff logged out, or a manager (``by``) closed the window: a ticket it still held
    waits again in its queue, in its place."""

    window: str
    staff: str
    by: str | None = None  # the manager who forced it; None when the staff logged out
    ticket: str | None = None  # a ticket the window still held (only when forced): it waits again
    note: str | None = None  # the manager's free text; never public


class ProfileChanged(Event, frozen=True, tag="profile_changed"):
    """A manager moved a window between categories (its work profile), effective at once."""

    window: str
    categories: tuple[str, ...]
    by: str


class PasswordChanged(Event, frozen=True, tag="password_changed"):
    """A staff member's new argon2 hash; it replaces the config's (never public)."""

    staff: str
    password_hash: str


class NoticePosted(Event, frozen=True, tag="notice_posted"):
    """A manager's scrolling notice for the hall screen, in both languages; both empty: back to
    the hall file's own notice."""

    text: str
    text_en: str
    by: str  # the manager; never public


class BreachRecorded(Event, frozen=True, tag="breach_recorded"):
    """A discipline rule was broken (hall/oversight/watcher.py found it): once per breach, with
    the versions of the events that show it. ``measured`` and ``limit`` are in the rule's unit
    (minutes, seconds or a count: see ``RULES`` in hall/domain/oversight.py)."""

    breach: str  # "<rule>:<window>:<version or day>": what makes it one breach, not two
    rule: str
    window: str
    staff: str | None  # the staff member on duty at the window; never public
    since: datetime  # when the breach began (a pause's start, the first idle moment...)
    measured: float
    limit: float
    evidence: tuple[int, ...] = ()


class BreachExcused(Event, frozen=True, tag="breach_excused"):
    """A manager excused a breach (it stays recorded; the assessment no longer counts it)."""

    breach: str
    reason: str
    by: str


class CaseStepped(Event, frozen=True, tag="case_stepped"):
    """A step of a bad rating's follow-up (差评整改), by a manager. ``case`` is the rated ticket's
    id. ``step``: "verify" (核实: ``valid``), "confirm" (a second manager's verdict on a case
    found not valid), "rectify" (整改: ``text`` says what was done), "revisit" (回访:
    ``result``, a code of the hall's revisit results) or "close"."""

    case: str
    step: str
    by: str  # never public
    valid: bool | None = None
    result: str | None = None
    text: str = ""  # never public


class AlertAcknowledged(Event, frozen=True, tag="alert_acknowledged"):
    """A manager saw an alert of the live view; it stays acknowledged until it ends."""

    alert: str
    by: str


AnyEvent = (
    DayStarted
    | TicketIssued
    | TicketCalled
    | TicketRecalled
    | ServiceStarted
    | ServiceFinished
    | TicketNoShow
    | TicketTransferred
    | TicketCancelled
    | WindowOpened
    | WindowPaused
    | WindowResumed
    | WindowClosed
    | ProfileChanged
    | PasswordChanged
    | NoticePosted
    | TicketPrinted
    | TicketRated
    | DeviceReported
    | BreachRecorded
    | BreachExcused
    | CaseStepped
    | AlertAcknowledged
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


def encode(event: AnyEvent) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> AnyEvent:
    return _decoder.decode(data)
