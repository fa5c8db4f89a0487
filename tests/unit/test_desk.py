"""The desk projection (displays.desk, what the window caller shows) and the window screen's
``rating`` item (what the evaluation pad offers), on the demo hall."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from displays.desk import QUEUE_SHOWN, DeskScreen, DeskView
from displays.projection import RatingDue, WindowScreen
from hall.config import HallConfig
from hall.domain.commands import (
    CallNext,
    Finish,
    Login,
    Rate,
    Start,
    Transfer,
)
from hall.domain.events import Outcome
from scheduling.lookahead import next_calls
from tests.unit.test_projection import T0, Hall, issue

MINUTE = timedelta(minutes=1)


@pytest.fixture
def hall(default_config: HallConfig) -> Hall:
    return Hall(default_config)


def desk(hall: Hall, window: str = "1") -> DeskScreen:
    return DeskScreen(hall.config, hall.policy, window)


def test_the_queue_is_what_call_next_takes_in_that_order(hall: Hall) -> None:
    # Window 1 serves collection, general, social, medical: a mix it may call, one it may not.
    hall.batch(issue("general"), issue("social"), issue("tax"), now=T0)
    hall.batch(issue("general", "green"), issue("medical"), issue("general"), now=T0 + 5 * MINUTE)
    now = T0 + 20 * MINUTE
    hall.batch(Login(window="1", by="zhangwei"), now=now)
    view = desk(hall).view(hall.state, now)
    expected = next_calls(hall.state, "1", now, hall.policy, QUEUE_SHOWN)
    assert [n.number for n in view.queue] == [t.number for t in expected]
    assert view.waiting == 5 and len(view.queue) == 5  # the tax ticket is not window 1's
    assert view.queue[0].priority == "green"
    assert (view.queue[0].priority_name or "").startswith("绿色通道")
    # Calling takes the first of the list.
    hall.batch(CallNext(window="1", by="zhangwei"), now=now)
    called = desk(hall).view(hall.state, now)
    assert called.held is not None and called.held.number == view.queue[0].number
    assert [n.number for n in called.queue] == [n.number for n in view.queue[1:]]
    assert called.waiting == 4


def test_the_ticket_held_carries_its_times_and_the_queue_caps_at_ten(hall: Hall) -> None:
    hall.batch(*[issue("general") for _ in range(12)], now=T0)
    hall.batch(Login(window="1", by="zhangwei"), now=T0 + MINUTE)
    hall.batch(CallNext(window="1", by="zhangwei"), now=T0 + 7 * MINUTE)
    hall.batch(Start(window="1", by="zhangwei"), now=T0 + 8 * MINUTE)
    view = desk(hall).view(hall.state, T0 + 9 * MINUTE)
    assert view.state == "serving" and view.held is not None and view.ticket is not None
    assert (view.held.issued_at, view.held.called_at) == (T0, T0 + 7 * MINUTE)
    assert view.held.started_at == view.ticket.since == T0 + 8 * MINUTE
    assert view.since == T0 + 8 * MINUTE
    assert len(view.queue) == QUEUE_SHOWN and view.waiting == 11
    assert view.profile == ["collection", "general", "social", "medical"]


def test_a_ticket_sent_here_by_name_comes_first_and_says_so(hall: Hall) -> None:
    hall.batch(issue("general"), issue("general"), now=T0)
    hall.batch(Login(window="1", by="zhangwei"), Login(window="2", by="lina"), now=T0)
    hall.batch(CallNext(window="2", by="lina"), now=T0 + MINUTE)
    hall.batch(Transfer(window="2", by="lina", to_window="1"), now=T0 + 2 * MINUTE)
    view = desk(hall).view(hall.state, T0 + 3 * MINUTE)
    assert [(n.number, n.sent) for n in view.queue] == [("A001", True), ("A002", False)]
    windows = {w.id: (w.state, w.number) for w in view.windows}
    assert windows["2"] == ("open", None) and windows["1"] == ("open", None)
    assert len(view.windows) == len(hall.config.windows)


def test_the_desk_names_nobody_but_as_the_window_screen_does(hall: Hall) -> None:
    hall.batch(issue("general"), Login(window="1", by="zhangwei"), now=T0)
    hall.batch(CallNext(window="1", by="zhangwei"), now=T0)
    view = desk(hall).view(hall.state, T0)
    text = msgspec.json.encode(view).decode()
    assert "zhangwei" not in text and "张伟" not in text
    assert view.staff is not None and view.staff.name == "张*"


def test_a_delta_carries_the_top_level_keys_that_changed(hall: Hall) -> None:
    hall.batch(issue("general"), issue("general"), Login(window="1", by="zhangwei"), now=T0)
    screen = desk(hall)
    old = screen.view(hall.state, T0)
    records = hall.batch(CallNext(window="1", by="zhangwei"), now=T0 + MINUTE)
    new = screen.view(hall.state, T0 + MINUTE)
    changes = screen.changes(old, new, hall.state, records)
    assert isinstance(new, DeskView)
    assert set(changes) == {"state", "ticket", "held", "since", "queue", "waiting", "windows"}
    # Time alone changes nothing: the page counts the minutes waited on its own clock.
    later = screen.view(hall.state, T0 + 30 * MINUTE)
    assert screen.changes(new, later, hall.state, []) == {}


def test_the_window_screen_offers_the_last_transaction_until_it_is_rated(hall: Hall) -> None:
    screen = WindowScreen(hall.config, "1")
    hall.batch(issue("general"), issue("general"), Login(window="1", by="zhangwei"), now=T0)
    assert screen.view(hall.state, T0).rating is None  # nothing finished here yet
    hall.batch(CallNext(window="1", by="zhangwei"), Start(window="1", by="zhangwei"), now=T0)
    before = screen.view(hall.state, T0)
    records = hall.batch(Finish(window="1", by="zhangwei", outcome=Outcome.DONE), now=T0 + MINUTE)
    after = screen.view(hall.state, T0 + MINUTE)
    first = hall.state.windows["1"].served
    assert first is not None
    due = RatingDue(ticket=first, number="A001", finished_at=T0 + MINUTE)
    assert after.rating == due
    assert screen.changes(before, after, hall.state, records)["rating"] == due

    hall.batch(Rate(ticket=first, level=5, by="pad-1", window="1"), now=T0 + 2 * MINUTE)
    assert screen.view(hall.state, T0 + 2 * MINUTE).rating is None  # rated: nothing to offer

    # The next one, left unrated: "not rated" recorded, nothing to offer either.
    hall.batch(CallNext(window="1", by="zhangwei"), Start(window="1", by="zhangwei"), now=T0)
    hall.batch(Finish(window="1", by="zhangwei", outcome=Outcome.RETURNED), now=T0 + 3 * MINUTE)
    second = hall.state.windows["1"].served
    assert second is not None and second != first
    assert screen.view(hall.state, T0 + 3 * MINUTE).rating == RatingDue(
        ticket=second, number="A002", finished_at=T0 + 3 * MINUTE
    )
    hall.batch(Rate(ticket=second, level=None, by="pad-1", window="1"), now=T0 + 4 * MINUTE)
    assert screen.view(hall.state, T0 + 4 * MINUTE).rating is None
