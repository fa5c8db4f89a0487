"""Checkpoints: a hall's live state, encoded, so start-up and recovery replay only what follows.

The journal stays the only truth: a checkpoint is a cache of the fold of its first ``version``
events. It holds the state (the day's tickets, the queues, the windows), the running service
times, a fingerprint of the parts of the hall config the fold reads, and a digest of the event at
``version``. :func:`restore` answers None for anything it cannot trust (another format, another
config, bytes that do not decode), and the caller replays from the start: a checkpoint can make
start-up slow once, never wrong and never fatal. The digest lets the caller check the journal
still holds the event the checkpoint ended on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import date

import msgspec

from hall.config import HallConfig
from hall.domain.events import AnyEvent
from hall.domain.oversight import Breach, Case
from hall.domain.state import Answered, Called, DeviceHealth, HallState, Ticket, WindowStatus
from scheduling.estimate import ServiceTimes

log = logging.getLogger(__name__)

FORMAT = 4  # bump when the state's shape changes: older checkpoints are then ignored


class _Checkpoint(msgspec.Struct, frozen=True, array_like=True):
    format: int
    fingerprint: str
    version: int
    digest: str  # of the event at ``version`` ("" at version 0)
    day: date | None
    ids: list[str]  # the tickets' ids, so a recovery decodes only the tickets it must
    tickets: list[Ticket]  # in the state's order, which decides the order of a day's expiries
    queues: dict[str, list[str]]
    windows: list[WindowStatus]
    sequences: dict[str, int]
    staff_at: dict[str, str]
    means: dict[str, float]
    counts: dict[str, int]
    answered: dict[str, Answered] = {}  # today's idempotency keys: a retry is answered after it
    passwords: dict[str, str] = {}  # changed passwords' hashes, which outlive days
    notice: tuple[str, str] | None = None  # the hall screen's notice a manager posted
    calls: list[Called] = []  # the day's last calls, for hall screens
    printing: dict[str, list[str]] = {}  # tickets each printer has yet to print
    devices: dict[str, DeviceHealth] = {}  # each device's last reported status
    cases: list[Case] = []  # open follow-up cases of bad ratings
    breaches: list[Breach] = []  # discipline breaches kept in the state
    acknowledged: dict[str, str] = {}  # today's acknowledged alerts
    day_version: int = 0  # of today's DayStarted (0: not known, in older checkpoints)


@dataclass(frozen=True, slots=True)
class Restored:
    state: HallState
    times: ServiceTimes
    digest: str


def fingerprint(config: HallConfig) -> str:
    """What the fold reads from the config: the windows, their profiles, the categories and
    their service-time priors. Staff, devices, names and hours may change without a replay."""
    parts = (
        FORMAT,
        [(c.id, c.mean_service_minutes) for c in config.categories],
        [(w.id, w.categories) for w in config.windows],
    )
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


def digest(event: AnyEvent | None) -> str:
    """Of the event a checkpoint ends on, to check the journal still holds it: its kind and its
    time to the microsecond. Not its encoding, which a new field with a default (schema
    evolution) changes: every upgrade would then replay years of history once."""
    if event is None:
        return ""
    kind = event.__struct_config__.tag
    return hashlib.sha256(f"{kind}|{event.at.isoformat()}".encode()).hexdigest()


def encode(
    state: HallState,
    times: ServiceTimes,
    last: AnyEvent | None,
    cache: dict[str, msgspec.Raw] | None = None,
    touched: Container[str] = (),
) -> bytes:
    """The checkpoint of ``state`` (whose last event is ``last``) and ``times``.

    ``cache``: each ticket's encoding from an earlier call, reused for every ticket not in
    ``touched`` (no event named it since): a day's finished tickets are encoded once, not at
    every checkpoint. The caller owns the cache and must name every ticket an event changed.
    """
    tickets: list[msgspec.Raw] = []
    for ticket_id, ticket in state.tickets.items():
        raw = cache.get(ticket_id) if cache is not None and ticket_id not in touched else None
        if raw is None:
            raw = msgspec.Raw(_ENCODER.encode(ticket))
            if cache is not None:
                cache[ticket_id] = raw
        tickets.append(raw)
    if cache is not None and len(cache) > len(tickets):  # a day turned: forget yesterday's
        for gone in cache.keys() - state.tickets.keys():
            del cache[gone]
    return _ENCODER.encode(
        _Lazy(
            format=FORMAT,
            fingerprint=fingerprint(state.config),
            version=state.version,
            digest=digest(last),
            day=state.day,
            ids=list(state.tickets),
            tickets=tickets,
            queues=state.queues,
            windows=list(state.windows.values()),
            sequences=state.sequences,
            staff_at=state.staff_at,
            means=times.means,
            counts=times.counts,
            answered=state.answered,
            passwords=state.passwords,
            notice=state.notice,
            calls=state.calls,
            printing=state.printing,
            devices=state.devices,
            cases=list(state.cases.values()),
            breaches=list(state.breaches.values()),
            acknowledged=state.acknowledged,
            day_version=state.day_version,
        )
    )


_ENCODER = msgspec.json.Encoder()


class _Lazy(_Checkpoint, frozen=True, array_like=True):
    tickets: list[msgspec.Raw]  # type: ignore[assignment]  # decoded one by one, when needed


_DECODER = msgspec.json.Decoder(_Lazy)
_TICKET = msgspec.json.Decoder(Ticket)


def restore(
    blob: bytes,
    config: HallConfig,
    current: Mapping[str, Ticket] | None = None,
    touched: Container[str] = (),
) -> Restored | None:
    """The state and times a checkpoint holds, under ``config``; None if it cannot be used.

    ``current``: the tickets of a state that went on from this checkpoint, ``touched``: the ids
    of every ticket an event applied since named. A ticket no event named is the same object
    then and now, so it is taken from ``current`` instead of decoded (a recovery after a failed
    append decodes a few tickets, not the day's thousands).
    """
    try:
        found = _DECODER.decode(blob)
        tickets = [
            current[i]
            if current is not None and i in current and i not in touched
            else _TICKET.decode(raw)
            for i, raw in zip(found.ids, found.tickets, strict=True)
        ]
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        log.warning("hall %s: checkpoint ignored, it does not decode: %s", config.hall.id, exc)
        return None
    if found.format != FORMAT or found.fingerprint != fingerprint(config):
        log.info("hall %s: checkpoint of another config or format; replaying", config.hall.id)
        return None
    try:
        return _restore(found, tickets, config)
    except KeyError as exc:  # queues naming tickets it does not hold: not a state we wrote
        log.warning("hall %s: checkpoint ignored, inconsistent: %r", config.hall.id, exc)
        return None


def _restore(found: _Lazy, tickets: list[Ticket], config: HallConfig) -> Restored:
    state = HallState(
        config=config,
        version=found.version,
        day=found.day,
        day_version=found.day_version,
        tickets={t.id: t for t in tickets},
        queues=found.queues,
        windows={w.id: w for w in found.windows},
        sequences=found.sequences,
        staff_at=found.staff_at,
        answered=found.answered,
        passwords=found.passwords,
        notice=found.notice,
        calls=found.calls,
        printing=found.printing,
        devices=found.devices,
        cases={c.id: c for c in found.cases},
        breaches={b.id: b for b in found.breaches},
        acknowledged=found.acknowledged,
    )
    for queue, ids in found.queues.items():
        lanes = state.lanes.setdefault(queue, {})
        for ticket_id in ids:
            lanes.setdefault(state.tickets[ticket_id].priority, []).append(ticket_id)
    times = ServiceTimes.from_config(config)
    times.means, times.counts = found.means, found.counts
    return Restored(state, times, found.digest)
