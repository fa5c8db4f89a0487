"""Weeks of a hall's life through the real core, for reports' tests and benchmarks: arrivals,
calls, recalls, no-shows, transfers, cancels, services and their outcomes, ratings from pads and
phones, pauses (some too long, recorded as breaches, some excused), late logins, and every bad
rating's case stepped by managers over the following days (some left to go overdue).

Every command goes through :func:`hall.domain.decide.execute` on a virtual clock, so the events
are what a hall would journal. Everything random comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import heapq
import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from hall.domain import rating
from hall.domain.commands import (
    AnyCommand,
    CallNext,
    CancelTicket,
    ExcuseBreach,
    Finish,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    Pause,
    Rate,
    Recall,
    RecordBreach,
    Resume,
    Start,
    StepCase,
    Transfer,
)
from hall.domain.errors import HallError
from hall.domain.events import AnyEvent, Outcome, TicketIssued, WindowPaused
from hall.domain.oversight import Stage
from hall.domain.state import HallState, TicketState, WindowState
from scheduling.policy import Policy

LEVELS = ((5, 0.70), (4, 0.14), (3, 0.08), (2, 0.05), (1, 0.03))


@dataclass(frozen=True, slots=True)
class Plan:
    """What a day looks like: ``tickets`` arrivals spread over ``hours`` from ``opening``."""

    tickets: int
    opening: time = time(8, 30)
    hours: float = 8.0
    service_minutes: float = 8.0  # mean, exponential
    rated: float = 0.85  # share of finished transactions rated (a tenth of them by phone)
    not_rated: float = 0.05  # the pad records "not rated"
    no_show: float = 0.03
    transfer: float = 0.02
    cancel: float = 0.01
    pause: float = 0.02  # chance a window pauses when free
    pause_minutes: float = 12.0  # mean, exponential
    late_login: float = 0.05
    excuse: float = 0.3  # share of breaches a manager excuses
    step: float = 0.8  # chance a manager takes a case's next step on a given morning


class History:
    """Runs days on one state; ``staff[window]`` logs in at each window, ``managers`` (two)
    follow the cases and excuse breaches."""

    def __init__(
        self,
        state: HallState,
        policy: Policy,
        staff: dict[str, str],
        managers: tuple[str, str],
        rng: random.Random,
    ) -> None:
        self.state, self.policy, self.staff, self.managers = state, policy, staff, managers
        self.rng = rng
        self.events: list[AnyEvent] = []

    def run(self, command: AnyCommand, at: datetime) -> list[AnyEvent]:
        from hall.domain.decide import execute

        try:
            events = execute(self.state, command, at, self.policy)
        except HallError:
            return []
        self.events += events
        return events

    def days(self, days: Sequence[date], plan: Plan) -> Iterator[list[AnyEvent]]:
        """Each day's events, in order."""
        for day in days:
            self.events = []
            self.day(day, plan)
            yield self.events

    def day(self, day: date, plan: Plan) -> None:
        config, rng = self.state.config, self.rng
        opening = datetime.combine(day, plan.opening, config.tz).astimezone(UTC)
        closing = opening + timedelta(hours=plan.hours)
        self._cases(opening - timedelta(minutes=20), plan)
        heap: list[tuple[datetime, int, str, str]] = []
        seq = 0

        def push(at: datetime, kind: str, what: str) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(heap, (at, seq, kind, what))

        for window, username in self.staff.items():
            late = rng.random() < plan.late_login
            push(opening + timedelta(minutes=rng.uniform(15, 40) if late else 0), "login", window)
            del username
        gap = plan.hours * 3600 / plan.tickets
        categories = [c.id for c in config.categories]
        for i in range(plan.tickets):
            push(opening + timedelta(seconds=(i + rng.random()) * gap), "arrive", "")
        idle: set[str] = set()
        arrivals_left = plan.tickets
        while heap:
            at, _, kind, what = heapq.heappop(heap)
            if kind == "arrive":
                arrivals_left -= 1
                issued = self.run(
                    IssueTicket(category=rng.choice(categories), secret=secrets.token_hex(4)), at
                )
                ticket = next((e.ticket for e in issued if isinstance(e, TicketIssued)), None)
                if ticket is not None and rng.random() < plan.cancel:
                    push(at + timedelta(minutes=rng.uniform(1, 30)), "cancel", ticket)
                # Only the idle windows that serve it may call it (a big hall has many idle).
                category = next((e.category for e in issued if isinstance(e, TicketIssued)), "")
                for window in sorted(idle):
                    if category in self.state.windows[window].categories:
                        push(at, "free", window)
                        idle.discard(window)
            elif kind == "cancel":
                self.run(CancelTicket(ticket=what, reason="visitor", waiting_only=True), at)
            elif kind == "login":
                self._login(what, at, opening, plan)
                push(at, "free", what)
            else:
                nxt = self._step(what, kind, at, plan, closing)
                if nxt is None:
                    if arrivals_left:
                        idle.add(what)
                    else:
                        self.run(Logout(window=what, by=self.staff[what]), at)
                else:
                    push(nxt[0], nxt[1], what)
        for window in sorted(idle):  # waiting for visitors who did not come: the day is over
            self.run(Logout(window=window, by=self.staff[window]), closing)
        self._excuse(closing + timedelta(hours=2), opening - timedelta(hours=1), plan)

    def _login(self, window: str, at: datetime, opening: datetime, plan: Plan) -> None:
        username = self.staff[window]
        self.run(Login(window=window, by=username), at)
        grace = self.state.config.discipline.shift_grace_minutes
        late = (at - opening).total_seconds() / 60
        if late > grace:
            self.run(
                RecordBreach(
                    breach=f"late_login:{window}:{at.date()}",
                    rule="late_login",
                    window=window,
                    staff=username,
                    since=opening,
                    measured=round(late, 2),
                    limit=grace,
                    evidence=(self.state.version,),
                ),
                at,
            )

    def _step(
        self, window: str, kind: str, at: datetime, plan: Plan, closing: datetime
    ) -> tuple[datetime, str] | None:
        """The window's next move at ``at``; when and what after it (None: nothing to call)."""
        rng, username = self.rng, self.staff[window]
        status = self.state.windows[window]
        if kind == "resume":
            self.run(Resume(window=window, by=username), at)
            self._pause_breach(window, at)
        elif kind == "called":
            if rng.random() < plan.no_show:
                self.run(Recall(window=window, by=username), at)
                self.run(NoShow(window=window, by=username), at + timedelta(minutes=1))
                return at + timedelta(minutes=1), "free"
            self.run(Start(window=window, by=username), at)
            if rng.random() < plan.transfer and len(self.state.config.categories) > 1:
                other = rng.choice([c.id for c in self.state.config.categories])
                self.run(
                    Transfer(window=window, by=username, category=other), at + timedelta(minutes=1)
                )
                return at + timedelta(minutes=1), "free"
            service = rng.expovariate(1 / plan.service_minutes)
            return at + timedelta(minutes=service), "serving"
        elif kind == "serving":
            ticket = status.ticket
            draw = rng.random()
            outcome = (
                Outcome.DONE
                if draw < 0.9
                else Outcome.ACCEPTED
                if draw < 0.97
                else Outcome.RETURNED
            )
            self.run(Finish(window=window, by=username, outcome=outcome), at)
            if ticket is not None:
                self._rate(ticket, window, at + timedelta(seconds=20), plan)
            if rng.random() < plan.pause and at < closing:
                reason = rng.choice([r.code for r in self.state.config.pause_reasons])
                if self.run(Pause(window=window, by=username, reason=reason), at):
                    return at + timedelta(minutes=rng.expovariate(1 / plan.pause_minutes)), "resume"
        if status.state is not WindowState.OPEN:
            return None
        called = self.run(CallNext(window=window, by=username), at)
        if not called:
            return None
        return at + timedelta(seconds=rng.uniform(10, 60)), "called"

    def _rate(self, ticket_id: str, window: str, at: datetime, plan: Plan) -> None:
        rng = self.rng
        draw = rng.random()
        if draw >= plan.rated + plan.not_rated:
            return
        if draw >= plan.rated:
            self.run(Rate(ticket=ticket_id, level=None, by=f"pad-{window}", window=window), at)
            return
        u, level = rng.random(), 5
        for value, share in LEVELS:
            if u < share:
                level = value
                break
            u -= share
        reasons = (
            (rng.choice(self.state.config.rating.reasons).code,)
            if level in rating.LOW_LEVELS
            else ()
        )
        if rng.random() < 0.1:
            secret = self.state.tickets[ticket_id].secret
            self.run(
                Rate(ticket=ticket_id, level=level, reasons=reasons, by="visitor", secret=secret),
                at,
            )
        else:
            self.run(
                Rate(
                    ticket=ticket_id,
                    level=level,
                    reasons=reasons,
                    by=f"pad-{window}",
                    window=window,
                ),
                at,
            )

    def _pause_breach(self, window: str, at: datetime) -> None:
        """A pause over its reason's limit, recorded once it ends (the watcher would record it
        as the limit passed; the figures count it either way)."""
        paused = next(
            (
                e
                for e in reversed(self.events)
                if isinstance(e, WindowPaused) and e.window == window
            ),
            None,
        )
        if paused is None:
            return
        discipline = self.state.config.discipline
        limit = discipline.pause_limits.get(paused.reason, discipline.pause_minutes)
        minutes = (at - paused.at).total_seconds() / 60
        if limit and minutes > limit:
            self.run(
                RecordBreach(
                    breach=f"pause_too_long:{window}:{paused.at.isoformat()}",
                    rule="pause_too_long",
                    window=window,
                    staff=self.staff[window],
                    since=paused.at,
                    measured=round(minutes, 2),
                    limit=limit,
                    evidence=(self.state.version - 1, self.state.version),
                ),
                at,
            )

    def _excuse(self, at: datetime, since: datetime, plan: Plan) -> None:
        """A manager's evening: some of the day's breaches excused."""
        for breach in list(self.state.breaches.values()):
            if not breach.excused and breach.at >= since and self.rng.random() < plan.excuse:
                self.run(ExcuseBreach(breach=breach.id, reason="system", by=self.managers[0]), at)

    def _cases(self, at: datetime, plan: Plan) -> None:
        """A morning's follow-up: each open case from before may take its next step."""
        first, second = self.managers
        for case in sorted(self.state.cases.values(), key=lambda c: c.id):
            if (
                case.day >= at.astimezone(self.state.config.tz).date()
                or self.rng.random() >= plan.step
            ):
                continue
            match case.stage:
                case Stage.VERIFY:
                    valid = self.rng.random() < 0.8
                    command = StepCase(
                        case=case.id,
                        step="verify",
                        by=first,
                        valid=valid,
                        text="" if valid else "mistaken rating",
                    )
                case Stage.CONFIRM:
                    agree = self.rng.random() < 0.7
                    command = StepCase(
                        case=case.id,
                        step="confirm",
                        by=second,
                        valid=not agree,
                        text="agreed" if agree else "",
                    )
                case Stage.RECTIFY:
                    command = StepCase(
                        case=case.id, step="rectify", by=first, text="talked it over with the team"
                    )
                case Stage.REVISIT:
                    result = self.rng.choice(self.state.config.cases.revisit_results).code
                    command = StepCase(case=case.id, step="revisit", by=first, result=result)
                case Stage.CLOSE:
                    command = StepCase(case=case.id, step="close", by=first)
            self.run(command, at)


def working_days(first: date, count: int) -> list[date]:
    """``count`` weekdays from ``first`` on."""
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def finished(state: HallState) -> int:
    return sum(t.state is TicketState.FINISHED for t in state.tickets.values())
