"""How fast tickets are arriving now, per category and priority class, read from the hall state.

A forecast that runs the calling policy forward must add the tickets that will arrive meanwhile:
under any policy that lets a later ticket pass (a priority class, a category the policy favours),
leaving them out makes every wait look shorter than it will be. The rate is read from today's
tickets in the state (every ticket issued today stays there until the next day starts, in issue
order), so it needs no running estimate of its own and is the same wherever the state is: the
engine, a checkpoint restored, the simulator.

The estimate is an exponentially weighted count: a ticket issued ``a`` seconds ago counts
``exp(-a / TAU)``, divided by the weight a rate of one per second would have had. With ``TAU`` a
quarter of an hour it follows a surge within about that long (a filing deadline's rush is what
makes a forecast go wrong) and forgets it as fast. Tickets more than ``READ`` ago weigh under 5%
and are not read; the time before the day's first ticket counts as observed with nobody coming,
so the crowd at the door when the hall opens reads as a burst, not a rate the morning keeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hall.domain.state import HallState

TAU = 15 * 60.0  # seconds: the memory of the weighting
READ = 3 * TAU  # older tickets weigh under 5% and are not read
EXPOSURE = TAU * (1 - math.exp(-READ / TAU))  # what a rate of one per second weighs


def arrival_rates(state: HallState, now: datetime) -> Mapping[tuple[str, str], float]:
    """Arrivals per second now, per (category, priority class), from today's tickets; classes
    with no recent ticket are left out."""
    now_s = now.timestamp()
    counts: dict[tuple[str, str], float] = {}
    for ticket in reversed(state.tickets.values()):  # issue order: newest first
        age = now_s - ticket.issued_at.timestamp()
        if age > READ or (state.day is not None and ticket.day != state.day):
            break  # older, or an earlier day's still open: today's recent ones were all read
        if age >= 0:  # (issued after ``now`` when a view asks about the past: not arrived yet)
            key = (ticket.category, ticket.priority)
            counts[key] = counts.get(key, 0.0) + math.exp(-age / TAU)
    return {key: weight / EXPOSURE for key, weight in counts.items()}
