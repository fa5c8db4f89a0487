"""Wait estimates for tickets: how many are ahead, and about how long until the call.

Two pure pieces. :class:`ServiceTimes` is a running estimate, per category, of how long a window
is held by one ticket (from the call to the finish or the no-show, so walking up and no-shows are
included); it starts from ``Category.mean_service_minutes`` and follows the hall's own data. The
owner feeds it the events it applies (:meth:`ServiceTimes.update`). :func:`estimate_wait` and
:func:`estimate_new` read the state and give a :class:`WaitEstimate`.

The model (M/M/c, read from the live state): the windows that can call the ticket are the open
ones whose profile holds its category (``c`` of them). Every waiting ticket that goes before it
(an earlier effective issue time, :mod:`scheduling.priority`) in a category those windows serve
counts for the share of its category's open windows that are among them: a ticket of a category
only they serve counts 1, one that as many other windows could take counts 1/2. With ``n`` such
tickets, ``i`` of the ``c`` windows idle and ``s`` the mean holding time of the tickets ahead, the
wait is ``(n - i + 1) s / c`` (0 if ``n < i``): exactly the M/M/c conditional mean wait under first
come first served. It ignores tickets that will arrive later and go first (priority tickets) and
the policy's own preferences; the simulator reports its error for each policy, which is what the
screens' wording ("about N minutes") must be judged by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from hall.domain.events import AnyEvent, ServiceFinished, TicketNoShow
from hall.domain.state import TicketState, WindowState, queue_key
from scheduling.priority import PriorityTable, count_before, effective_issue, priority_table
from scheduling.topology import topology

if TYPE_CHECKING:
    from hall.config import HallConfig
    from hall.domain.state import HallState


@dataclass(slots=True)
class ServiceTimes:
    """Running mean minutes a window is held per ticket, per category.

    The n-th observation moves the mean by ``max(1/(n+1), alpha)`` of its distance: the prior
    counts as one observation, the first few days' data take over quickly, and later the mean
    tracks drift (a new form, a slower clerk) with a memory of about ``1/alpha`` tickets.
    """

    prior: dict[str, float]
    alpha: float = 0.02
    means: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: HallConfig, alpha: float = 0.02) -> ServiceTimes:
        return cls({c.id: c.mean_service_minutes for c in config.categories}, alpha)

    def mean(self, category: str) -> float:
        """The current estimate, minutes (the prior, or 8, before any observation)."""
        return self.means.get(category) or self.prior.get(category, 8.0)

    def observe(self, category: str, minutes: float) -> None:
        n = self.counts.get(category, 0) + 1
        self.counts[category] = n
        current = self.mean(category)
        self.means[category] = current + (minutes - current) * max(1 / (n + 1), self.alpha)

    def update(self, state: HallState, event: AnyEvent) -> None:
        """Feed one event, after it was applied to ``state`` (the ticket keeps its call time)."""
        if isinstance(event, ServiceFinished | TicketNoShow):
            ticket = state.tickets.get(event.ticket)
            if ticket is not None and ticket.called_at is not None:
                minutes = (event.at - ticket.called_at).total_seconds() / 60
                self.observe(ticket.category, minutes)


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """``ahead``: tickets of its own queue to be called first as of now (what a ticket prints as
    前面还有 N 人); ``minutes``: the estimated wait, None when no open window can call it;
    ``windows``: open windows that can call it."""

    ahead: int
    minutes: float | None
    windows: int


def estimate_wait(
    state: HallState, ticket_id: str, now: datetime, times: ServiceTimes
) -> WaitEstimate:
    """The estimate for a waiting ticket (KeyError if unknown). See the module docstring."""
    ticket = state.tickets[ticket_id]
    table = priority_table(state.config)
    now_s = now.timestamp()
    return _estimate(
        state,
        table,
        times,
        category=ticket.category,
        window=ticket.target_window,
        key=effective_issue(table, ticket, now_s),
        now=now_s,
        exclude=ticket.id,
    )


def places_ahead(state: HallState, ticket_id: str, now: datetime) -> int:
    """How many tickets of a waiting ticket's own queue are to be called before it as of now
    (what a ticket prints as 前面还有 N 人); KeyError if unknown."""
    ticket = state.tickets[ticket_id]
    table = priority_table(state.config)
    now_s = now.timestamp()
    key = effective_issue(table, ticket, now_s)
    return _before(state, table, queue_key(ticket), key, now_s, ticket.id)


def estimate_new(
    state: HallState, category: str, priority: str, now: datetime, times: ServiceTimes
) -> WaitEstimate:
    """The estimate for a ticket not issued yet (a kiosk's "about N minutes" before printing)."""
    table = priority_table(state.config)
    now_s = now.timestamp()
    return _estimate(
        state,
        table,
        times,
        category=category,
        window=None,
        key=now_s - table.head_start.get(priority, 0.0) if priority not in table.slot else now_s,
        now=now_s,
        exclude=None,
    )


def _estimate(
    state: HallState,
    table: PriorityTable,
    times: ServiceTimes,
    *,
    category: str,
    window: str | None,
    key: float,
    now: float,
    exclude: str | None,
) -> WaitEstimate:
    windows = state.windows
    if window is not None:  # transferred to one window: only its own queue counts
        mine: tuple[str, ...] = (window,) if windows[window].state is not WindowState.CLOSED else ()
        queues = {f"@{window}": 1.0}
    else:
        layout = topology(state)
        mine = layout.serving.get(category, ())
        queues = dict(layout.shares(category))
        for queue in state.queues:  # tickets sent to one of these windows by name go first
            if queue.startswith("@") and queue[1:] in mine:
                queues[queue] = 1.0
    own_queue = f"@{window}" if window is not None else category
    # The place in its own queue stands even while no window that serves it is open.
    ahead = _before(state, table, own_queue, key, now, exclude)
    count = work = 0.0
    for queue, share in queues.items():
        if not state.queues.get(queue):
            continue
        # ``exclude`` (the ticket itself) waits in its own queue only: no need to look for it.
        n = ahead if queue == own_queue else count_before(state, table, queue, key, now)
        count += share * n
        work += share * n * times.mean(category if queue.startswith("@") else queue)
    servers = len(mine)
    if servers == 0:
        return WaitEstimate(ahead, None, 0)
    idle = sum(1 for w in mine if windows[w].state is WindowState.OPEN)
    if count < idle:
        return WaitEstimate(ahead, 0.0, servers)
    holding = work / count if count else _mean_holding(state, mine, times, category)
    return WaitEstimate(ahead, (count - idle + 1) * holding / servers, servers)


def _before(
    state: HallState, table: PriorityTable, queue: str, key: float, now: float, exclude: str | None
) -> int:
    """How many tickets of a queue count as issued before ``key`` (``exclude`` aside)."""
    if not state.queues.get(queue):
        return 0
    n = count_before(state, table, queue, key, now)
    excluded = state.tickets.get(exclude) if exclude is not None else None
    if (
        excluded is not None
        and excluded.state is TicketState.WAITING
        and queue_key(excluded) == queue
    ):
        n -= effective_issue(table, excluded, now) < key  # it cannot be ahead of itself
    return n


def _mean_holding(
    state: HallState, windows: tuple[str, ...], times: ServiceTimes, category: str
) -> float:
    """The holding time of the tickets the windows hold now (the category's own if none)."""
    held = [
        state.tickets[t].category
        for w in windows
        if (t := state.windows[w].ticket) is not None and t in state.tickets
    ]
    if not held:
        return times.mean(category)
    return sum(times.mean(c) for c in held) / len(held)
