"""A discrete-event simulation of hall days that drives the real pure core.

Each simulated day issues every ticket, call, start, finish, no-show, pause, cancellation and
profile change as a command through :func:`hall.domain.decide.execute` (decide, then apply) with
the policy under test, on a virtual clock of aware UTC datetimes that starts at the workload's
local opening time in the hall's own zone. So what is measured is what the hall would do, not a
model of it.

Common random numbers: everything random in a day (arrival times, categories, priorities,
appointment slots, service times, no-shows, staff pause requests) is drawn before the day runs,
from ``random.Random(day_seed(seed, day))``, in a fixed order and attached to the visitor, not to
the window; patience, when the workload has it, from a stream of its own (:func:`draw_patience`),
so that adding it shifts no other draw. Two policies run with one seed therefore see the same
visitors with the same service times and patience; only the calling order differs. A pause
request (and each window's lunch, :class:`LunchRota`) is a time: the window takes it when it is
next free (staff do not leave a visitor mid-service), which depends on the policy. A window's
staff may be faster or slower (``Workload.speeds``): the visitor's drawn minutes are divided by
the speed of the window that serves them.

The windows: every window of the config logs in at the start (one simulated staff member each)
and calls whenever it is free: after a finish, a no-show, a resume, a profile change, or when a
ticket arrives that it may call (idle windows are offered a new ticket longest-idle first).
Arrivals stop at closing, the end of the last period (``Workload.horizon``). Then the hall does
what ``Workload.closing`` says with the tickets still waiting: serves them after hours
(``"serve"``) or sends them home (``"send-home"``, cancelled through the core with the reason
``closing``). A visitor with a patience leaves when not called by issue + patience (cancelled,
reason ``left``). Whatever is still open at :data:`HARD_STOP` local time is sent home (reason
``day-end``): a simulated day never reaches local midnight, where the core would expire it.

Nothing is hidden: every ticket issued ends with exactly one :data:`TicketOutcome` on its
:class:`Record`, and the day checks its books against the core's own ticket states before it
returns (a mismatch raises: a bug must fail loudly rather than flatter a policy).
"""

from __future__ import annotations

import heapq
import math
import random
import time as wallclock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol

import msgspec

from hall.config import HallConfig, Hours, Reason, Staff
from hall.domain.commands import (
    CallNext,
    CancelTicket,
    ChangeProfile,
    Finish,
    IssueTicket,
    Login,
    NoShow,
    Pause,
    Resume,
    Start,
)
from hall.domain.decide import execute
from hall.domain.events import TicketCalled, TicketIssued
from hall.domain.state import HallState, TicketState
from scheduling.estimate import ServiceTimes, estimate_wait
from scheduling.policy import Policy

# Never verified: the simulated staff only log in through decide(), which reads the username.
SIM_PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2ltdWxhdGVk$c2ltdWxhdGVkc2ltdWxhdGVk"


@dataclass(frozen=True, slots=True)
class Service:
    """A service-time distribution in minutes: its mean, coefficient of variation and shape."""

    mean: float
    cv: float = 1.0
    kind: Literal["exponential", "lognormal", "deterministic"] = "lognormal"

    def draw(self, rng: random.Random) -> float:
        if self.kind == "exponential":
            return rng.expovariate(1 / self.mean)
        if self.kind == "deterministic" or self.cv <= 0:
            return self.mean
        sigma2 = math.log(1 + self.cv**2)  # lognormal with this mean and CV
        return rng.lognormvariate(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2))

    @property
    def cs2(self) -> float:
        """Squared coefficient of variation (1 for exponential)."""
        if self.kind == "exponential":
            return 1.0
        return 0.0 if self.kind == "deterministic" else self.cv**2


@dataclass(frozen=True, slots=True)
class ProfileMove:
    """A manager's run-time profile change: at ``minute`` (from the start), ``window`` serves
    ``categories``."""

    minute: float
    window: str
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LunchRota:
    """Staff take lunch in turns: window ``i`` (in the hall file's order) leaves at ``start +
    (i % shifts) * minutes`` (minutes from opening), when it is next free, for ``minutes``."""

    start: float
    minutes: float
    shifts: int = 2


Closing = Literal["serve", "send-home"]


@dataclass(frozen=True)
class Workload:
    """A hall day to simulate. ``rates[category][i]`` is arrivals per minute in period ``i``."""

    name: str
    description: str
    config: HallConfig
    rates: Mapping[str, Sequence[float]]
    service: Mapping[str, Service]
    period_minutes: float = 30.0
    priority_share: Mapping[str, float] = field(default_factory=dict)  # class id -> share
    no_show: float = 0.0  # probability a called visitor does not come
    walk: float = 0.0  # minutes from the call to the start when the visitor comes
    no_show_wait: float = 2.0  # minutes a window waits before marking a no-show
    pauses_per_window: float = 0.0  # expected pause requests per window per day
    pause_minutes: float = 10.0  # mean pause length (exponential)
    profile_moves: tuple[ProfileMove, ...] = ()
    start: time = time(9, 0)  # local opening time
    day: date = date(2026, 3, 2)  # a Monday
    warmup: float = 0.0  # tickets issued before this minute are not counted
    # Abandonment: a visitor not called within a patience drawn from this leaves; None: all stay.
    patience: Service | None = None
    lunch: LunchRota | None = None
    # Window id -> how fast its staff work (service minutes are divided by it); 1.0 if absent.
    speeds: Mapping[str, float] = field(default_factory=dict)
    # At closing (the end of the last period) the tickets still waiting are served after hours
    # ("serve", the usual practice) or sent home with a reason ("send-home"); either way reported.
    closing: Closing = "serve"

    @property
    def horizon(self) -> float:
        """Minutes during which tickets are issued."""
        return self.period_minutes * max((len(v) for v in self.rates.values()), default=0)

    def offered_load(self) -> float:
        """Mean offered load over the day, Erlangs."""
        total = sum(
            sum(r) * self.period_minutes * self.service[c].mean for c, r in self.rates.items()
        )
        return total / self.horizon if self.horizon else 0.0


# The latest local time a simulated day runs to: whatever is left then is sent home, so that no
# command reaches local midnight (where the core's DayStarted would expire the open tickets).
HARD_STOP = time(23, 30)

# Cancel reasons the simulated hall uses (added to its config by :func:`sim_config`).
LEFT = Reason(code="left", name="办事人离开", name_en="Left before being called")
CLOSING = Reason(code="closing", name="下班未办理", name_en="Sent home at closing")
DAY_END = Reason(code="day-end", name="日终清退", name_en="Sent home before midnight")
BREAK = Reason(code="break", name="暂停休息", name_en="Short break")
LUNCH = Reason(code="lunch", name="午餐", name_en="Lunch")

TicketOutcome = Literal["served", "after-hours", "no-show", "abandoned", "sent-home"]
OUTCOMES: tuple[TicketOutcome, ...] = ("served", "after-hours", "no-show", "abandoned", "sent-home")


@dataclass(frozen=True, slots=True)
class Visitor:
    at: float  # minute of arrival
    category: str
    priority: str
    service: float  # minutes from start to finish (at a window of speed 1)
    no_show: bool
    appointment: float | None  # the slot's start, minutes, for appointment classes


@dataclass(slots=True)
class Record:
    """One ticket's course (minutes from the start of the day) and how it ended.

    ``outcome``: ``served`` (called before closing and served), ``after-hours`` (called at or
    after closing and served), ``no-show`` (called, did not come), ``abandoned`` (left uncalled
    when their patience ran out) or ``sent-home`` (cancelled by the hall: uncalled at closing
    under ``closing="send-home"``, or still open at :data:`HARD_STOP`, called or not). ``left``:
    the minute an abandoned or sent-home visitor left; ``reason``: the cancel reason then.
    """

    category: str
    priority: str
    issued: float
    service: float  # the drawn service minutes (start to finish), a control variate
    called: float | None = None
    estimate: float | None = None
    no_show: bool = False
    outcome: TicketOutcome | None = None  # None only while the day runs
    left: float | None = None
    reason: str | None = None
    estimate_low: float | None = None  # an estimator's 80% interval, where it gives one
    estimate_high: float | None = None

    @property
    def wait(self) -> float | None:
        """Minutes from issue to call; None if never called."""
        return None if self.called is None else self.called - self.issued

    @property
    def waited(self) -> float | None:
        """Minutes an uncalled visitor waited before leaving (abandoned or sent home)."""
        return None if self.left is None or self.called is not None else self.left - self.issued


@dataclass(slots=True)
class DayResult:
    seed: int
    records: list[Record]  # counted tickets only (issued after the warm-up)
    busy: float  # window-minutes holding a ticket within opening hours ([0, horizon])
    available: float  # window-minutes within opening hours logged in, not paused, not at lunch
    tickets: int  # all tickets issued, counted or not
    seconds: float  # wall-clock time of the run
    backlog: int  # tickets waiting at closing
    # Every ticket issued (counted or not) by outcome; the counts add up to ``tickets``.
    outcomes: dict[TicketOutcome, int] = field(default_factory=dict)
    after_hours: float = 0.0  # window-minutes holding a ticket after closing

    @property
    def utilisation(self) -> float:
        """Busy over available window-minutes, within opening hours."""
        return self.busy / self.available if self.available else math.nan


class Estimate(Protocol):
    """What an estimator returns: the wait in minutes (None: no window can call the ticket)
    and, optionally, ``low`` and ``high``, an 80% interval (read with ``getattr``)."""

    @property
    def minutes(self) -> float | None: ...


# estimator(state, ticket_id, now, times, policy): the estimate of a ticket just issued.
Estimator = Callable[[HallState, str, datetime, ServiceTimes, Policy], Estimate]


def quick_estimate(
    state: HallState, ticket_id: str, now: datetime, times: ServiceTimes, policy: Policy
) -> Estimate:
    """The hall's own quick estimate (:func:`scheduling.estimate.estimate_wait`)."""
    return estimate_wait(state, ticket_id, now, times)


def day_seed(seed: int, day: int) -> int:
    """The seed of day ``day`` of a run seeded ``seed`` (printed, so any day can be re-run)."""
    return seed * 1_000_003 + day


def origin(workload: Workload) -> datetime:
    """Minute 0 of a simulated day: the local opening time in the hall's zone, as aware UTC."""
    local = datetime.combine(workload.day, workload.start, workload.config.tz)
    return local.astimezone(UTC)


def hard_stop(workload: Workload) -> float:
    """The minute (from opening) of :data:`HARD_STOP` local time on the workload's day."""
    local = datetime.combine(workload.day, HARD_STOP, workload.config.tz)
    return (local - origin(workload)).total_seconds() / 60


def sim_config(config: HallConfig) -> HallConfig:
    """The config with one simulated staff member per window, tickets issued at any hour, and
    the pause and cancel reasons the simulated hall uses (added where the hall file lacks them)."""
    staff = tuple(
        Staff(username=f"sim{i}", name=f"sim{i}", password_hash=SIM_PASSWORD_HASH)
        for i, _ in enumerate(config.windows)
    )
    hall = msgspec.structs.replace(config.hall, number_digits=5)
    hours = Hours(periods=config.hours.periods, issue_outside_hours=True)
    return msgspec.structs.replace(
        config,
        hall=hall,
        staff=staff,
        hours=hours,
        pause_reasons=_with(config.pause_reasons, BREAK, LUNCH),
        cancel_reasons=_with(config.cancel_reasons, LEFT, CLOSING, DAY_END),
    )


def _with(reasons: tuple[Reason, ...], *needed: Reason) -> tuple[Reason, ...]:
    known = {r.code for r in reasons}
    return reasons + tuple(r for r in needed if r.code not in known)


def draw_visitors(workload: Workload, rng: random.Random) -> list[Visitor]:
    """The day's visitors: a Poisson stream per category with piecewise-constant rates."""
    shares = [(p, s) for p, s in workload.priority_share.items() if s > 0]
    slots = {p.id: p.slot_minutes for p in workload.config.priorities if p.slot_minutes > 0}
    visitors: list[Visitor] = []
    for category in sorted(workload.rates):
        service = workload.service[category]
        for i, rate in enumerate(workload.rates[category]):
            if rate <= 0:
                continue
            t = i * workload.period_minutes
            end = t + workload.period_minutes
            while True:
                t += rng.expovariate(rate)  # memoryless: restarting at a period edge is exact
                if t >= end:
                    break
                priority, u = "normal", rng.random()
                for p, share in shares:
                    if u < share:
                        priority = p
                        break
                    u -= share
                appointment = None
                if priority in slots:  # booked the slot that holds the arrival or starts soon
                    slot = slots[priority]
                    appointment = math.floor((t + rng.uniform(0, 10)) / slot) * slot
                no_show = rng.random() < workload.no_show
                visitors.append(
                    Visitor(t, category, priority, service.draw(rng), no_show, appointment)
                )
    visitors.sort(key=lambda v: v.at)
    return visitors


def draw_pauses(workload: Workload, rng: random.Random) -> dict[str, list[tuple[float, float]]]:
    """Per window, (request minute, length) of staff pauses: a Poisson number, uniform times."""
    pauses: dict[str, list[tuple[float, float]]] = {}
    for window in workload.config.windows:
        requests: list[tuple[float, float]] = []
        if workload.pauses_per_window > 0:
            t = 0.0
            rate = workload.pauses_per_window / workload.horizon
            while (t := t + rng.expovariate(rate)) < workload.horizon:
                requests.append((t, rng.expovariate(1 / workload.pause_minutes)))
        pauses[window.id] = requests
    return pauses


def draw_patience(workload: Workload, seed: int, visitors: int) -> list[float] | None:
    """Each visitor's patience, minutes, in arrival order (None: nobody leaves). Drawn from a
    stream of its own, seeded from the day's seed, so the day's other draws stay as they are."""
    if workload.patience is None:
        return None
    rng = random.Random(f"patience/{seed}")
    return [workload.patience.draw(rng) for _ in range(visitors)]


def lunches(workload: Workload) -> dict[str, tuple[float, float]]:
    """Per window, (minute, length) of its lunch by the rota: window ``i`` (the hall file's
    order) goes at ``start + (i % shifts) * minutes``; none when that is not before closing."""
    rota = workload.lunch
    if rota is None:
        return {}
    return {
        window.id: (at, rota.minutes)
        for i, window in enumerate(workload.config.windows)
        if (at := rota.start + (i % max(1, rota.shifts)) * rota.minutes) < workload.horizon
    }


def simulate_day(
    workload: Workload,
    policy: Policy,
    seed: int,
    *,
    estimates: bool = True,
    estimator: Estimator | None = None,
    estimate_every: int = 1,
) -> DayResult:
    """Run one day with ``policy``; every random draw comes from ``seed`` (see the module).

    With ``estimates``, every ``estimate_every``-th ticket issued gets an estimate at issue from
    ``estimator`` (default: :func:`quick_estimate`), with its ``low``/``high`` where it gives them.
    ValueError for a workload the day cannot hold (issuing past :data:`HARD_STOP`, a speed that
    is not positive or names no window).
    """
    _check(workload, estimate_every)
    rng = random.Random(seed)
    visitors = draw_visitors(workload, rng)
    pauses = draw_pauses(workload, rng)
    patience = draw_patience(workload, seed, len(visitors))
    estimate = (estimator or quick_estimate) if estimates else None
    day = _Day(workload, policy, visitors, pauses, patience, seed, estimate, estimate_every)
    return day.run()


def simulate(
    workload: Workload,
    policy: Policy,
    *,
    days: int = 1,
    seed: int = 1,
    estimates: bool = True,
    estimator: Estimator | None = None,
    estimate_every: int = 1,
) -> list[DayResult]:
    """Run ``days`` independent days seeded ``day_seed(seed, 0..days-1)``."""
    return [
        simulate_day(
            workload,
            policy,
            day_seed(seed, d),
            estimates=estimates,
            estimator=estimator,
            estimate_every=estimate_every,
        )
        for d in range(days)
    ]


def _check(workload: Workload, estimate_every: int) -> None:
    if workload.horizon > hard_stop(workload):
        raise ValueError(
            f"{workload.name}: issuing ends {workload.horizon:g} min after opening, past the"
            f" {HARD_STOP:%H:%M} hard stop; open earlier or shorten the day"
        )
    windows = {w.id for w in workload.config.windows}
    for window, speed in workload.speeds.items():
        if window not in windows or not speed > 0:
            raise ValueError(f"{workload.name}: speed {speed!r} of window {window!r}")
    if estimate_every < 1:
        raise ValueError("estimate_every must be at least 1")


# Event kinds, in the order they run at one instant: closing first (nobody is called at closing
# under send-home), releases before anything that calls, a visitor leaves last (a call at the
# very minute their patience runs out still reaches them).
_CLOSE, _FINISH, _NO_SHOW, _START, _RESUME, _PAUSE, _MOVE, _LEAVE = range(8)


class _Day:
    """The event loop of one day (internal: one instance per run)."""

    def __init__(
        self,
        workload: Workload,
        policy: Policy,
        visitors: list[Visitor],
        pauses: dict[str, list[tuple[float, float]]],
        patience: list[float] | None,
        seed: int,
        estimator: Estimator | None,
        estimate_every: int,
    ) -> None:
        self.workload, self.policy, self.visitors, self.seed = workload, policy, visitors, seed
        self.patience = patience
        self.estimator, self.every = estimator, estimate_every
        self.config = sim_config(workload.config)
        self.state = HallState.initial(self.config)
        self.origin = origin(workload)
        self.horizon = workload.horizon
        self.stop = hard_stop(workload)
        self.staff = {w.id: f"sim{i}" for i, w in enumerate(self.config.windows)}
        self.speed = {w: workload.speeds.get(w, 1.0) for w in self.staff}
        self.times = ServiceTimes.from_config(self.config) if estimator is not None else None
        self.heap: list[tuple[float, int, int, str]] = []
        self.seq = 0
        self.idle: dict[str, float] = {}  # window -> idle since (minute)
        # Per window, its pause requests and lunch, (minute, length, reason), latest first.
        lunch = lunches(workload)
        self.pending: dict[str, list[tuple[float, float, str]]] = {}
        for window_id, requests in pauses.items():
            merged = [(m, length, BREAK.code) for m, length in requests]
            if window_id in lunch:
                merged.append((*lunch[window_id], LUNCH.code))
            self.pending[window_id] = sorted(merged, reverse=True)
        self.moves: dict[int, ProfileMove] = {}  # heap sequence number -> move
        self.holding: dict[str, tuple[str, float]] = {}  # window -> (ticket, called at)
        self.by_ticket: dict[str, tuple[Visitor, Record]] = {}
        self.busy = self.after_hours = self.paused = 0.0
        self.backlog = 0

    def at(self, minute: float) -> datetime:
        return self.origin + timedelta(minutes=minute)

    def push(self, minute: float, kind: int, key: str) -> None:
        """Schedule an event; ``key`` is the window (the ticket for ``_LEAVE``)."""
        self.seq += 1
        heapq.heappush(self.heap, (minute, kind, self.seq, key))

    def run(self) -> DayResult:
        began = wallclock.perf_counter()
        for window_id, staff in self.staff.items():
            execute(self.state, Login(window=window_id, by=staff), self.at(0), self.policy)
            self.idle[window_id] = 0.0
        for move in self.workload.profile_moves:
            self.push(move.minute, _MOVE, move.window)
            self.moves[self.seq] = move
        for window_id, requests in self.pending.items():
            for minute, _, _ in requests:
                self.push(minute, _PAUSE, window_id)
        self.push(self.horizon, _CLOSE, "")
        records: list[Record] = []
        arrivals = iter(enumerate(self.visitors))
        upcoming = next(arrivals, None)
        while self.heap or upcoming is not None:
            if upcoming is not None and (not self.heap or upcoming[1].at < self.heap[0][0]):
                self.arrive(*upcoming, records)
                upcoming = next(arrivals, None)
                continue
            if self.heap[0][0] >= self.stop and self.heap[0][1] != _CLOSE:
                self.send_home_at_stop()
                break
            minute, kind, seq, key = heapq.heappop(self.heap)
            self.step(minute, kind, seq, key)
        else:  # the windows are done: tickets no window can call wait until the hard stop
            self.send_home_at_stop()
        outcomes = self.check_books()
        windows = len(self.staff)
        return DayResult(
            seed=self.seed,
            records=records,
            busy=self.busy,
            available=windows * self.horizon - self.paused,
            tickets=len(self.by_ticket),
            seconds=wallclock.perf_counter() - began,
            backlog=self.backlog,
            outcomes=outcomes,
            after_hours=self.after_hours,
        )

    def arrive(self, index: int, visitor: Visitor, records: list[Record]) -> None:
        minute = visitor.at
        appointment = None if visitor.appointment is None else self.at(visitor.appointment)
        command = IssueTicket(
            category=visitor.category, priority=visitor.priority, appointment=appointment
        )
        now = self.at(minute)
        issued = execute(self.state, command, now, self.policy)[-1]
        assert isinstance(issued, TicketIssued)
        ticket_id = issued.ticket
        record = Record(
            visitor.category, visitor.priority, minute, visitor.service, no_show=visitor.no_show
        )
        if minute >= self.workload.warmup:
            records.append(record)
        self.by_ticket[ticket_id] = (visitor, record)
        if self.patience is not None:
            self.push(minute + self.patience[index], _LEAVE, ticket_id)
        if self.estimator is not None and self.times is not None and index % self.every == 0:
            found = self.estimator(self.state, ticket_id, now, self.times, self.policy)
            record.estimate = found.minutes
            record.estimate_low = getattr(found, "low", None)
            record.estimate_high = getattr(found, "high", None)
        # Offer it to idle windows that may call it, longest idle first.
        ticket = self.state.tickets[ticket_id]
        for window_id in sorted(self.idle, key=self.idle.__getitem__):
            if ticket.called_at is not None:
                break
            if visitor.category in self.state.windows[window_id].categories:
                self.free(window_id, minute)

    def step(self, minute: float, kind: int, seq: int, key: str) -> None:
        now = self.at(minute)
        if kind == _CLOSE:
            self.backlog = sum(len(q) for q in self.state.queues.values())
            if self.workload.closing == "send-home":
                self.send_home(minute, CLOSING.code)
            return
        if kind == _LEAVE:  # the visitor's patience ran out: gone, unless called by now
            _, record = self.by_ticket[key]
            if record.called is None and record.outcome is None:
                self.cancel(key, minute, LEFT.code, "abandoned")
            return
        window = key
        staff = self.staff[window]
        if kind == _PAUSE:  # a pause request: taken now if idle, else when next free
            if window in self.idle:
                self.free(window, minute)
            return
        if kind == _MOVE:
            move = self.moves[seq]
            command = ChangeProfile(window=window, categories=move.categories, by="sim-manager")
            execute(self.state, command, now, self.policy)
            for window_id in sorted(self.idle, key=self.idle.__getitem__):
                self.free(window_id, minute)
            return
        if kind == _RESUME:
            execute(self.state, Resume(window=window, by=staff), now, self.policy)
            self.free(window, minute)
            return
        ticket, called = self.holding[window]
        visitor, record = self.by_ticket[ticket]
        if kind == _START:
            execute(self.state, Start(window=window, by=staff), now, self.policy)
            self.push(minute + visitor.service / self.speed[window], _FINISH, window)
            return
        command_done = Finish if kind == _FINISH else NoShow
        events = execute(self.state, command_done(window=window, by=staff), now, self.policy)
        if self.times is not None:
            for event in events:
                self.times.update(self.state, event)
        if kind == _NO_SHOW:
            record.outcome = "no-show"
        else:
            record.outcome = "served" if called < self.horizon else "after-hours"
        del self.holding[window]
        self.hold(called, minute)
        self.free(window, minute)

    def hold(self, called: float, released: float) -> None:
        """Count a window's holding of one ticket, split at closing."""
        self.busy += max(0.0, min(released, self.horizon) - called)
        self.after_hours += max(0.0, released - max(called, self.horizon))

    def cancel(
        self, ticket: str, minute: float, reason: str, outcome: TicketOutcome, by: str | None = None
    ) -> None:
        command = CancelTicket(ticket=ticket, reason=reason, by=by)
        execute(self.state, command, self.at(minute), self.policy)
        _, record = self.by_ticket[ticket]
        record.outcome, record.left, record.reason = outcome, minute, reason

    def send_home(self, minute: float, reason: str) -> None:
        """Cancel every waiting ticket, oldest first in each queue."""
        for queue in list(self.state.queues.values()):
            for ticket in list(queue):
                self.cancel(ticket, minute, reason, "sent-home")

    def send_home_at_stop(self) -> None:
        """At the hard stop, or when no window will call any more: whoever is still waiting or at
        a window goes home at the hard stop, and the day ends."""
        self.send_home(self.stop, DAY_END.code)
        for window, (ticket, called) in list(self.holding.items()):
            self.cancel(ticket, self.stop, DAY_END.code, "sent-home", by=self.staff[window])
            self.hold(called, self.stop)
        self.holding.clear()

    def free(self, window: str, minute: float) -> None:
        """The window is free at ``minute``: take a requested pause, else call the next ticket."""
        since = self.idle.pop(window, minute)
        requests = self.pending[window]
        if requests and requests[-1][0] <= minute and minute < self.horizon:
            _, length, reason = requests.pop()
            execute(
                self.state,
                Pause(window=window, by=self.staff[window], reason=reason),
                self.at(minute),
                self.policy,
            )
            self.paused += min(minute + length, self.horizon) - minute
            self.push(minute + length, _RESUME, window)
            return
        events = execute(
            self.state, CallNext(window=window, by=self.staff[window]), self.at(minute), self.policy
        )
        called = next((e for e in events if isinstance(e, TicketCalled)), None)
        if called is None:
            self.idle[window] = since
            return
        visitor, record = self.by_ticket[called.ticket]
        record.called = minute
        self.holding[window] = (called.ticket, minute)
        if visitor.no_show:
            self.push(minute + self.workload.no_show_wait, _NO_SHOW, window)
        elif self.workload.walk > 0:
            self.push(minute + self.workload.walk, _START, window)
        else:
            execute(
                self.state,
                Start(window=window, by=self.staff[window]),
                self.at(minute),
                self.policy,
            )
            self.push(minute + visitor.service / self.speed[window], _FINISH, window)

    def check_books(self) -> dict[TicketOutcome, int]:
        """Every ticket issued ended exactly once, as the core says it did; the counts."""
        counts: dict[TicketOutcome, int] = dict.fromkeys(OUTCOMES, 0)
        core = {
            "served": TicketState.FINISHED,
            "after-hours": TicketState.FINISHED,
            "no-show": TicketState.NO_SHOW,
            "abandoned": TicketState.CANCELLED,
            "sent-home": TicketState.CANCELLED,
        }
        for ticket_id, (_, record) in self.by_ticket.items():
            ticket = self.state.tickets.get(ticket_id)
            if record.outcome is None or ticket is None or ticket.state != core[record.outcome]:
                raise AssertionError(
                    f"seed {self.seed}: ticket {ticket_id} ended as {record.outcome!r} here but"
                    f" {ticket.state if ticket else 'missing'} in the core"
                )
            counts[record.outcome] += 1
        if sum(counts.values()) != len(self.by_ticket) or self.holding:
            raise AssertionError(f"seed {self.seed}: the books do not balance: {counts}")
        return counts
