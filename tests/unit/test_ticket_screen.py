"""One ticket's projection (pure): its place while it waits, the window calling it, where it was
served, rated or not; the changed keys only; and a ticket an earlier day took ("gone")."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from displays.ticket_screen import GONE, TicketScreen
from hall.config import HallConfig
from hall.domain.commands import CallNext, Finish, IssueTicket, Login, Rate, Start
from hall.domain.state import HallState
from scheduling.estimate import ServiceTimes
from tests.unit.test_projection import T0, Hall, issue


def screen(hall: Hall, ticket: str) -> TicketScreen:
    times = ServiceTimes.from_config(hall.config)
    return TicketScreen(hall.config, ticket, lambda: times)


def test_a_ticket_is_followed_from_its_queue_to_its_rating(default_config: HallConfig) -> None:
    hall = Hall(default_config)
    hall.batch(Login(window="2", by="lina"))
    hall.batch(issue())
    hall.batch(IssueTicket(category="general", secret="s3cret"), now=T0 + timedelta(seconds=1))
    mine = screen(hall, "20261130-A002")
    waiting = mine.view(hall.state, T0)
    assert (waiting.number, waiting.state, waiting.ahead) == ("A002", "waiting", 1)
    assert waiting.window is None and waiting.served_at is None and not waiting.rated

    records = hall.batch(CallNext(window="2", by="lina"))  # A001 goes to window 2
    moved = mine.view(hall.state, T0)
    assert mine.changes(waiting, moved, hall.state, records).keys() <= {
        "ahead",
        "estimated_wait_minutes",
    }
    assert moved.ahead == 0

    hall.batch(Start(window="2", by="lina"), Finish(window="2", by="lina"))
    hall.batch(CallNext(window="2", by="lina"))
    called = mine.view(hall.state, T0)
    assert called.state == "called" and called.window is not None
    assert (called.window.name, called.window.name_en) == ("2号窗口", "Window 2")

    hall.batch(Start(window="2", by="lina"), Finish(window="2", by="lina"))
    finished = mine.view(hall.state, T0)
    assert finished.window is None and finished.served_at == called.window
    records = hall.batch(Rate(ticket="20261130-A002", level=5, by="visitor", secret="s3cret"))
    rated = mine.view(hall.state, T0)
    assert mine.changes(finished, rated, hall.state, records) == {"rated": True}
    assert "s3cret" not in msgspec.json.encode(rated).decode()


def test_a_ticket_of_an_earlier_day_is_gone(default_config: HallConfig) -> None:
    hall = Hall(default_config)
    hall.batch(issue("tax"))
    mine = screen(hall, "20261130-E001")
    assert mine.view(hall.state, T0).state == "waiting"
    hall.batch(issue(), now=T0 + timedelta(days=1))  # the next day: yesterday's leave memory
    gone = mine.view(hall.state, T0 + timedelta(days=1))
    assert (gone.state, gone.number, gone.category) == (GONE, "E001", "tax")
    assert gone.category_name == "税务登记申报" and gone.ahead == 0
    odd = screen(hall, "20261130-Q001").view(HallState.initial(hall.config), T0)
    assert (odd.state, odd.number, odd.category, odd.category_name) == (GONE, "Q001", None, "")
