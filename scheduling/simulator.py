"""A discrete-event simulation of hall days that drives the real pure core.

Each simulated day issues every ticket, call, start, finish, no-show, pause and profile change as a
command through :func:`hall.domain.decide.execute` (decide, then apply) with the policy under
test, on a virtual clock of aware UTC datetimes that starts at the workload's local opening time
in the hall's own zone. So what is measured is what the hall would do, not a model of it.

Common random numbers: everything random in a day (arrival times, categories, priorities,
appointment slots, service times, no-shows, staff pause requests) is drawn before the day runs,
from ``random.Random(day_seed(seed, day))``, in a fixed order and attached to the visitor, not to
the window. Two policies run with one seed therefore see the same visitors with the same service
times; only the calling order differs. A pause request is drawn as a time: the window takes the
pause when it is next free (staff do not leave a visitor mid-service), which depends on the policy.

The windows: every window of the config logs in at the start (one simulated staff member each)
and calls whenever it is free: after a finish, a no-show, a resume, a profile change, or when a
ticket arrives that it may call (idle windows are offered a new ticket longest-idle first). Arrivals
stop at the end of the last period; the windows then serve until the queues are empty.
"""

from __future__ import annotations

import heapq
import math
import random
import time as wallclock
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import msgspec

from hall.config import HallConfig, Hours, Staff
from hall.domain.commands import (
    CallNext,
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
from hall.domain.state import HallState
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


@dataclass(frozen=True, slots=True)
class Visitor:
    at: float  # minute of arrival
    category: str
    priority: str
    service: float  # minutes from start to finish
    no_show: bool
    appointment: float | None  # the slot's start, minutes, for appointment classes


@dataclass(slots=True)
class Record:
    """One ticket's outcome (minutes from the start of the day)."""

    category: str
    priority: str
    issued: float
    service: float  # the drawn service minutes (start to finish), a control variate
    called: float | None = None
    estimate: float | None = None
    no_show: bool = False

    @property
    def wait(self) -> float | None:
        return None if self.called is None else self.called - self.issued


@dataclass(slots=True)
class DayResult:
    seed: int
    records: list[Record]  # counted tickets only (issued after the warm-up)
    busy: float  # window-minutes holding a ticket
    available: float  # window-minutes logged in and not paused, until the last release
    tickets: int  # all tickets issued, counted or not
    seconds: float  # wall-clock time of the run
    backlog: int  # tickets waiting when arrivals stopped


def day_seed(seed: int, day: int) -> int:
    """The seed of day ``day`` of a run seeded ``seed`` (printed, so any day can be re-run)."""
    return seed * 1_000_003 + day


def origin(workload: Workload) -> datetime:
    """Minute 0 of a simulated day: the local opening time in the hall's zone, as aware UTC."""
    local = datetime.combine(workload.day, workload.start, workload.config.tz)
    return local.astimezone(UTC)


def sim_config(config: HallConfig) -> HallConfig:
    """The config with one simulated staff member per window and tickets issued at any hour."""
    staff = tuple(
        Staff(username=f"sim{i}", name=f"sim{i}", password_hash=SIM_PASSWORD_HASH)
        for i, _ in enumerate(config.windows)
    )
    hall = msgspec.structs.replace(config.hall, number_digits=5)
    hours = Hours(periods=config.hours.periods, issue_outside_hours=True)
    return msgspec.structs.replace(config, hall=hall, staff=staff, hours=hours)


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


def simulate_day(
    workload: Workload, policy: Policy, seed: int, *, estimates: bool = True
) -> DayResult:
    """Run one day with ``policy``; every random draw comes from ``random.Random(seed)``."""
    rng = random.Random(seed)
    visitors = draw_visitors(workload, rng)
    pauses = draw_pauses(workload, rng)
    return _Day(workload, policy, visitors, pauses, seed, estimates).run()


def simulate(
    workload: Workload, policy: Policy, *, days: int = 1, seed: int = 1, estimates: bool = True
) -> list[DayResult]:
    """Run ``days`` independent days seeded ``day_seed(seed, 0..days-1)``."""
    return [
        simulate_day(workload, policy, day_seed(seed, d), estimates=estimates) for d in range(days)
    ]


# Event kinds, in the order they run at one instant: releases before new arrivals.
_FINISH, _NO_SHOW, _START, _RESUME, _PAUSE, _MOVE = range(6)


class _Day:
    """The event loop of one day (internal: one instance per run)."""

    def __init__(
        self,
        workload: Workload,
        policy: Policy,
        visitors: list[Visitor],
        pauses: dict[str, list[tuple[float, float]]],
        seed: int,
        estimates: bool,
    ) -> None:
        self.workload, self.policy, self.visitors, self.seed = workload, policy, visitors, seed
        self.config = sim_config(workload.config)
        self.state = HallState.initial(self.config)
        self.origin = origin(workload)
        self.staff = {w.id: f"sim{i}" for i, w in enumerate(self.config.windows)}
        self.times = ServiceTimes.from_config(self.config) if estimates else None
        self.heap: list[tuple[float, int, int, str]] = []
        self.seq = 0
        self.idle: dict[str, float] = {}  # window -> idle since (minute)
        self.pending: dict[str, list[tuple[float, float]]] = {
            w: list(reversed(r)) for w, r in pauses.items()
        }
        self.moves: dict[int, ProfileMove] = {}  # heap sequence number -> move
        self.holding: dict[str, tuple[str, float]] = {}  # window -> (ticket, called at)
        self.by_ticket: dict[str, tuple[Visitor, Record]] = {}
        self.busy = self.paused = 0.0
        self.last = 0.0
        self.backlog = 0

    def at(self, minute: float) -> datetime:
        return self.origin + timedelta(minutes=minute)

    def push(self, minute: float, kind: int, window: str) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (minute, kind, self.seq, window))

    def run(self) -> DayResult:
        began = wallclock.perf_counter()
        for window_id, staff in self.staff.items():
            execute(self.state, Login(window=window_id, by=staff), self.at(0), self.policy)
            self.idle[window_id] = 0.0
        for move in self.workload.profile_moves:
            self.push(move.minute, _MOVE, move.window)
            self.moves[self.seq] = move
        for window_id, requests in self.pending.items():
            for minute, _ in requests:
                self.push(minute, _PAUSE, window_id)
        records: list[Record] = []
        horizon = self.workload.horizon
        arrivals = iter(self.visitors)
        upcoming = next(arrivals, None)
        stopped = False
        while self.heap or upcoming is not None:
            if upcoming is not None and (not self.heap or upcoming.at < self.heap[0][0]):
                self.arrive(upcoming, records)
                upcoming = next(arrivals, None)
                continue
            if not stopped and (not self.heap or self.heap[0][0] >= horizon):
                stopped = True
                self.backlog = sum(len(q) for q in self.state.queues.values())
            minute, kind, seq, window = heapq.heappop(self.heap)
            self.step(minute, kind, seq, window)
        self.last = max(self.last, horizon)
        windows = len(self.staff)
        return DayResult(
            seed=self.seed,
            records=records,
            busy=self.busy,
            available=windows * self.last - self.paused,
            tickets=len(self.by_ticket),
            seconds=wallclock.perf_counter() - began,
            backlog=self.backlog,
        )

    def arrive(self, visitor: Visitor, records: list[Record]) -> None:
        minute = visitor.at
        appointment = None if visitor.appointment is None else self.at(visitor.appointment)
        command = IssueTicket(
            category=visitor.category, priority=visitor.priority, appointment=appointment
        )
        issued = execute(self.state, command, self.at(minute), self.policy)[-1]
        assert isinstance(issued, TicketIssued)
        record = Record(
            visitor.category, visitor.priority, minute, visitor.service, no_show=visitor.no_show
        )
        if minute >= self.workload.warmup:
            records.append(record)
        self.by_ticket[issued.ticket] = (visitor, record)
        if self.times is not None:
            record.estimate = estimate_wait(
                self.state, issued.ticket, self.at(minute), self.times
            ).minutes
        # Offer it to idle windows that may call it, longest idle first.
        for window_id in sorted(self.idle, key=self.idle.__getitem__):
            if self.state.tickets[issued.ticket].called_at is not None:
                break
            if visitor.category in self.state.windows[window_id].categories:
                self.free(window_id, minute)

    def step(self, minute: float, kind: int, seq: int, window: str) -> None:
        staff = self.staff[window]
        now = self.at(minute)
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
        visitor, _ = self.by_ticket[ticket]
        if kind == _START:
            execute(self.state, Start(window=window, by=staff), now, self.policy)
            self.push(minute + visitor.service, _FINISH, window)
            return
        command_done = Finish if kind == _FINISH else NoShow
        events = execute(self.state, command_done(window=window, by=staff), now, self.policy)
        if self.times is not None:
            for event in events:
                self.times.update(self.state, event)
        del self.holding[window]
        self.busy += minute - called
        self.last = max(self.last, minute)
        self.free(window, minute)

    def free(self, window: str, minute: float) -> None:
        """The window is free at ``minute``: take a requested pause, else call the next ticket."""
        since = self.idle.pop(window, minute)
        requests = self.pending[window]
        if requests and requests[-1][0] <= minute and minute < self.workload.horizon:
            _, length = requests.pop()
            execute(
                self.state,
                Pause(window=window, by=self.staff[window], reason="break"),
                self.at(minute),
                self.policy,
            )
            self.paused += length
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
            self.push(minute + visitor.service, _FINISH, window)
