"""Screen projections (pure): the hall and window views of a state, and the deltas of a batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from displays.projection import HallScreen, HallView, WindowScreen, WindowView, mask
from hall import checkpoint
from hall.config import HallConfig
from hall.domain.commands import (
    AnyCommand,
    CallNext,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    Pause,
    PostNotice,
    Recall,
    Start,
)
from hall.domain.decide import day_events, decide
from hall.domain.events import AnyEvent
from hall.domain.state import HallState, apply
from hall.journal.base import Recorded
from scheduling.estimate import ServiceTimes
from scheduling.policy import policy_named

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 09:00 in the hall (Asia/Shanghai)
SECOND = timedelta(seconds=1)


class Hall:
    """Runs batches of commands the way the engine does: decide each against the state the
    ones before left, apply, and hand the batch's records on."""

    def __init__(self, config: HallConfig) -> None:
        self.config = config
        self.state = HallState.initial(config)
        self.policy = policy_named(config.hall.policy)

    def batch(self, *commands: AnyCommand, now: datetime = T0) -> list[Recorded]:
        events: list[AnyEvent] = []
        for command in commands:
            for event in day_events(self.state, now):  # a new day first, as the engine does
                apply(self.state, event)
                events.append(event)
            for event in decide(self.state, command, now, self.policy):
                apply(self.state, event)
                events.append(event)
        first = self.state.version - len(events) + 1
        return [
            Recorded(hall="demo-county", version=first + i, position=0, event=e)
            for i, e in enumerate(events)
        ]


def issue(category: str = "general", priority: str = "normal") -> IssueTicket:
    return IssueTicket(category=category, priority=priority)


@pytest.fixture
def hall(default_config: HallConfig) -> Hall:
    return Hall(default_config)


def with_screens(config: HallConfig, **changes: object) -> HallConfig:
    screens = config.screens
    hall = msgspec.structs.replace(screens.hall, **changes)
    return msgspec.structs.replace(config, screens=msgspec.structs.replace(screens, hall=hall))


def step(
    screen: HallScreen, hall: Hall, view: HallView, records: Sequence[Recorded]
) -> tuple[HallView, dict[str, object]]:
    new = screen.view(hall.state, records[-1].event.at)
    return new, screen.changes(view, new, hall.state, records)


def test_staff_names_are_masked_as_the_hall_says() -> None:
    assert mask("张伟", "masked") == "张*"
    assert mask("张三丰", "masked") == "张*丰"
    assert mask("欧阳娜娜", "masked") == "欧*娜"  # one star: the length is not told either
    assert mask("张三丰", "full") == "张三丰"
    assert mask("张三丰", "hidden") is None


def test_the_hall_view_counts_queues_and_zones_with_next_numbers_in_call_order(
    hall: Hall,
) -> None:
    hall.batch(issue(), issue(), issue("general", "green"), issue("tax"))
    view = HallScreen(hall.config).view(hall.state, T0)
    general = next(q for q in view.queues if q.id == "general")
    # The green-lane ticket (绿色通道) is called first, though issued third.
    assert (general.waiting, general.next) == (3, ["A003", "A001", "A002"])
    assert [q.id for q in view.queues] == [c.id for c in hall.config.categories]
    zones = {z.id: z.waiting for z in view.zones}
    assert zones["general"] == 3 and zones["tax"] == 1 and zones["police"] == 0
    assert view.notice.text == hall.config.screens.hall.notice
    assert view.highlight_seconds == hall.config.screens.hall.highlight_seconds
    assert view.day is not None and view.calls == []


def test_next_numbers_are_as_many_as_the_screen_lists(hall: Hall) -> None:
    hall.batch(*[issue() for _ in range(12)])
    config = with_screens(hall.config, next_numbers=3)
    view = HallScreen(config).view(hall.state, T0)
    assert next(q for q in view.queues if q.id == "general").next == ["A001", "A002", "A003"]
    none = HallScreen(with_screens(hall.config, next_numbers=0)).view(hall.state, T0)
    assert next(q for q in none.queues if q.id == "general").next == []


def test_two_calls_in_one_batch_are_two_calls_oldest_first_in_the_delta(hall: Hall) -> None:
    hall.batch(issue(), issue(), issue())
    hall.batch(Login(window="1", by="zhangwei"), Login(window="2", by="lina"))
    screen = HallScreen(hall.config)
    view = screen.view(hall.state, T0)
    records = hall.batch(CallNext(window="1", by="zhangwei"), CallNext(window="2", by="lina"))
    new, changes = step(screen, hall, view, records)
    calls = changes["calls"]
    assert isinstance(calls, list)
    assert [(c.number, c.window, c.recall) for c in calls] == [
        ("A001", "1", False),
        ("A002", "2", False),
    ]
    assert [c.version for c in calls] == [records[0].version, records[1].version]
    assert calls[0].at == calls[1].at  # the same instant, and still two calls
    assert calls[1].audio == "/api/halls/demo-county/announcements/A002/2.wav"
    assert (calls[0].window_name, calls[0].category_name_en) == ("1号窗口", "General Affairs")
    assert [c.number for c in new.calls] == ["A002", "A001"]  # the view: newest first
    windows = changes["windows"]
    assert isinstance(windows, list)
    assert [(w.id, w.state, w.number) for w in windows] == [
        ("1", "calling", "A001"),
        ("2", "calling", "A002"),
    ]
    assert [q.id for q in changes["queues"]] == ["general"]  # type: ignore[attr-defined]
    assert "notice" not in changes and "day" not in changes


def test_a_recall_is_a_call_again_and_the_list_keeps_the_last_n(hall: Hall) -> None:
    config = with_screens(hall.config, calls=3)
    screen = HallScreen(config)
    hall.batch(*[issue() for _ in range(5)], Login(window="1", by="zhangwei"))
    for _ in range(3):
        hall.batch(CallNext(window="1", by="zhangwei"), NoShow(window="1", by="zhangwei"))
    hall.batch(CallNext(window="1", by="zhangwei"))
    view = screen.view(hall.state, T0)
    records = hall.batch(Recall(window="1", by="zhangwei"), now=T0 + SECOND)
    new, changes = step(screen, hall, view, records)
    (recall,) = changes["calls"]  # type: ignore[misc]
    assert (recall.number, recall.recall) == ("A004", True)
    assert [(c.number, c.recall) for c in new.calls] == [
        ("A004", True),
        ("A004", False),
        ("A003", False),
    ]
    assert set(changes) == {"calls"}  # nothing else changed


def test_an_empty_batch_of_changes_is_still_a_delta_with_nothing_in_it(hall: Hall) -> None:
    hall.batch(issue())
    screen = HallScreen(hall.config)
    view = screen.view(hall.state, T0)
    records = hall.batch(Login(window="12", by="sunli"))  # a window of no zone shown? all shown
    _, changes = step(screen, hall, view, records)
    assert set(changes) == {"windows"}
    empty = screen.changes(view, view, hall.state, [])
    assert empty == {}


def test_shown_zones_pick_and_order_the_zones_and_their_queues_and_windows(hall: Hall) -> None:
    config = with_screens(hall.config, zones=("tax", "general"))
    hall.batch(issue("tax"), issue("general"), issue("household"))
    view = HallScreen(config).view(hall.state, T0)
    assert [(z.id, z.waiting) for z in view.zones] == [("tax", 1), ("general", 1)]
    assert {q.zone for q in view.queues} == {"tax", "general"}
    assert {w.id for w in view.windows} == {"1", "2", "3", "4", "8", "9", "16"}


def test_the_notice_is_the_posted_one_until_cleared(hall: Hall) -> None:
    screen = HallScreen(hall.config)
    view = screen.view(hall.state, T0)
    records = hall.batch(PostNotice(text="今日系统升级", text_en="Upgrade today", by="manager"))
    posted, changes = step(screen, hall, view, records)
    assert (posted.notice.text, posted.notice.text_en) == ("今日系统升级", "Upgrade today")
    assert changes["notice"] == posted.notice
    records = hall.batch(PostNotice(text="", text_en="", by="manager"))
    cleared, changes = step(screen, hall, posted, records)
    assert cleared.notice.text == hall.config.screens.hall.notice  # the hall file's again
    assert changes["notice"] == cleared.notice


def test_a_new_day_empties_the_calls_and_says_so(hall: Hall) -> None:
    hall.batch(issue(), Login(window="1", by="zhangwei"))
    hall.batch(CallNext(window="1", by="zhangwei"))
    screen = HallScreen(hall.config)
    view = screen.view(hall.state, T0)
    assert len(view.calls) == 1
    tomorrow = T0 + timedelta(days=1)
    records = hall.batch(issue(), CallNext(window="1", by="zhangwei"), now=tomorrow)
    new, changes = step(screen, hall, view, records)
    assert changes["day"] == new.day != view.day
    # Yesterday's A001 expired; today's A001 is the one call of the new day.
    assert [c.number for c in changes["calls"]] == ["A001"]  # type: ignore[attr-defined]
    assert [c.version for c in new.calls] == [records[-1].version]


def test_the_window_view_shows_duty_ticket_and_pause_without_the_username(hall: Hall) -> None:
    screen = WindowScreen(hall.config, "1")
    closed = screen.view(hall.state, T0)
    assert (closed.state, closed.staff, closed.ticket, closed.pause_reason) == (
        "closed",
        None,
        None,
        None,
    )
    assert (closed.window.id, closed.window.name, closed.window.zone) == ("1", "1号窗口", "general")
    hall.batch(issue(), Login(window="1", by="zhangwei"))
    records = hall.batch(CallNext(window="1", by="zhangwei"))
    called = screen.view(hall.state, T0)
    assert called.staff is not None
    assert (called.staff.name, called.staff.staff_no) == ("张*", "1002")
    assert called.ticket is not None
    assert (called.ticket.number, called.ticket.state) == ("A001", "called")
    assert called.ticket.since == records[-1].event.at
    changes = screen.changes(closed, called, hall.state, records)
    assert set(changes) == {"state", "staff", "ticket"}
    later = T0 + 30 * SECOND
    records = hall.batch(Start(window="1", by="zhangwei"), now=later)
    serving = screen.view(hall.state, later)
    assert serving.ticket is not None and serving.ticket.state == "serving"
    assert serving.ticket.since == later
    assert screen.changes(called, serving, hall.state, records).keys() == {"state", "ticket"}
    text = msgspec.json.encode(serving).decode()
    assert "zhangwei" not in text and "张伟" not in text


def test_a_paused_window_shows_its_public_reason_only(hall: Hall) -> None:
    screen = WindowScreen(hall.config, "2")
    hall.batch(Login(window="2", by="lina"))
    hall.batch(Pause(window="2", by="lina", reason="break", note="看病 call 138-0000-0000"))
    paused = screen.view(hall.state, T0)
    assert paused.state == "paused"
    assert paused.pause_reason is not None
    assert (paused.pause_reason.code, paused.pause_reason.name_en) == ("break", "Short break")
    assert "138" not in msgspec.json.encode(paused).decode()
    hall.batch(Logout(window="2", by="lina"))  # a paused window may close
    assert screen.view(hall.state, T0).staff is None


@pytest.mark.parametrize(("style", "name"), [("full", "张伟"), ("hidden", None)])
def test_the_hall_may_show_the_full_name_or_none(hall: Hall, style: str, name: str | None) -> None:
    window = msgspec.structs.replace(hall.config.screens.window, staff_name=style)
    screens = msgspec.structs.replace(hall.config.screens, window=window)
    config = msgspec.structs.replace(hall.config, screens=screens)
    hall.batch(Login(window="1", by="zhangwei"))
    view: WindowView = WindowScreen(config, "1").view(hall.state, T0)
    assert view.staff is not None
    assert (view.staff.name, view.staff.staff_no) == (name, "1002")


def test_no_view_names_a_person_or_a_secret(hall: Hall) -> None:
    hall.batch(IssueTicket(category="general", secret="s3cret-s3cret"))
    hall.batch(Login(window="1", by="zhangwei"), Login(window="2", by="lina"))
    hall.batch(CallNext(window="1", by="zhangwei"))
    text = msgspec.json.encode(
        [HallScreen(hall.config).view(hall.state, T0)]
        + [WindowScreen(hall.config, w).view(hall.state, T0) for w in ("1", "2")]
    ).decode()
    for staff in hall.config.staff:
        assert staff.username not in text and staff.name not in text
    assert "s3cret" not in text
    assert "张*" in text and "李*" in text


def test_notice_and_calls_survive_a_checkpoint(hall: Hall) -> None:
    hall.batch(issue(), Login(window="1", by="zhangwei"))
    hall.batch(CallNext(window="1", by="zhangwei"))
    hall.batch(PostNotice(text="通知", text_en="Notice", by="manager"))
    blob = checkpoint.encode(hall.state, ServiceTimes.from_config(hall.config), None)
    restored = checkpoint.restore(blob, hall.config)
    assert restored is not None
    assert restored.state.notice == ("通知", "Notice")
    assert restored.state.calls == hall.state.calls and len(hall.state.calls) == 1
