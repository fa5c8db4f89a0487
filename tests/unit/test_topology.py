"""The cached topology (open windows per category) follows every change of the windows' layout
through the core, and only those: it is never stale, and not rebuilt when nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hall.domain.commands import (
    AnyCommand,
    CallNext,
    ChangeProfile,
    ForceClose,
    IssueTicket,
    Login,
    Logout,
    Pause,
    Resume,
)
from hall.domain.decide import execute
from hall.domain.state import HallState, WindowState
from scheduling.policy import POLICIES
from scheduling.simulator import sim_config
from scheduling.topology import topology
from scheduling.workloads import hall_config

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def counted(state: HallState) -> dict[str, tuple[str, ...]]:
    """The open windows per category, counted from scratch."""
    serving: dict[str, list[str]] = {}
    for window in state.windows.values():
        if window.state is not WindowState.CLOSED:
            for category in window.categories:
                serving.setdefault(category, []).append(window.id)
    return {c: tuple(ws) for c, ws in serving.items()}


def test_the_topology_follows_logins_closes_and_profile_changes() -> None:
    config = sim_config(
        hall_config("topology", [("a", 5.0, 15), ("b", 5.0, 15)], [["a"], ["a", "b"], ["b"]])
    )
    state = HallState.initial(config)
    minute = 0

    def run(command: AnyCommand) -> None:
        nonlocal minute
        minute += 1
        execute(state, command, START + timedelta(minutes=minute), POLICIES["deadline"])

    assert topology(state).serving == {}
    steps: list[tuple[AnyCommand, bool]] = [  # (command, whether the layout changes)
        (Login(window="1", by="sim0"), True),
        (Login(window="2", by="sim1"), True),
        (IssueTicket(category="a"), False),
        (CallNext(window="1", by="sim0"), False),
        (Pause(window="2", by="sim1", reason="break"), False),  # paused is not closed
        (Resume(window="2", by="sim1"), False),
        (ChangeProfile(window="2", categories=("b",), by="manager"), True),
        (ChangeProfile(window="3", categories=("a", "b"), by="manager"), True),  # closed window
        (Login(window="3", by="sim2"), True),
        (Logout(window="2", by="sim1"), True),
        (ForceClose(window="1", by="manager"), True),
    ]
    for command, changes in steps:
        before = topology(state)
        run(command)
        after = topology(state)
        assert after.serving == counted(state), command
        assert (after is not before) == changes, command
        assert after.count("a") == len(counted(state).get("a", ()))
    assert topology(state).serving == {"a": ("3",), "b": ("3",)}
