"""The discipline watcher (纪律): finds breaches of the hall's discipline rules in its events and
the passing of time, and answers each as a ``RecordBreach`` command, once. Pure: no I/O, no clock
of its own (``tick`` is told the time).

It keeps its own small fold of what the rules need (each window's state, staff and running
timers; how many tickets wait in each queue) rather than reading ``HallState`` for it: an
engine's after-batch hook sees the state after a whole batch, not after each event, and a watcher
rebuilt at start-up replays the day's events against the state at its end. Either would place an
onset (the moment a window became idle with people waiting) at the wrong time. From the state it
reads only what those do not change: the config, the windows' profiles and the breaches already
on record.

A rule with a threshold of 0 is off. A duration must be strictly longer than its limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hall.config import WEEKDAYS, HallConfig, parse_clock
from hall.domain.commands import RecordBreach
from hall.domain.events import (
    AnyEvent,
    BreachRecorded,
    DayStarted,
    ProfileChanged,
    ServiceFinished,
    ServiceStarted,
    TicketCalled,
    TicketCancelled,
    TicketIssued,
    TicketNoShow,
    TicketTransferred,
    WindowClosed,
    WindowOpened,
    WindowPaused,
    WindowResumed,
)
from hall.domain.state import HallState, WindowState, targeted_queue
from scheduling.calendar import business_day

PAUSE = "pause_too_long"
PAUSE_TOTAL = "pause_total"
IDLE = "idle_with_queue"
SERVICE = "service_too_long"
NO_SHOWS = "repeated_no_shows"
LATE = "late_login"
EARLY = "early_logout"
CALL = "call_not_started"

MINUTE = 60.0  # seconds in a measured minute
SECOND = 1.0


@dataclass(slots=True)
class _Timer:
    """Something that began at a window and breaks ``rule`` once it lasts longer than
    ``limit`` (in seconds); ``unit``: seconds per unit of the breach's figures."""

    rule: str
    breach: str
    version: int  # of the event that began it (0: began before what this watcher saw)
    since: datetime
    staff: str | None
    limit: float
    unit: float


@dataclass(slots=True)
class _Desk:
    """One window, as the rules see it."""

    state: WindowState = WindowState.CLOSED
    staff: str | None = None
    ticket: str | None = None
    timers: dict[str, _Timer] = field(default_factory=dict)  # by rule
    closed_since: datetime | None = None  # None: not open since the watcher began
    # Today's pauses: the time of those ended, where the running one counts from, their versions.
    paused: float = 0.0
    pause_from: datetime | None = None
    pauses: list[int] = field(default_factory=list)
    first_pause: datetime | None = None
    no_shows: list[tuple[datetime, int]] = field(default_factory=list)  # not yet in a breach
    # A logout before a shift's end, decided at that end: (version, at, staff, end).
    leaving: tuple[int, datetime, str | None, datetime] | None = None


class Watcher:
    def __init__(self, config: HallConfig) -> None:
        self.config = config
        self.rules = config.discipline
        self._desks: dict[str, _Desk] = {w.id: _Desk() for w in config.windows}
        self._done: set[str] = set()  # breach ids produced or seen recorded
        self._counts: dict[str, int] = {}  # waiting tickets per queue (a category or "@window")
        self._queue_of: dict[str, str] = {}  # each waiting ticket's queue
        self._category: dict[str, str] = {}  # today's tickets' categories
        self._holder: dict[str, str] = {}  # ticket -> the window holding it (called, serving)
        self._profiles: dict[str, tuple[str, ...]] | None = None  # read from the state once
        self._serving: dict[str, set[str]] = {}  # queue -> windows that call from it
        self._day: date | None = None
        self._shifts: list[tuple[datetime, datetime]] = []
        self._leaving: set[str] = set()  # windows with a logout to decide at a shift's end
        self._recheck: set[str] = set()  # windows whose idleness an event may have changed
        self._open: set[str] = set()  # windows open and idle (only they may idle with a queue)

    # -- the interface ------------------------------------------------------------------------

    def observe(self, state: HallState, version: int, event: AnyEvent) -> list[RecordBreach]:
        """The breaches ``event`` (at ``version``, already applied to ``state``) shows."""
        if self._profiles is None:
            self._index(state)
        if self._day is None and not isinstance(event, DayStarted):
            self._new_day(business_day(self.config, event.at))
        found: list[RecordBreach | None] = []
        at = event.at
        match event:
            case DayStarted(day=day, expired=expired):
                for ticket in expired:
                    self._dequeue(ticket)
                    found += self._leave(ticket, at, version)
                self._new_day(day, at)
            case TicketIssued(ticket=ticket, category=category):
                self._category[ticket] = category
                self._enqueue(ticket, category)
            case TicketCalled(ticket=ticket, window=window):
                self._dequeue(ticket)
                desk = self._desks.get(window)
                if desk is not None:
                    self._holder[ticket] = window
                    desk.ticket = ticket
                    self._set(window, desk, WindowState.CALLING)
                    limit = float(self.rules.call_start_seconds)
                    self._start(window, CALL, version, at, limit, SECOND)
            case ServiceStarted(ticket=ticket, window=window):
                desk = self._desks.get(window)
                if desk is not None:
                    found.append(self._stop(state, window, CALL, at, version))
                    self._set(window, desk, WindowState.SERVING)
                    limit = self._service_limit(self._category_of(state, ticket))
                    self._start(window, SERVICE, version, at, limit, MINUTE)
            case ServiceFinished(ticket=ticket) | TicketCancelled(ticket=ticket):
                self._dequeue(ticket)
                found += self._leave(ticket, at, version, state)
            case TicketNoShow(ticket=ticket, window=window):
                found += self._leave(ticket, at, version, state)
                found.append(self._no_show(state, window, at, version))
            case TicketTransferred(ticket=ticket, category=category, to_window=to):
                found += self._leave(ticket, at, version, state)
                self._category[ticket] = category
                queue = targeted_queue(to) if to is not None and to in self._desks else category
                self._enqueue(ticket, queue)
            case WindowOpened(window=window, staff=staff, by=by):
                desk = self._desks.get(window)
                if desk is not None:
                    if by is None:
                        found.append(self._late(state, window, desk, staff, at, version))
                    desk.staff, desk.ticket, desk.leaving = staff, None, None
                    self._set(window, desk, WindowState.OPEN)
                    self._leaving.discard(window)
            case WindowPaused(window=window, reason=reason):
                desk = self._desks.get(window)
                if desk is not None:
                    self._set(window, desk, WindowState.PAUSED)
                    limit = self.rules.pause_limits.get(reason, self.rules.pause_minutes) * MINUTE
                    self._start(window, PAUSE, version, at, limit, MINUTE)
                    desk.pause_from = at
                    desk.pauses.append(version)
                    desk.first_pause = desk.first_pause or at
            case WindowResumed(window=window):
                found += self._end_pause(state, window, at, version)
                desk = self._desks.get(window)
                if desk is not None:
                    self._set(window, desk, WindowState.OPEN)
            case WindowClosed(window=window, by=by, ticket=held):
                found += self._end_pause(state, window, at, version)
                if held is not None:
                    found += self._leave(held, at, version, state)
                    self._enqueue(held, self._category_of(state, held))
                for ticket, queue in list(self._queue_of.items()):
                    if queue == targeted_queue(window):  # sent to it by name: back to category
                        self._dequeue(ticket)
                        self._enqueue(ticket, self._category_of(state, ticket))
                desk = self._desks.get(window)
                if desk is not None:
                    if by is None:
                        self._logout(window, desk, at, version)
                    desk.staff, desk.ticket = None, None
                    self._set(window, desk, WindowState.CLOSED)
                    desk.closed_since = at
            case ProfileChanged(window=window, categories=categories):
                if window in self._desks:
                    self._profile(window, categories)
            case BreachRecorded(breach=breach):
                self._done.add(breach)
            case _:
                pass
        named = getattr(event, "window", None)
        if isinstance(named, str):
            self._recheck.add(named)
        for desk_id in self._recheck:
            found += self._idle(state, desk_id, at, version)
        self._recheck.clear()
        found += self._logouts(state, at)
        return [breach for breach in found if breach is not None]

    def tick(self, state: HallState, now: datetime) -> list[RecordBreach]:
        """The breaches that the passing of time to ``now`` makes, with no event."""
        if self._profiles is None:
            self._index(state)
        found: list[RecordBreach | None] = []
        for window, desk in self._desks.items():
            for timer in desk.timers.values():
                if timer.breach in self._done:
                    continue
                if (now - timer.since).total_seconds() > timer.limit:
                    found.append(self._timer_breach(state, window, timer, now, ()))
            if desk.pause_from is not None:
                found.append(self._pause_total(state, window, desk, now))
        found += self._logouts(state, now)
        return [breach for breach in found if breach is not None]

    def resume(self, state: HallState, window: str, version: int) -> None:
        """Take ``window`` as ``state`` has it, for a watcher rebuilt from the events after
        ``version`` that name the window nowhere (it has been as it is since before them)."""
        status, desk = state.windows.get(window), self._desks.get(window)
        if status is None or desk is None or status.since is None:
            return
        desk.staff, desk.ticket = status.staff, status.ticket
        self._set(window, desk, status.state)
        since = status.since
        rules = self.rules
        if status.state is WindowState.PAUSED:
            reason = status.pause_reason or ""
            limit = rules.pause_limits.get(reason, rules.pause_minutes) * MINUTE
            self._start(window, PAUSE, 0, since, limit, MINUTE, base=version)
            desk.pause_from, desk.first_pause = since, since
        held = state.tickets.get(status.ticket) if status.ticket else None
        if held is not None:
            self._holder[held.id] = window
            self._category[held.id] = held.category
            if held.started_at is not None:
                limit = self._service_limit(held.category)
                self._start(window, SERVICE, 0, held.started_at, limit, MINUTE, base=version)
            elif held.called_at is not None:
                limit = float(rules.call_start_seconds)
                self._start(window, CALL, 0, held.called_at, limit, SECOND, base=version)

    # -- timers ---------------------------------------------------------------------------------

    def _start(
        self,
        window: str,
        rule: str,
        version: int,
        since: datetime,
        limit: float,
        unit: float,
        *,
        base: int = 0,
    ) -> None:
        """A timer of ``rule`` from ``since`` (a limit of 0: the rule is off)."""
        desk = self._desks[window]
        desk.timers.pop(rule, None)
        if limit > 0:
            breach = f"{rule}:{window}:{version or base}"
            desk.timers[rule] = _Timer(rule, breach, version, since, desk.staff, limit, unit)

    def _stop(
        self, state: HallState, window: str, rule: str, at: datetime, version: int
    ) -> RecordBreach | None:
        """End ``rule``'s timer at ``window``: a breach if it ran too long."""
        desk = self._desks.get(window)
        timer = desk.timers.pop(rule, None) if desk is not None else None
        if timer is None or (at - timer.since).total_seconds() <= timer.limit:
            return None
        return self._timer_breach(state, window, timer, at, (version,))

    def _timer_breach(
        self, state: HallState, window: str, timer: _Timer, at: datetime, end: tuple[int, ...]
    ) -> RecordBreach | None:
        evidence = ((timer.version,) if timer.version else ()) + end
        seconds = (at - timer.since).total_seconds()
        return self._breach(
            state,
            timer.breach,
            timer.rule,
            window,
            timer.staff,
            timer.since,
            seconds / timer.unit,
            timer.limit / timer.unit,
            evidence,
            known_since=timer.version == 0,
        )

    def _breach(
        self,
        state: HallState,
        breach: str,
        rule: str,
        window: str,
        staff: str | None,
        since: datetime,
        measured: float,
        limit: float,
        evidence: tuple[int, ...],
        *,
        known_since: bool = False,
    ) -> RecordBreach | None:
        """The command recording a breach, or None when it was found (or recorded) before.
        ``known_since``: a breach of something begun before the events this watcher saw, whose
        id may differ from the one recorded then: the same rule, window and start is the same
        breach."""
        recorded = breach in self._done or breach in state.breaches
        if not recorded and known_since:
            recorded = any(
                b.rule == rule and b.window == window and b.since == since
                for b in state.breaches.values()
            )
        self._done.add(breach)
        if recorded:
            return None
        return RecordBreach(
            breach=breach,
            rule=rule,
            window=window,
            staff=staff,
            since=since,
            measured=round(measured, 3),
            limit=round(limit, 3),
            evidence=evidence,
        )

    # -- the rules ------------------------------------------------------------------------------

    def _service_limit(self, category_id: str) -> float:
        """Seconds a transaction of the category may last (0: no limit)."""
        category = self.config.category(category_id)
        if category is None:
            return 0.0
        if category.max_service_minutes is not None:
            return category.max_service_minutes * MINUTE
        return self.rules.service_factor * category.mean_service_minutes * MINUTE

    def _leave(
        self, ticket: str, at: datetime, version: int, state: HallState | None = None
    ) -> list[RecordBreach | None]:
        """The ticket leaves the window holding it (finished, no-show, transferred...)."""
        window = self._holder.pop(ticket, None)
        desk = self._desks.get(window) if window is not None else None
        if window is None or desk is None or desk.ticket != ticket:
            return []
        desk.ticket = None
        self._set(window, desk, WindowState.OPEN)
        if state is None:  # a day's expiry: the rules of yesterday's calls are yesterday's
            desk.timers.pop(CALL, None)
            desk.timers.pop(SERVICE, None)
            return []
        return [self._stop(state, window, rule, at, version) for rule in (CALL, SERVICE)]

    def _end_pause(
        self, state: HallState, window: str, at: datetime, version: int
    ) -> list[RecordBreach | None]:
        desk = self._desks.get(window)
        if desk is None or desk.pause_from is None:
            return []
        found = [
            self._stop(state, window, PAUSE, at, version),
            self._pause_total(state, window, desk, at),
        ]
        desk.paused += (at - desk.pause_from).total_seconds()
        desk.pause_from = None
        return found

    def _pause_total(
        self, state: HallState, window: str, desk: _Desk, now: datetime
    ) -> RecordBreach | None:
        limit = self.rules.pause_total_minutes * MINUTE
        if not limit or self._day is None or desk.pause_from is None:
            return None
        breach = f"{PAUSE_TOTAL}:{window}:{self._day.isoformat()}"
        total = desk.paused + (now - desk.pause_from).total_seconds()
        if total <= limit or breach in self._done:
            return None
        since = desk.first_pause or desk.pause_from
        evidence = tuple(desk.pauses)
        return self._breach(
            state,
            breach,
            PAUSE_TOTAL,
            window,
            desk.staff,
            since,
            total / MINUTE,
            limit / MINUTE,
            evidence,
        )

    def _no_show(
        self, state: HallState, window: str, at: datetime, version: int
    ) -> RecordBreach | None:
        desk = self._desks.get(window)
        skips = self.rules.skips
        if desk is None or not skips:
            return None
        span = timedelta(minutes=self.rules.skip_minutes)
        desk.no_shows = [(t, v) for t, v in desk.no_shows if at - t <= span]
        desk.no_shows.append((at, version))
        if len(desk.no_shows) < skips:
            return None
        counted, desk.no_shows = desk.no_shows, []  # each no-show counts in one breach only
        since, first = counted[0]
        return self._breach(
            state,
            f"{NO_SHOWS}:{window}:{first}",
            NO_SHOWS,
            window,
            desk.staff,
            since,
            float(len(counted)),
            float(skips),
            tuple(v for _, v in counted),
        )

    def _idle(
        self, state: HallState, window: str, at: datetime, version: int
    ) -> list[RecordBreach | None]:
        """Start or stop the window's idle-with-queue timer as its condition now holds."""
        desk = self._desks.get(window)
        if desk is None:
            return []
        idle = desk.state is WindowState.OPEN and self._callable(window) > 0
        if idle and IDLE not in desk.timers:
            self._start(window, IDLE, version, at, float(self.rules.idle_seconds), SECOND)
        elif not idle and IDLE in desk.timers:
            return [self._stop(state, window, IDLE, at, version)]
        return []

    def _late(
        self,
        state: HallState,
        window: str,
        desk: _Desk,
        staff: str,
        at: datetime,
        version: int,
    ) -> RecordBreach | None:
        """A login later than grace into a shift the window was closed at the start of."""
        grace = self.rules.shift_grace_minutes * MINUTE
        for start, end in self._shifts:
            if not grace or not start <= at < end:
                continue
            closed_at_start = desk.state is WindowState.CLOSED and (
                desk.closed_since is None or desk.closed_since <= start
            )
            late = (at - start).total_seconds()
            if closed_at_start and late > grace:
                breach = f"{LATE}:{window}:{version}"
                return self._breach(
                    state,
                    breach,
                    LATE,
                    window,
                    staff,
                    start,
                    late / MINUTE,
                    grace / MINUTE,
                    (version,),
                )
        return None

    def _logout(self, window: str, desk: _Desk, at: datetime, version: int) -> None:
        """A staff logout inside a shift, more than grace before its end: a breach if the window
        stays closed until that end."""
        grace = self.rules.shift_grace_minutes * MINUTE
        for start, end in self._shifts:
            if grace and start <= at < end and (end - at).total_seconds() > grace:
                desk.leaving = (version, at, desk.staff, end)
                self._leaving.add(window)

    def _logouts(self, state: HallState, now: datetime) -> list[RecordBreach | None]:
        found: list[RecordBreach | None] = []
        for window in list(self._leaving):
            desk = self._desks[window]
            if desk.leaving is None:
                self._leaving.discard(window)
                continue
            version, at, staff, end = desk.leaving
            if now < end:
                continue
            desk.leaving = None
            self._leaving.discard(window)
            grace = self.rules.shift_grace_minutes
            early = (end - at).total_seconds() / MINUTE
            breach = f"{EARLY}:{window}:{version}"
            found.append(
                self._breach(state, breach, EARLY, window, staff, at, early, grace, (version,))
            )
        return found

    # -- the day, the queues, the profiles ------------------------------------------------------

    def _new_day(self, day: date, at: datetime | None = None) -> None:
        """Per-day accounting starts again (pause totals, no-shows, shifts)."""
        self._day = day
        self._shifts = self._shifts_of(day)
        self._leaving.clear()
        running = {t.breach for d in self._desks.values() for t in d.timers.values()}
        self._done &= running  # older ones are on record: the state's breaches answer for them
        keep = set(self._holder) | set(self._queue_of)
        self._category = {t: c for t, c in self._category.items() if t in keep}
        for desk in self._desks.values():
            desk.paused, desk.pauses, desk.no_shows, desk.leaving = 0.0, [], [], None
            desk.first_pause = None
            if desk.pause_from is not None and at is not None:
                desk.pause_from = desk.first_pause = at
                pause = desk.timers.get(PAUSE)
                if pause is not None and pause.version:
                    desk.pauses.append(pause.version)

    def _shifts_of(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's opening periods in the hall's time zone (none on a holiday)."""
        if day in self.config.calendar.holidays:
            return []
        weekday, tz = WEEKDAYS[day.weekday()], self.config.tz
        return [
            (
                datetime.combine(day, parse_clock(period.open), tz),
                datetime.combine(day, parse_clock(period.close), tz),
            )
            for period in self.config.hours.periods
            if weekday in period.days
        ]

    def _category_of(self, state: HallState, ticket: str) -> str:
        known = self._category.get(ticket)
        if known is None:
            held = state.tickets.get(ticket)
            known = held.category if held is not None else ""
        return known

    def _set(self, window: str, desk: _Desk, state: WindowState) -> None:
        desk.state = state
        if state is WindowState.OPEN:
            self._open.add(window)
        else:
            self._open.discard(window)

    def _enqueue(self, ticket: str, queue: str) -> None:
        self._queue_of[ticket] = queue
        count = self._counts.get(queue, 0) + 1
        self._counts[queue] = count
        if count == 1:  # only a queue's emptiness changes who idles with people waiting
            self._recheck.update(self._open.intersection(self._serving.get(queue, ())))

    def _dequeue(self, ticket: str) -> None:
        queue = self._queue_of.pop(ticket, None)
        if queue is None:
            return
        count = self._counts[queue] - 1
        self._counts[queue] = count
        if count == 0:
            self._recheck.update(self._open.intersection(self._serving.get(queue, ())))

    def _callable(self, window: str) -> int:
        assert self._profiles is not None
        counts = self._counts
        waiting = counts.get(targeted_queue(window), 0)
        for category in self._profiles.get(window, ()):
            waiting += counts.get(category, 0)
        return waiting

    def _index(self, state: HallState) -> None:
        self._profiles = {}
        for window in self._desks:
            status = state.windows.get(window)
            self._profile(window, status.categories if status is not None else ())

    def _profile(self, window: str, categories: tuple[str, ...]) -> None:
        assert self._profiles is not None
        for queue in self._profiles.get(window, ()):
            self._serving[queue].discard(window)
        self._profiles[window] = categories
        for queue in (targeted_queue(window), *categories):
            self._serving.setdefault(queue, set()).add(window)
        self._recheck.add(window)
