"""Random command sequences, checking the hall's invariants after every step, under every calling
policy and along both paths a command takes: the pure ``execute`` (the simulator's) and the
engine's (a ``HallEngine`` on a ``MemoryJournal``: decide, append, apply).

Refusals (typed ``HallError``) are legitimate answers to random commands; anything else is a bug.
After each step the live state must be consistent on its own, and equal to a fold of every event
produced so far (what a restart replaying the journal would rebuild).

In CI (``CI`` set) the examples are the same every run (the ``ci`` profile of tests/conftest.py);
local runs draw new ones, and Hypothesis's database replays any failure they found.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hall.bus import Bus
from hall.domain.commands import (
    AnyCommand,
    CallNext,
    CancelTicket,
    ChangeProfile,
    Finish,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    Pause,
    Recall,
    Resume,
    Start,
    Transfer,
)
from hall.domain.decide import execute
from hall.domain.errors import HallError
from hall.domain.events import AnyEvent, DayStarted, Outcome, TicketIssued, decode, encode
from hall.domain.state import HallState, TicketState, WindowState, fold, queue_key
from hall.engine import HallEngine
from hall.journal.memory import MemoryJournal
from scheduling.policy import POLICIES, Policy, profile_order
from tests.unit.conftest import STAFF_SMALL, T0, WINDOWS_SMALL, small_hall

CONFIG = small_hall(daily_quota=12)  # small enough that random runs reach the quota
CATEGORIES = [c.id for c in CONFIG.categories]
PRIORITIES = ["normal", "normal", "normal", "green", "appointment"]

windows = st.sampled_from(WINDOWS_SMALL)
staff = st.sampled_from(STAFF_SMALL)
reasons = st.sampled_from(["break", "meeting", "other"])

HOLDING = {WindowState.CALLING: TicketState.CALLED, WindowState.SERVING: TicketState.SERVING}

# What staff usually do next at a window in each state (repeats weigh the choice).
NEXT_MOVES: dict[WindowState, list[str]] = {
    WindowState.OPEN: ["call"] * 8 + ["pause", "logout"],
    WindowState.CALLING: ["start"] * 5 + ["recall", "recall", "no_show", "transfer"],
    WindowState.SERVING: ["finish"] * 6 + ["transfer"],
    WindowState.PAUSED: ["resume"] * 3 + ["logout"],
}
ANY_MOVE = sorted({move for moves in NEXT_MOVES.values() for move in moves})


class HallMachine(RuleBasedStateMachine):
    def __init__(self, policy: Policy = profile_order, engine: bool = False) -> None:
        super().__init__()
        self.policy = policy
        self.now = T0
        self.log: list[AnyEvent] = []
        self.ticket_ids: list[str] = []  # every ticket ever issued, to cancel old ones too
        self.refusals: Counter[str] = Counter()
        self.pure_state = HallState.initial(CONFIG)
        self.engine: HallEngine | None = None
        if engine:
            self.loop = asyncio.new_event_loop()
            self.journal = MemoryJournal()
            self.engine = HallEngine(
                CONFIG,
                self.journal,
                Bus(),
                policy=policy,
                clock=lambda: self.now,
                day_check_seconds=10**6,  # the day turns by the commands, as on the pure path
            )
            self.loop.run_until_complete(self.engine.start())

    @property
    def state(self) -> HallState:
        return self.pure_state if self.engine is None else self.engine.state

    # ------------------------------------------------------------------ driving

    def run(self, command: AnyCommand) -> None:
        if self.engine is None:
            try:
                events = execute(self.pure_state, command, self.now, self.policy)
            except HallError as error:
                self.refusals[error.code] += 1
                return
        else:
            try:
                self.loop.run_until_complete(self.engine.execute(command))
            except HallError as error:
                self.refusals[error.code] += 1
            # What the journal got, the turn of a day included (which stands even when the
            # command after it is refused).
            records = self.loop.run_until_complete(self.journal.read(CONFIG.hall.id, len(self.log)))
            events = [record.event for record in records]
        if events and isinstance(events[0], DayStarted):
            self.check_turn_of_day(events[0])
        self.log.extend(events)
        self.ticket_ids.extend(e.ticket for e in events if isinstance(e, TicketIssued))

    def check_turn_of_day(self, started: DayStarted) -> None:
        """Right after a new day starts, nothing of an earlier day waits or is called."""
        turned = fold(CONFIG, [*self.log, started])
        assert turned.day == started.day
        assert turned.sequences == {}
        for ticket in turned.tickets.values():
            assert ticket.day < started.day  # nothing issued yet today
            assert ticket.state is TicketState.SERVING, ticket
        assert not any(turned.queues.values()), turned.queues

    def move(self, data: st.DataObject, name: str, window: str, by: str) -> None:
        """One window command, its arguments drawn from ``data``."""
        command: AnyCommand
        match name:
            case "call":
                command = CallNext(window=window, by=by)
            case "recall":
                command = Recall(window=window, by=by)
            case "start":
                command = Start(window=window, by=by)
            case "finish":
                outcome = data.draw(st.sampled_from(Outcome))
                command = Finish(window=window, by=by, outcome=outcome)
            case "no_show":
                command = NoShow(window=window, by=by)
            case "transfer":
                category = data.draw(st.none() | st.sampled_from(CATEGORIES))
                to_window = data.draw(st.none() | windows)
                command = Transfer(window=window, by=by, category=category, to_window=to_window)
            case "pause":
                command = Pause(window=window, by=by, reason=data.draw(reasons))
            case "resume":
                command = Resume(window=window, by=by)
            case "logout":
                command = Logout(window=window, by=by)
            case _:
                raise AssertionError(name)
        self.run(command)

    def staffed_windows(self) -> list[str]:
        return [w.id for w in self.state.windows.values() if w.staff is not None]

    def closed_windows(self) -> list[str]:
        return [w.id for w in self.state.windows.values() if w.state is WindowState.CLOSED]

    def free_staff(self) -> list[str]:
        return [u for u in STAFF_SMALL if u not in self.state.staff_at]

    @staticmethod
    def may_work(username: str, window: str) -> bool:
        member = CONFIG.staff_member(username)
        return member is not None and (not member.windows or window in member.windows)

    # ------------------------------------------------------------------ rules

    @initialize(late=st.integers(0, 15 * 3600 - 1))
    def open_the_day(self, late: int) -> None:
        """Start between 09:00 and midnight, Shanghai time."""
        self.now = T0 + timedelta(seconds=late)

    @rule(
        category=st.sampled_from(CATEGORIES),
        priority=st.sampled_from(PRIORITIES),
        count=st.integers(1, 3),
    )
    def issue(self, category: str, priority: str, count: int) -> None:
        for _ in range(count):
            self.run(IssueTicket(category=category, priority=priority))

    @precondition(lambda self: bool(self.free_staff() and self.closed_windows()))
    @rule(data=st.data())
    def login_where_allowed(self, data: st.DataObject) -> None:
        window = data.draw(st.sampled_from(self.closed_windows()))
        allowed = [u for u in self.free_staff() if self.may_work(u, window)]
        if allowed:
            self.run(Login(window=window, by=data.draw(st.sampled_from(allowed))))

    @precondition(lambda self: bool(self.staffed_windows()))
    @rule(data=st.data(), steps=st.integers(1, 8))
    def work(self, data: st.DataObject, steps: int) -> None:
        """A few usual moves at staffed windows: call, start, finish, pause..."""
        for _ in range(steps):
            if not self.staffed_windows():
                return
            window = self.state.windows[data.draw(st.sampled_from(self.staffed_windows()))]
            assert window.staff is not None
            self.move(
                data, data.draw(st.sampled_from(NEXT_MOVES[window.state])), window.id, window.staff
            )

    @rule(data=st.data(), name=st.sampled_from(ANY_MOVE), window=windows, owner=st.booleans())
    def any_move(self, data: st.DataObject, name: str, window: str, owner: bool) -> None:
        """Any window command at any window, by its staff or by anyone: mostly refused."""
        current = self.state.windows[window].staff
        by = current if owner and current is not None else data.draw(staff)
        self.move(data, name, window, by)

    @rule(data=st.data(), what=st.sampled_from(["cancel", "profile", "unknown", "login"]))
    def now_and_then(self, data: st.DataObject, what: str) -> None:
        """Rarer commands, in one rule so that they do not crowd out the daily work."""
        match what:
            case "cancel" if self.ticket_ids:
                self.run(CancelTicket(ticket=data.draw(st.sampled_from(self.ticket_ids))))
            case "profile":
                window = data.draw(windows)
                order = data.draw(st.permutations(CATEGORIES))
                categories = tuple(order[: data.draw(st.integers(1, len(order)))])
                self.run(ChangeProfile(window=window, categories=categories, by="boss"))
            case "unknown":
                self.run(IssueTicket(category="unknown"))
                self.run(
                    IssueTicket(category=data.draw(st.sampled_from(CATEGORIES)), priority="vip")
                )
            case _:
                self.run(Login(window=data.draw(windows), by=data.draw(staff)))

    @rule(
        step=st.sampled_from([600] * 6 + [6 * 3600] * 2 + [40 * 3600]).flatmap(
            # seconds: mostly the pace of a busy hall, then a slow afternoon, then over
            # midnight or a whole day later
            lambda longest: st.integers(0, longest)
        )
    )
    def advance_clock(self, step: int) -> None:
        self.now += timedelta(seconds=step)

    @rule(before=st.integers(1, 1200))
    def late_evening(self, before: int) -> None:
        """Jump to a few minutes before the next local midnight: the busy hall meets the turn."""
        local = self.now.astimezone(CONFIG.tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(), CONFIG.tz)
        self.now = max(self.now, midnight - timedelta(seconds=before))

    @rule(step=st.integers(1, 120))
    def clock_steps_back(self, step: int) -> None:
        """A wall clock corrected by NTP: now and then it goes back a little, midnight or not."""
        self.now -= timedelta(seconds=step)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def windows_and_tickets_agree(self) -> None:
        state = self.state
        holders: Counter[str] = Counter()
        for window in state.windows.values():
            if window.state in HOLDING:
                assert window.ticket is not None, window
                ticket = state.tickets[window.ticket]
                assert ticket.window == window.id, (window, ticket)
                assert ticket.state is HOLDING[window.state], (window, ticket)
                holders[window.ticket] += 1
            else:
                assert window.ticket is None, window
            assert (window.staff is None) == (window.state is WindowState.CLOSED), window
            if window.state is not WindowState.PAUSED:
                assert window.pause_reason is None, window
        assert all(count == 1 for count in holders.values()), holders
        for ticket in state.tickets.values():
            held = ticket.state in (TicketState.CALLED, TicketState.SERVING)
            assert (ticket.window is not None) == held, ticket
            if held:
                assert holders[ticket.id] == 1, ticket

    @invariant()
    def staff_work_at_one_window(self) -> None:
        state = self.state
        logged_in = {w.staff: w.id for w in state.windows.values() if w.staff is not None}
        assert len(logged_in) == sum(w.staff is not None for w in state.windows.values())
        assert state.staff_at == logged_in
        for username, window_id in logged_in.items():
            member = CONFIG.staff_member(username)
            assert member is not None
            assert not member.windows or window_id in member.windows

    @invariant()
    def numbers_are_unique_per_category_and_day(self) -> None:
        issued = [e for e in self.log if isinstance(e, TicketIssued)]
        assert len({e.ticket for e in issued}) == len(issued)
        assert len({(e.day, e.number) for e in issued}) == len(issued)
        per_day: dict[tuple[object, str], list[int]] = {}
        for event in issued:
            per_day.setdefault((event.day, event.category), []).append(event.seq)
            assert event.number == f"{CONFIG.category(event.category).prefix}{event.seq:03d}"  # type: ignore[union-attr]
        for seqs in per_day.values():
            assert seqs == list(range(1, len(seqs) + 1)), seqs  # 1, 2, 3... with no gap
        today = {cat: max(seqs) for (day, cat), seqs in per_day.items() if day == self.state.day}
        assert self.state.sequences == today

    @invariant()
    def queued_iff_waiting_in_arrival_order(self) -> None:
        state = self.state
        placed: Counter[str] = Counter()
        for key, queue in state.queues.items():
            assert not key.startswith("@") or queue, f"empty targeted queue {key} kept"
            keys = [state.tickets[t].order_key for t in queue]
            assert keys == sorted(keys), (key, queue)
            for ticket_id in queue:
                placed[ticket_id] += 1
                assert queue_key(state.tickets[ticket_id]) == key
        waiting = {t.id for t in state.tickets.values() if t.state is TicketState.WAITING}
        assert set(placed) == waiting
        assert all(count == 1 for count in placed.values())
        # The lanes index the same tickets, split by priority, each in arrival order.
        assert state.lanes.keys() == state.queues.keys()
        for key, queue in state.queues.items():
            by_class = {
                p: [t for t in queue if state.tickets[t].priority == p] for p in state.lanes[key]
            }
            assert {p: ids for p, ids in state.lanes[key].items() if ids} == {
                p: ids for p, ids in by_class.items() if ids
            }, key
            assert sum(map(len, state.lanes[key].values())) == len(queue), key

    @invariant()
    def tickets_of_earlier_days(self) -> None:
        # Yesterday's waiting and called tickets expired at the turn of the day, unless they
        # came back to a queue today (a transfer of a service that ran over midnight).
        state = self.state
        for ticket in state.tickets.values():
            assert state.day is not None and ticket.day <= state.day
            if ticket.day < state.day and ticket.state is TicketState.WAITING:
                assert ticket.transfers > 0, ticket

    @invariant()
    def replay_rebuilds_the_live_state(self) -> None:
        assert self.state.version == len(self.log)
        assert fold(CONFIG, self.log) == self.state

    def teardown(self) -> None:
        try:
            # The journal stores events as JSON: the round trip must rebuild the same state too.
            decoded = [decode(encode(event)) for event in self.log]
            assert fold(CONFIG, decoded) == self.state
        finally:
            if self.engine is not None:
                self.loop.run_until_complete(self.engine.stop())
                self.loop.run_until_complete(self.journal.close())
                self.loop.close()


# No seed and no database here: the profile loaded by tests/conftest.py decides (fixed in CI).
SETTINGS = settings(
    max_examples=10,  # each of 10 runs (5 policies, 2 paths): 100 in all, ~20 s as before
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("path", ["execute", "engine"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_on_both_paths(policy: str, path: str) -> None:
    run_state_machine_as_test(
        lambda: HallMachine(POLICIES[policy], engine=path == "engine"), settings=SETTINGS
    )


def test_ci_repeats_and_local_runs_explore() -> None:
    assert SETTINGS.derandomize == bool(os.environ.get("CI"))
