"""How fast tickets are arriving now, per category and priority class, read from the hall state.

A forecast that runs the calling policy forward must add the tickets that will arrive meanwhile:
under any policy that lets a later ticket pass (a priority class, a category the policy favours),
leaving them out makes every wait look shorter than it will be. The rate is read from today's
tickets in the state (every ticket issued today stays there until the next day starts, in issue
order), so it needs no running estimate of its own and is the same wherever the state is: the
engine, a checkpoint restored, the simulator.

The estimate is an exponentially weighted count: a ticket issued ``a`` seconds ago counts
``exp(-a / TAU)``, divided by the weight an arrival rate of one per second would have had over
the time observed. With ``TAU`` a quarter of an hour it follows a surge within about that long
(a filing deadline's rush is what makes a forecast go wrong) and forgets it as fast. The time
observed is from the day's first ticket, and at least ``MIN_SPAN``: the crowd at the door when
the hall opens is a burst, not a rate the rest of the morning keeps. Tickets more than ``3 TAU``
old weigh under 5% and are not read.
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
MIN_SPAN = 30 * 60.0  # seconds observed at least


def arrival_rates(state: HallState, now: datetime) -> Mapping[tuple[str, str], float]:
    """Arrivals per second now, per (category, priority class), from today's tickets; classes
    with no recent ticket are left out."""
    now_s = now.timestamp()
    counts: dict[tuple[str, str], float] = {}
    first = now_s
    for ticket in reversed(state.tickets.values()):  # issue order: newest first
        issued = ticket.issued_at.timestamp()
        age = now_s - issued
        if state.day is not None and ticket.day != state.day:
            break  # an earlier day's ticket still open: today's were all read
        if age > READ:
            first = now_s - READ  # older tickets exist: the whole span was observed
            break
        first = min(first, issued)
        if age < 0:
            continue  # issued after ``now`` (a view asked about the past): not yet arrived
        key = (ticket.category, ticket.priority)
        counts[key] = counts.get(key, 0.0) + math.exp(-age / TAU)
    span = max(now_s - first, MIN_SPAN)
    exposure = TAU * (1 - math.exp(-span / TAU))
    return {key: weight / exposure for key, weight in counts.items()}
