"""The hall's own calling policy run forward from the live state, on a copy: one run.

What a run does, from a :class:`Start` (the live state read once) and a :class:`Layout` (the
windows as they are, or as a manager might change them):

* **Windows.** An idle open window calls at once (longest idle first); one holding a ticket frees
  after the rest of its holding time, drawn given how long it has held it already
  (:meth:`Holding.left`); a paused window comes back after the rest of its pause
  (:func:`pause_left`); closed windows stay closed. A window that finds nothing to call waits
  until a ticket it may call arrives.
* **Holding times** (from a call to the window's next call: walking up and no-shows included,
  what :class:`~scheduling.estimate.ServiceTimes` measures) are lognormal around each category's
  running mean with coefficient of variation 0.75 (:class:`Holding`). Lognormal because a
  hall's transactions are right-skewed (most short, a few long) and never below zero:
  exponential holding times would overstate the spread of a long wait (every window as likely
  to free at once as much later) and a fixed time would understate it. 0.75 is the middle of
  what service halls measure.
* **Arrivals** are Poisson streams at the recent rates (:mod:`scheduling.arrivals`), per category
  and priority class, so a priority ticket or a favoured category arriving later passes exactly as
  the policy lets it. They stop when the hall's opening period ends, where the hall file says.
* **Ghosts** are tickets not yet issued (a kiosk's "about N minutes" before printing): issued now,
  at the back of their queue, holding a window for no time. Their call time is that of a ticket
  taken now, and nothing else in the run changes (a window that calls a ghost calls again at once
  and gets what it would have got).

At every free window the run asks the policy (``choose(state, window, now)``) on a mirror state:
the live state's queues, lanes and waiting tickets copied (the hall's writer goes on changing the
live ones: a copy may run in another thread), the layout's windows shared and never written. The
picked ticket leaves the mirror's queue and lane, and its call time is recorded, so one run gives
the call time of every ticket it reaches.

Every random draw belongs to a ticket or a window, never to the order of events (common random
numbers): the ``i``-th waiting ticket (in arrival order) and the ``j``-th arrival hold a window
equally long, and each window's residual is the same, whatever the layout and whoever calls whom.
So two layouts run with one seed differ only by what the layouts change (:mod:`scheduling.whatif`),
and a seed's arrivals can be drawn once for all of them (``Start.shared``).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from heapq import heappop, heappush
from statistics import NormalDist
from typing import TYPE_CHECKING

from hall.domain.state import HallState, Ticket, WindowState, WindowStatus, queue_key
from scheduling.arrivals import arrival_rates
from scheduling.estimate import ServiceTimes
from scheduling.policy import Policy

if TYPE_CHECKING:
    from hall.config import HallConfig

HORIZON = 8 * 3600.0  # seconds: no run goes further than this from now
OVERDUE_PAUSE = 300.0  # seconds: the mean rest of a pause already past its limit

_NORMAL = NormalDist()
_ROOT2 = math.sqrt(2)
_GHOST_SEQ = 1_000_000_000  # ghosts and arrivals come after every real ticket in arrival order
_ARRIVAL_SEQ = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Holding:
    """The shape of holding times around each category's running mean: lognormal with
    coefficient of variation ``cv``, or exponential (``cv`` None; for checks against queueing
    theory, which assumes it)."""

    cv: float | None = 0.75

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log(1 + (self.cv or 0.0) ** 2))

    def factors(self) -> Callable[[float], float]:
        """The holding time over its mean for a standard normal draw (mean 1)."""
        if self.cv is None:  # the exponential quantile of the draw's probability
            return lambda z: -math.log(0.5 * math.erfc(z / _ROOT2))
        sigma = self.sigma
        shift = sigma * sigma / 2
        exp = math.exp
        return lambda z: exp(sigma * z - shift)

    def left(self, mean: float, held: float, u: float) -> float:
        """The rest of a holding time of mean ``mean`` seconds that has lasted ``held`` seconds,
        from the uniform ``u``: the distribution's quantile above what has been held."""
        if self.cv is None:
            return -math.log(1 - u) * mean  # memoryless
        sigma = self.sigma
        mu = math.log(mean) - sigma * sigma / 2
        floor = _NORMAL.cdf((math.log(held) - mu) / sigma) if held > 0 else 0.0
        p = floor + u * (1 - floor)
        if p >= 1 - 1e-9:  # held far longer than anyone: it ends, nobody knows when
            return -math.log(1 - u) * mean / 2
        return max(math.exp(mu + sigma * _NORMAL.inv_cdf(max(p, 1e-12))) - held, 0.0)


LOGNORMAL = Holding()
EXPONENTIAL = Holding(None)


@dataclass(frozen=True, slots=True)
class Layout:
    """The windows a run works with: each window's status as the policy reads it (its profile,
    its state). A window closed in the live state and open here opens now, idle."""

    windows: Mapping[str, WindowStatus]

    def works(self, window: str) -> bool:
        return self.windows[window].state is not WindowState.CLOSED

    def callers(self, queue: str) -> list[str]:
        """The working windows that may call from ``queue`` (a category or ``@window``)."""
        if queue.startswith("@"):
            target = queue[1:]
            return [target] if target in self.windows and self.works(target) else []
        return [w for w, s in self.windows.items() if queue in s.categories and self.works(w)]


def live_layout(state: HallState) -> Layout:
    """The windows as they are."""
    return Layout(state.windows)


@dataclass(slots=True)
class Start:
    """What every run starts from: the live state read once (lists and tickets copied: the live
    state is not read again, so runs may go on while the writer changes it)."""

    config: HallConfig
    policy: Policy
    now: float  # POSIX seconds
    day: date
    tickets: dict[str, Ticket]  # the waiting tickets and the ghosts
    queues: dict[str, tuple[str, ...]]
    lanes: dict[str, dict[str, tuple[str, ...]]]
    index: dict[str, int]  # waiting ticket -> its holding draw (ghosts have none)
    means: dict[str, float]  # category -> mean holding seconds
    held: dict[str, tuple[str, float]]  # busy window -> (category it holds, seconds held)
    paused: dict[str, tuple[float, float]]  # paused window -> (seconds paused, limit seconds)
    idle_since: dict[str, float]  # open idle window -> since (POSIX seconds)
    kinds: list[tuple[str, str]]  # arrival (category, class), with their cumulative rates
    cumulative: list[float]
    rate: float  # arrivals per second, all kinds
    closes: float  # no arrivals after this (POSIX seconds)
    slots: dict[str, float]  # appointment class -> slot seconds
    holding: Holding
    ghosts: dict[tuple[str, str], str] = field(default_factory=dict)  # (category, class) -> id
    # Set (to {}) where many runs share seeds (the what-if: every layout on the same seeds): each
    # seed's arrivals are drawn and their tickets made once, by its first run (see _replayed).
    shared: dict[tuple[int, float], _Drawn] | None = None


def start(
    state: HallState,
    now: datetime,
    times: ServiceTimes,
    policy: Policy,
    ghosts: Sequence[tuple[str, str]] = (),
    holding: Holding = LOGNORMAL,
) -> Start:
    """Read the live state for runs from ``now``; ``ghosts``: (category, class) of tickets not
    yet issued whose call times the runs should give."""
    now_s = now.timestamp()
    config = state.config
    tickets: dict[str, Ticket] = {}
    queues: dict[str, tuple[str, ...]] = {}
    lanes: dict[str, dict[str, tuple[str, ...]]] = {}
    for queue, ids in state.queues.items():
        if ids:
            queues[queue] = tuple(ids)
            lanes[queue] = {p: tuple(v) for p, v in state.lanes.get(queue, {}).items() if v}
            for ticket_id in ids:
                tickets[ticket_id] = _copy(state.tickets[ticket_id])
    ordered = sorted(tickets.values(), key=lambda t: t.order_key)
    categories = {c.id for c in config.categories} | {t.category for t in ordered}
    held: dict[str, tuple[str, float]] = {}
    paused: dict[str, tuple[float, float]] = {}
    idle_since: dict[str, float] = {}
    rules = config.discipline
    for window in state.windows.values():
        since = window.since.timestamp() if window.since else now_s
        if window.state is WindowState.PAUSED:
            limit = rules.pause_limits.get(window.pause_reason or "") or rules.pause_minutes or 30
            paused[window.id] = (max(now_s - since, 0.0), limit * 60.0)
        elif window.state in (WindowState.CALLING, WindowState.SERVING):
            ticket = state.tickets.get(window.ticket or "")
            if ticket is None or ticket.called_at is None:
                idle_since[window.id] = since
            else:
                held[window.id] = (ticket.category, max(now_s - ticket.called_at.timestamp(), 0.0))
                categories.add(ticket.category)
        elif window.state is WindowState.OPEN:
            idle_since[window.id] = since
    rates = arrival_rates(state, now)
    kinds = sorted(kind for kind, rate in rates.items() if rate > 0)
    categories.update(category for category, _ in kinds)
    cumulative = []
    total = 0.0
    for kind in kinds:
        total += rates[kind]
        cumulative.append(total)
    begun = Start(
        config=config,
        policy=policy,
        now=now_s,
        day=state.day or now.date(),
        tickets=tickets,
        queues=queues,
        lanes=lanes,
        index={t.id: i for i, t in enumerate(ordered)},
        means={c: times.mean(c) * 60.0 for c in categories},
        held=held,
        paused=paused,
        idle_since=idle_since,
        kinds=kinds,
        cumulative=cumulative,
        rate=total,
        closes=closing(config, now),
        slots={p.id: p.slot_minutes * 60.0 for p in config.priorities if p.slot_minutes > 0},
        holding=holding,
    )
    for category, priority in ghosts:
        add_ghost(begun, category, priority)
    return begun


def add_ghost(begun: Start, category: str, priority: str) -> str:
    """Put a ticket of ``category`` and ``priority`` not yet issued at the back of its queue;
    its id."""
    key = (category, priority)
    found = begun.ghosts.get(key)
    if found is not None:
        return found
    ghost_id = f"~new:{category}:{priority}"
    begun.tickets[ghost_id] = _ticket(
        begun, ghost_id, category, priority, _GHOST_SEQ + len(begun.ghosts), begun.now
    )
    begun.queues[category] = (*begun.queues.get(category, ()), ghost_id)
    lanes = begun.lanes.setdefault(category, {})
    lanes[priority] = (*lanes.get(priority, ()), ghost_id)
    begun.ghosts[key] = ghost_id
    return ghost_id


def closing(config: HallConfig, now: datetime) -> float:
    """When tickets stop being issued (POSIX seconds): the end of the opening period ``now`` is
    in where the hall file gives its hours, else never (and now, outside them, where tickets are
    issued only in opening hours)."""
    periods = config.hours.periods
    if not periods:
        return math.inf
    local = now.astimezone(config.tz)
    weekday, clock = local.strftime("%a").lower(), local.strftime("%H:%M")
    for period in periods:
        if weekday in period.days and period.open <= clock < period.close:
            hours, minutes = (int(x) for x in period.close.split(":"))
            return local.replace(hour=hours, minute=minutes, second=0, microsecond=0).timestamp()
    return math.inf if config.hours.issue_outside_hours else now.timestamp()


def pause_left(paused: float, limit: float, u: float) -> float:
    """The rest of a pause that has lasted ``paused`` seconds, from the uniform ``u``: exponential
    with a third of the pause's limit as its mean (10 minutes under the default 30), over by the
    limit (staff come back before a breach); one already past its limit ends within minutes."""
    if paused >= limit:
        return -math.log(1 - u) * OVERDUE_PAUSE
    return min(-math.log(1 - u) * limit / 3, limit - paused)


@dataclass(slots=True)
class Run:
    """One run: when each ticket it called was called (POSIX seconds), the tickets that arrived
    (id -> (category, issued)), the policy calls made, and when it stopped."""

    called: dict[str, float]
    arrived: dict[str, tuple[str, float]]
    steps: int
    end: float


def simulate(
    begun: Start,
    layout: Layout,
    seed: int,
    *,
    targets: frozenset[str] = frozenset(),
    until: float = -math.inf,
    steps: int = 1_000_000,
    horizon: float = HORIZON,
) -> Run:
    """One run from ``begun`` with the windows of ``layout`` (see the module). It stops once the
    clock has reached ``until`` (POSIX seconds) and every ticket of ``targets`` and every ticket
    arrived before ``until`` is called (those no working window may call aside), or earlier
    after ``steps`` policy calls, as many arrivals (a burst of tickets read as today's rate
    must not cost thousands of arrivals a run), or ``horizon`` seconds after now."""
    policy = begun.policy
    factor = begun.holding.factors()
    end = begun.now + horizon
    means, index = begun.means, begun.index
    tickets = dict(begun.tickets)
    queues = {q: list(ids) for q, ids in begun.queues.items()}
    lanes = {q: {p: list(ids) for p, ids in by.items()} for q, by in begun.lanes.items()}
    windows = layout.windows
    mirror_windows = dict(windows)
    mirror = HallState(
        config=begun.config,
        day=begun.day,
        tickets=tickets,
        queues=queues,
        lanes=lanes,
        windows=mirror_windows,
    )
    draws = random.Random(seed)  # the waiting tickets' holding times, by index
    table: list[float] = []
    stop = min(begun.closes, end)
    arrivals = (
        _arrivals(begun, random.Random(seed + 1), stop)
        if begun.shared is None
        else _replayed(begun, begun.shared, seed, stop)
    )
    free = _first_free(begun, layout, random.Random(seed + 2))
    idle: dict[str, float] = {}
    called: dict[str, float] = {}
    arrived: dict[str, tuple[str, float]] = {}
    drawn: dict[str, float] = {}  # arrivals' holding draws
    callable_queues = {q: bool(layout.callers(q)) for q in (*queues, *begun.means)}
    remaining = {t for t in targets if callable_queues.get(queue_key(tickets[t]))}
    count = 0
    order = len(free)

    def call(window_id: str, at: float) -> str | None:
        """The window calls at ``at``: the id of what it called, None if nothing."""
        nonlocal count, order
        moment = datetime.fromtimestamp(at, UTC)
        if mirror_windows[window_id].state is WindowState.PAUSED:  # back from its pause
            mirror_windows[window_id] = dataclasses.replace(
                mirror_windows[window_id], state=WindowState.OPEN
            )
        while True:
            count += 1
            ticket = policy(mirror, window_id, moment)
            if ticket is None:
                idle[window_id] = at
                return None
            ticket_id = ticket.id
            key = f"@{target}" if (target := ticket.target_window) else ticket.category
            queue = queues[key]
            if queue[0] == ticket_id:
                del queue[0]
            else:
                queue.remove(ticket_id)
            lane = lanes[key][ticket.priority]
            if lane[0] == ticket_id:
                del lane[0]
            else:
                lane.remove(ticket_id)
            called[ticket_id] = at
            remaining.discard(ticket_id)
            position = index.get(ticket_id)
            if position is not None:
                while len(table) <= position:
                    table.append(draws.gauss(0.0, 1.0))
                hold = means[ticket.category] * factor(table[position])
            elif ticket_id in drawn:
                hold = means[ticket.category] * factor(drawn[ticket_id])
            else:
                hold = 0.0  # a ghost holds nothing
            if hold > 0:
                order += 1
                heappush(free, (at + hold, order, window_id))
                return ticket_id

    upcoming = next(arrivals, None)
    clock = begun.now
    while count < steps and len(arrived) < steps:
        moment = free[0][0] if free else math.inf
        following = moment if upcoming is None else min(upcoming[0], moment)
        if not remaining and following >= until:
            clock = max(clock, until)
            break
        if following > end:
            clock = end
            break
        clock = following
        if upcoming is not None and upcoming[0] < moment:
            at, ticket, z = upcoming
            category, priority = ticket.category, ticket.priority
            tickets[ticket.id] = ticket
            queues.setdefault(category, []).append(ticket.id)
            lanes.setdefault(category, {}).setdefault(priority, []).append(ticket.id)
            drawn[ticket.id] = z
            arrived[ticket.id] = (category, at)
            if at < until and callable_queues.get(category):
                remaining.add(ticket.id)
            if idle:
                for window_id in sorted(idle, key=idle.__getitem__):  # longest idle first
                    if category in windows[window_id].categories:
                        del idle[window_id]
                        if call(window_id, at) == ticket.id:
                            break
            upcoming = next(arrivals, None)
            continue
        at, _, window_id = heappop(free)
        call(window_id, at)
    return Run(called, arrived, count, clock)


def _first_free(
    begun: Start, layout: Layout, draws: random.Random
) -> list[tuple[float, float, str]]:
    """When each working window is first free: (moment, order at one moment, window). One draw
    per window of the hall file, worked or not, so each keeps its draw whatever the layout."""
    now = begun.now
    free: list[tuple[float, float, str]] = []
    for order, window_id in enumerate(layout.windows):
        u = draws.random()
        if not layout.works(window_id):
            continue
        if window_id in begun.held:
            category, held = begun.held[window_id]
            left = begun.holding.left(begun.means[category], held, u)
            free.append((now + left, order, window_id))
        elif window_id in begun.paused:
            free.append((now + pause_left(*begun.paused[window_id], u), order, window_id))
        else:  # free now: longest idle first
            free.append((now, begun.idle_since.get(window_id, now) - now, window_id))
    free.sort()
    return free


Arrival = tuple[float, Ticket, float]  # (moment, ticket, holding draw)


def _arrivals(begun: Start, draws: random.Random, stop: float) -> Iterator[Arrival]:
    """The run's arrivals until ``stop``."""
    rate = begun.rate
    if rate <= 0:
        return
    kinds, cumulative = begun.kinds, begun.cumulative
    at = begun.now
    number = 0
    while True:
        at += draws.expovariate(rate)
        if at >= stop:
            return
        category, priority = kinds[
            min(bisect.bisect_right(cumulative, draws.random() * rate), len(kinds) - 1)
        ]
        number += 1
        z = draws.gauss(0.0, 1.0)
        yield at, _ticket(begun, f"~{number}", category, priority, _ARRIVAL_SEQ + number, at), z


@dataclass(slots=True)
class _Drawn:
    """A seed's arrivals drawn so far, and what draws more."""

    source: Iterator[Arrival]
    arrivals: list[Arrival] = field(default_factory=list)


def _replayed(
    begun: Start, shared: dict[tuple[int, float], _Drawn], seed: int, stop: float
) -> Iterator[Arrival]:
    """The arrivals of ``seed`` until ``stop``, as :func:`_arrivals` draws them: drawn by the
    first run with the seed, replayed by the next (one that goes further draws on). Their tickets
    are shared: a run never writes a ticket."""
    drawn = shared.get((seed, stop))
    if drawn is None:
        drawn = shared[seed, stop] = _Drawn(_arrivals(begun, random.Random(seed + 1), stop))
    arrivals, position = drawn.arrivals, 0
    while True:
        if position == len(arrivals):
            following = next(drawn.source, None)
            if following is None:
                return
            arrivals.append(following)
        yield arrivals[position]
        position += 1


def _copy(ticket: Ticket) -> Ticket:
    """What runs and policies read of a waiting ticket, copied (the writer changes the live one
    when it is called or transferred)."""
    return Ticket(
        id=ticket.id,
        number=ticket.number,
        category=ticket.category,
        priority=ticket.priority,
        day=ticket.day,
        seq=ticket.seq,
        issued_at=ticket.issued_at,
        state=ticket.state,
        target_window=ticket.target_window,
        appointment=ticket.appointment,
    )


def _ticket(
    begun: Start, ticket_id: str, category: str, priority: str, seq: int, at: float
) -> Ticket:
    """A ghost's or an arrival's ticket, issued at ``at``; an appointment class books the slot
    that holds it."""
    slot = begun.slots.get(priority)
    appointment = None if slot is None else datetime.fromtimestamp(at // slot * slot, UTC)
    return Ticket(
        id=ticket_id,
        number="",
        category=category,
        priority=priority,
        day=begun.day,
        seq=seq,
        issued_at=datetime.fromtimestamp(at, UTC),
        appointment=appointment,
    )
