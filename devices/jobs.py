"""The jobs the hall gives its devices, made from the hall's state: a ``Print`` per ticket for a
printer (made as it is sent, so its place and wait are current), a ``Play`` per call or recall for
a speaker. Pure: the device endpoint (devices/endpoint.py) reads the state and sends them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final

import msgspec

from devices.printing.ticket import PrintTicket
from devices.protocol import MAX_FRAME, Play, Print, encode
from hall.domain.events import TicketCalled, TicketIssued, TicketRecalled
from hall.domain.state import HallState
from hall.journal.base import Recorded
from hall.views import Estimator, notice, ticket_facts

RECENT_CALLS: Final = timedelta(seconds=60)  # a speaker that (re)connects still says these

# What may be cut to make a print job fit one frame, most expendable first (the url never: a
# ticket without its phone page is worth less than one with a shorter notice).
_CUTTABLE: Final = (
    "notice_en",
    "notice",
    "hall_name_en",
    "category_name_en",
    "hall_name",
    "category_name",
    "priority_name",
)
_ELLIPSIS: Final = "…"
# More than a ticket has room for (a line of 80 mm paper holds 24 Chinese characters): a name
# longer than this is cut to it first, so one long name does not crowd out the rest.
NAME_CHARS: Final = 80
NOTICE_CHARS: Final = 400


def print_job(
    state: HallState, ticket_id: str, printer: str, estimator: Estimator, base_url: str
) -> Print | None:
    """The print job of a ticket ``printer`` has yet to print (None: it has not, any more): its
    id is the ticket's; ``base_url`` is where visitors' phones reach the hall (config
    ``hall.public_url``, else the address the printer's agent used)."""
    if ticket_id not in state.printing.get(printer, ()):
        return None  # acked meanwhile, or of a day gone by
    config = state.config
    ticket = state.tickets[ticket_id]
    facts = ticket_facts(state, ticket, estimator)
    category = config.category(ticket.category)
    # A category retired from the config since the ticket was issued goes by its id.
    names = (category.name, category.name_en) if category else (ticket.category, ticket.category)
    priority = next((p.name for p in config.priorities if p.id == ticket.priority), None)
    fragment = f"#s={ticket.secret}" if ticket.secret else ""
    text, text_en = notice(state)
    job = Print(
        id=ticket.id,
        ticket=PrintTicket(
            hall_name=_cut(config.hall.name, NAME_CHARS),
            hall_name_en=_cut(config.hall.name_en, NAME_CHARS),
            number=ticket.number,
            category_name=_cut(names[0], NAME_CHARS),
            category_name_en=_cut(names[1], NAME_CHARS),
            priority_name=None if priority is None else _cut(priority, NAME_CHARS),
            ahead=facts.ahead,
            wait_minutes=facts.minutes,
            issued_at=ticket.issued_at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M"),
            url=f"{base_url}/phone/{config.hall.id}/{ticket.id}{fragment}",
            notice=_cut(text, NOTICE_CHARS),
            notice_en=_cut(text_en, NOTICE_CHARS),
        ),
    )
    return fit(job)


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + _ELLIPSIS


def fit(job: Print) -> Print:
    """``job`` cut to fit one frame of the link (4 KiB): the longest of its names and notices
    loses what is too much (and ends in "…"), as often as needed."""
    while (excess := len(encode(job).encode()) - MAX_FRAME) > 0:
        ticket = job.ticket
        texts = [(name, getattr(ticket, name) or "") for name in _CUTTABLE]
        name, text = max(texts, key=lambda item: len(item[1].encode()))
        if not text:
            raise ValueError(f"print job {job.id}: its url alone is over {MAX_FRAME} bytes")
        # A character's JSON is at least as long as its UTF-8: cutting ``excess`` bytes of UTF-8
        # (and room for the ellipsis) cuts at least that much of the frame.
        data = text.encode()
        keep = max(0, len(data) - excess - len(_ELLIPSIS.encode()))
        cut = data[:keep].decode(errors="ignore")
        shorter = cut + _ELLIPSIS if cut else ""
        job = msgspec.structs.replace(
            job, ticket=msgspec.structs.replace(ticket, **{name: shorter})
        )
    return job


def issued_for(records: Sequence[Recorded], printer: str) -> list[str]:
    """The tickets issued in a batch for ``printer`` to print."""
    return [
        record.event.ticket
        for record in records
        if isinstance(record.event, TicketIssued) and record.event.printer == printer
    ]


def play_job(hall: str, version: int, number: str, window: str) -> Play:
    return Play(
        id=f"call-{version}",
        url=f"/api/halls/{hall}/announcements/{number}/{window}.wav",
        number=number,
        window=window,
    )


def recent_plays(state: HallState, now: datetime, played: Iterable[str] = ()) -> list[Play]:
    """The calls of the last minute, oldest first, but those in ``played`` (job ids)."""
    done = set(played)
    hall = state.config.hall.id
    jobs = [
        play_job(hall, call.version, call.number, call.window)
        for call in state.calls
        if now - call.at <= RECENT_CALLS
    ]
    return [job for job in jobs if job.id not in done]


def new_plays(state: HallState, records: Sequence[Recorded]) -> list[Play]:
    """The calls and recalls of a batch, in order."""
    hall = state.config.hall.id
    kept = {call.version: call for call in state.calls}
    jobs = []
    for record in records:
        event = record.event
        if not isinstance(event, TicketCalled | TicketRecalled):
            continue
        call = kept.get(record.version)
        # The number the ticket had when called (the calls list keeps it; a later batch may
        # have pushed it out of the list, then the ticket's own).
        number = call.number if call else state.tickets[event.ticket].number
        jobs.append(play_job(hall, record.version, number, event.window))
    return jobs
