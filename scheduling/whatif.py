"""What if a window opened, or served other categories: each affected category's expected longest
wait now and after the change ("open window 7 for 不动产: longest wait 38 → 14 min").

Pure. The change is applied to a copy of the state (:func:`hypothetical`: the windows and who is
where are copied, the tickets and queues shared and never written), and both states are read with
the wait estimates of :mod:`scheduling.estimate`. A category's expected longest wait is the most,
over its waiting tickets, of the minutes each has waited so far plus its estimated wait from now:
0 with nobody waiting (whatever a ticket taken now would wait: that is not a wait anyone has), None
when people wait and no open window serves them.

The estimator pools: a ticket counts every ticket ahead of it in every category its windows serve,
shared among the windows that serve each. So a window that opens, or takes on another category,
also brings its other queues into the count, and the raw figure after the change can be higher
than before although nothing was taken from the category. It cannot really be: the other windows
go on as they did and one more may call it. So when a change only adds service to a category
(the window opens serving it, or it stays in or joins the window's profile with nothing new put
ahead of it), its figure after is at most its figure before; only a window that stops serving it,
or now serves others ahead of it, can make it worse (:func:`adds_only`).

A long queue is read at ``SAMPLED`` evenly spaced places, its head and its tail among them (the
longest is nearly always at one end: the head has waited longest, the tail has longest to go), so
that a suggestion, which tries every window, costs milliseconds rather than seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hall.domain.events import ProfileChanged, WindowOpened
from hall.domain.state import HallState, WindowState, apply
from scheduling.estimate import ServiceTimes, estimate_wait

if TYPE_CHECKING:
    from hall.domain.events import AnyEvent

SAMPLED = 24
WHAT_IF = "(what-if)"  # the staff member of a hypothetical opening: nobody


@dataclass(frozen=True, slots=True)
class Effect:
    """One category's expected longest wait (minutes) before and after a change."""

    category: str
    before: float | None
    after: float | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A change that would cut ``category``'s expected longest wait: open ``window`` (closed now)
    or have it serve ``categories`` (its profile, the category first)."""

    window: str
    open: bool
    categories: tuple[str, ...]
    category: str
    before: float | None
    after: float | None


def hypothetical(
    state: HallState, window: str, categories: tuple[str, ...] | None, open_it: bool, now: datetime
) -> HallState:
    """A copy of ``state`` with ``window`` opened (by nobody) and/or given ``categories``; the
    original is untouched."""
    copy = dataclasses.replace(
        state,
        windows={k: dataclasses.replace(w) for k, w in state.windows.items()},
        staff_at=dict(state.staff_at),
    )
    events: list[AnyEvent] = []
    if open_it:
        events.append(WindowOpened(at=now, window=window, staff=WHAT_IF))
    if categories is not None:
        events.append(ProfileChanged(at=now, window=window, categories=categories, by=WHAT_IF))
    for event in events:
        apply(copy, event)
    return copy


def expected_longest(
    state: HallState, category: str, now: datetime, times: ServiceTimes
) -> float | None:
    """The category's expected longest wait in minutes (see the module); None: nobody serves it."""
    queue = state.queues.get(category) or []
    if not queue:
        return 0.0  # nobody waits: no one's wait can grow
    if len(queue) > SAMPLED:
        step = (len(queue) - 1) / (SAMPLED - 1)
        picked = [queue[round(i * step)] for i in range(SAMPLED)]
    else:
        picked = list(queue)
    longest = 0.0
    for ticket_id in picked:
        remaining = estimate_wait(state, ticket_id, now, times).minutes
        if remaining is None:
            return None
        waited = (now - state.tickets[ticket_id].issued_at).total_seconds() / 60
        longest = max(longest, waited + remaining)
    return longest


def adds_only(
    state: HallState, window: str, categories: tuple[str, ...] | None, open_it: bool, category: str
) -> bool:
    """Whether the change only adds service to ``category``: the window ends up serving it, and
    either it was closed (and opens) or it was open and nothing was put ahead of the category in
    its profile that was not there before."""
    status = state.windows[window]
    after = categories if categories is not None else status.categories
    if category not in after:
        return False
    if status.state is WindowState.CLOSED:
        return open_it
    if category not in status.categories:
        return True  # an open window takes it on: whatever it puts first, it serves more
    ahead_before = set(status.categories[: status.categories.index(category)])
    return set(after[: after.index(category)]) <= ahead_before


def _after(before: float | None, after: float | None, only_adds: bool) -> float | None:
    """The figure after a change (see the module): never above ``before`` when it only adds."""
    if only_adds and before is not None and after is not None:
        return min(before, after)
    return after


def what_if(
    state: HallState,
    window: str,
    categories: tuple[str, ...] | None,
    open_it: bool,
    now: datetime,
    times: ServiceTimes,
) -> list[Effect]:
    """Each category the change touches (the window's profile before and after, in that order),
    with its expected longest wait before and after."""
    current = state.windows[window]
    after_state = hypothetical(state, window, categories, open_it, now)
    touched = [*current.categories, *(categories or ())]
    effects = []
    for c in dict.fromkeys(touched):
        before = expected_longest(state, c, now, times)
        after = expected_longest(after_state, c, now, times)
        only_adds = adds_only(state, window, categories, open_it, c)
        effects.append(Effect(c, before, _after(before, after, only_adds)))
    return effects


def worst(state: HallState, now: datetime, times: ServiceTimes) -> tuple[str, float | None] | None:
    """The category with people waiting whose expected longest wait is furthest over its target
    (one nobody serves first); None when nobody waits."""
    found: tuple[float, str, float | None] | None = None
    for category in state.config.categories:
        if not state.queues.get(category.id):
            continue
        longest = expected_longest(state, category.id, now, times)
        ratio = float("inf") if longest is None else longest / category.target_wait_minutes
        if found is None or ratio > found[0]:
            found = (ratio, category.id, longest)
    return None if found is None else (found[1], found[2])


def suggest(
    state: HallState, now: datetime, times: ServiceTimes, limit: int = 3
) -> list[Suggestion]:
    """For the worst category (:func:`worst`), the ``limit`` changes of one window that cut its
    expected longest wait most: a closed window that serves it opened, a closed one opened with
    it first, or an open one (idle or not) given it first in its profile."""
    found = worst(state, now, times)
    if found is None:
        return []
    category, before = found
    tried: list[tuple[tuple[float, bool, bool, int], Suggestion]] = []
    for order, status in enumerate(state.windows.values()):
        closed = status.state is WindowState.CLOSED
        if not closed and category in status.categories:
            continue  # it serves the category already
        profile = status.categories
        if category not in profile:
            profile = (category, *profile)
        after_state = hypothetical(
            state, status.id, None if profile == status.categories else profile, closed, now
        )
        after = expected_longest(after_state, category, now, times)  # it only adds service
        if after is None or (before is not None and after >= before):
            continue
        # Equal gains: a window that keeps its profile first, then a closed one (nobody's work
        # is taken away), then the hall file's order.
        changed = profile != status.categories
        rank = (round(after, 1), changed, not closed, order)
        tried.append((rank, Suggestion(status.id, closed, profile, category, before, after)))
    tried.sort(key=lambda pair: pair[0])
    return [suggestion for _, suggestion in tried[:limit]]
