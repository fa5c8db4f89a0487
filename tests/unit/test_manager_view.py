"""The manager's live view (displays.manager) and the what-if (scheduling.whatif), pure, on the
demo hall: load, windows, figures, and each alert's start, id, end and acknowledgement."""

from __future__ import annotations

import math
import pickle
from datetime import datetime, timedelta

import msgspec
import pytest

from displays.manager import CategoryLoad, ManagerScreen, ManagerView, onset
from hall.config import HallConfig
from hall.domain.commands import (
    AcknowledgeAlert,
    CallNext,
    ChangeProfile,
    Finish,
    Login,
    NoShow,
    Pause,
    Rate,
    RecordBreach,
    ReportDevice,
    Resume,
    Start,
)
from scheduling.estimate import ServiceTimes
from scheduling.whatif import FOLLOW, Change, outlook, read_live, single_changes, suggest, what_if
from tests.unit.test_projection import T0, Hall, issue

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def configured(config: HallConfig, **alerts: object) -> HallConfig:
    return msgspec.structs.replace(config, alerts=msgspec.structs.replace(config.alerts, **alerts))


@pytest.fixture
def hall(default_config: HallConfig) -> Hall:
    return Hall(configured(default_config, idle_seconds=0, queue_length=3))


def live(hall: Hall, at: object) -> ManagerView:
    times = ServiceTimes.from_config(hall.config)
    return ManagerScreen(hall.config, lambda: times).view(hall.state, at)  # type: ignore[arg-type]


def arrive(hall: Hall, category: str, count: int, start: datetime) -> None:
    """``count`` tickets, one every 10 seconds from ``start`` (at one instant none is ahead)."""
    for i in range(count):
        hall.batch(issue(category), now=start + i * 10 * SECOND)


def alerts(view: ManagerView, kind: str) -> list[str]:
    return [a.id for a in view.alerts if a.kind == kind]


def category(view: ManagerView, category_id: str) -> CategoryLoad:
    return next(c for z in view.zones for c in z.categories if c.id == category_id)


def test_onset_is_when_the_count_last_rose_above_and_stayed() -> None:
    t = [T0 + i * MINUTE for i in range(10)]
    spans = [(t[0], t[3]), (t[1], None), (t[4], t[6]), (t[5], None)]
    assert onset(spans, 1, t[2]) == t[1]  # two open from t1
    assert onset(spans, 1, t[3]) is None  # t3: one ended, one left
    assert onset(spans, 1, t[4]) == t[4]  # rose again: a new onset
    assert onset(spans, 1, t[8]) == t[4]  # at t6 one ended while another (t5) had begun
    assert onset(spans, 0, t[8]) == t[0]  # never empty since t0


def test_load_windows_and_staff_by_name(hall: Hall) -> None:
    hall.batch(issue("real-estate"), issue("real-estate"), issue("general"), now=T0)
    hall.batch(Login(window="10", by="zhaolei"), now=T0 + MINUTE)
    hall.batch(CallNext(window="10", by="zhaolei"), now=T0 + 2 * MINUTE)
    view = live(hall, T0 + 3 * MINUTE)
    estate = category(view, "real-estate")
    assert (estate.waiting, estate.oldest, estate.windows) == (1, T0, 1)
    assert estate.target_minutes == hall.config.category("real-estate").target_wait_minutes  # type: ignore[union-attr]
    assert estate.estimate_minutes is not None and estate.estimate_minutes > 0
    nobody = category(view, "general")
    assert nobody.estimate_minutes is None and nobody.windows == 0
    general = next(iter(hall.state.queues["general"]))
    assert alerts(view, "unserved") == [f"unserved:general:{general}"]
    window = next(w for w in view.windows if w.id == "10")
    assert (window.state, window.staff, window.staff_name) == ("calling", "zhaolei", "赵磊")
    assert (window.number, window.since, window.callable) == ("G001", T0 + 2 * MINUTE, 1)
    zone = next(z for z in view.zones if z.id == "real-estate")
    assert zone.waiting == 1
    assert view.figures.issued == 3 and view.figures.waiting == 2


def test_an_idle_window_with_a_queue_alerts_at_once_and_not_mid_call(hall: Hall) -> None:
    hall.batch(Login(window="10", by="zhaolei"), now=T0)
    assert alerts(live(hall, T0 + MINUTE), "idle") == []  # nobody waits
    hall.batch(issue("real-estate"), issue("real-estate"), now=T0 + 2 * MINUTE)
    view = live(hall, T0 + 2 * MINUTE)
    assert alerts(view, "idle") == [f"idle:10:{(T0).isoformat()}"]
    alert = next(a for a in view.alerts if a.kind == "idle")
    assert alert.severity == "high" and alert.window == "10" and "10号窗口" in alert.text
    assert alert.since == T0 + 2 * MINUTE  # idle since T0, but with a queue only since then
    hall.batch(CallNext(window="10", by="zhaolei"), now=T0 + 3 * MINUTE)
    assert alerts(live(hall, T0 + 3 * MINUTE), "idle") == []  # calling
    hall.batch(NoShow(window="10", by="zhaolei"), now=T0 + 4 * MINUTE)
    # Open again with one waiting: a new occurrence, a new id.
    assert alerts(live(hall, T0 + 4 * MINUTE), "idle") == [
        f"idle:10:{(T0 + 4 * MINUTE).isoformat()}"
    ]
    hall.batch(Pause(window="10", by="zhaolei", reason="break"), now=T0 + 5 * MINUTE)
    paused = live(hall, T0 + 6 * MINUTE)
    assert alerts(paused, "idle") == []
    window = next(w for w in paused.windows if w.id == "10")
    assert (window.pause_reason, window.pause_name) == ("break", "暂停休息")


def test_the_idle_delay_counts_from_when_both_held(default_config: HallConfig) -> None:
    hall = Hall(configured(default_config, idle_seconds=30))
    hall.batch(Login(window="10", by="zhaolei"), now=T0)
    hall.batch(issue("real-estate"), now=T0 + 10 * MINUTE)
    assert alerts(live(hall, T0 + 10 * MINUTE + 29 * SECOND), "idle") == []
    assert len(alerts(live(hall, T0 + 10 * MINUTE + 30 * SECOND), "idle")) == 1


def test_queue_and_wait_alerts_keep_their_id_and_end_with_their_condition(hall: Hall) -> None:
    target = hall.config.category("real-estate").target_wait_minutes  # type: ignore[union-attr]
    hall.batch(*[issue("real-estate") for _ in range(4)], now=T0)
    view = live(hall, T0 + MINUTE)
    assert alerts(view, "queue") == [f"queue:real-estate:{T0.isoformat()}"]
    assert alerts(view, "wait") == []
    late = T0 + (target + 1) * MINUTE
    view = live(hall, late)
    wait_id = f"wait:real-estate:{(T0 + target * MINUTE).isoformat()}"
    assert alerts(view, "wait") == [wait_id]
    assert category(view, "real-estate").over_target
    # The head is called: the next one has waited as long (issued at once): same occurrence.
    hall.batch(Login(window="10", by="zhaolei"), now=late)
    hall.batch(CallNext(window="10", by="zhaolei"), now=late)
    view = live(hall, late + MINUTE)
    assert alerts(view, "wait") == [wait_id]
    assert alerts(view, "queue") == []  # three waiting: not over 3
    hall.batch(Start(window="10", by="zhaolei"), now=late + MINUTE)
    hall.batch(Finish(window="10", by="zhaolei"), now=late + MINUTE)
    for _ in range(3):
        hall.batch(CallNext(window="10", by="zhaolei"), now=late + 2 * MINUTE)
        hall.batch(NoShow(window="10", by="zhaolei"), now=late + 2 * MINUTE)
    assert alerts(live(hall, late + 3 * MINUTE), "wait") == []


def test_acknowledged_alerts_stay_listed_below_until_they_end(hall: Hall) -> None:
    hall.batch(Login(window="10", by="zhaolei"), now=T0)
    hall.batch(issue("real-estate"), *[issue("general") for _ in range(4)], now=T0 + MINUTE)
    view = live(hall, T0 + MINUTE)
    idle = next(a for a in view.alerts if a.kind == "idle")
    assert view.alerts[0].id == idle.id  # high first
    hall.batch(AcknowledgeAlert(alert=idle.id, by="manager"), now=T0 + MINUTE)
    view = live(hall, T0 + 2 * MINUTE)
    acked = next(a for a in view.alerts if a.id == idle.id)
    assert acked.acknowledged and acked.by == "manager"
    assert view.alerts[-1].id == idle.id  # after the others
    hall.batch(CallNext(window="10", by="zhaolei"), now=T0 + 2 * MINUTE)
    assert idle.id not in [a.id for a in live(hall, T0 + 2 * MINUTE).alerts]


def test_breaches_bad_ratings_devices_and_the_days_figures(hall: Hall) -> None:
    hall.batch(issue("general"), issue("general"), now=T0)
    hall.batch(Login(window="1", by="zhangwei"), now=T0)
    hall.batch(CallNext(window="1", by="zhangwei"), now=T0 + 4 * MINUTE)
    hall.batch(Start(window="1", by="zhangwei"), now=T0 + 5 * MINUTE)
    hall.batch(Finish(window="1", by="zhangwei"), now=T0 + 10 * MINUTE)
    ticket = next(iter(hall.state.tickets))
    hall.batch(Rate(ticket=ticket, level=1, reasons=("slow",), by="pad-1", window="1"))
    hall.batch(CallNext(window="1", by="zhangwei"), now=T0 + 30 * MINUTE)
    hall.batch(NoShow(window="1", by="zhangwei"), now=T0 + 31 * MINUTE)
    breach = RecordBreach(
        breach="pause_too_long:1:9",
        rule="pause_too_long",
        window="1",
        staff="zhangwei",
        since=T0,
        measured=40,
        limit=30,
    )
    hall.batch(breach, ReportDevice(device="printer-1", status="paper_out"), now=T0 + 32 * MINUTE)
    view = live(hall, T0 + 33 * MINUTE)
    figures = view.figures
    assert (figures.issued, figures.served, figures.no_shows, figures.waiting) == (2, 1, 1, 0)
    assert figures.wait_mean_minutes == 17.0  # 4 and 30 minutes
    assert figures.within_target == 0.5  # general's target is 20
    assert (figures.rated, figures.satisfaction, figures.bad) == (1, 0.0, 1)
    assert (figures.cases_open, figures.cases_overdue, figures.breaches) == (1, 0, 1)
    assert alerts(view, "case") == [f"case:{ticket}"]
    assert alerts(view, "breach") == ["breach:pause_too_long:1:9"]
    assert [(d.id, d.status) for d in view.devices] == [("printer-1", "paper_out")]
    assert len(alerts(view, "device")) == 1
    # Weeks later the case is overdue: a high alert of its own.
    later = live(hall, T0 + timedelta(days=20))
    assert alerts(later, "overdue") == [f"overdue:{ticket}:verify"]
    assert later.figures.cases_overdue == 1


def test_a_paused_then_resumed_window_is_not_idle_until_the_delay(
    default_config: HallConfig,
) -> None:
    hall = Hall(configured(default_config, idle_seconds=60))
    hall.batch(issue("real-estate"), Login(window="10", by="zhaolei"), now=T0)
    hall.batch(Pause(window="10", by="zhaolei", reason="break"), now=T0 + SECOND)
    hall.batch(Resume(window="10", by="zhaolei"), now=T0 + 10 * MINUTE)
    assert alerts(live(hall, T0 + 10 * MINUTE + 59 * SECOND), "idle") == []
    assert alerts(live(hall, T0 + 11 * MINUTE), "idle") == [
        f"idle:10:{(T0 + 10 * MINUTE).isoformat()}"
    ]


# -- what-if ------------------------------------------------------------------------------------


def test_opening_a_window_for_a_category_cuts_its_longest_wait(hall: Hall) -> None:
    times = ServiceTimes.from_config(hall.config)
    hall.batch(Login(window="10", by="zhaolei"), Login(window="1", by="zhangwei"), now=T0)
    arrive(hall, "real-estate", 12, T0)
    arrive(hall, "general", 6, T0 + MINUTE)
    now = T0 + 20 * MINUTE
    before = snapshot(hall.state)
    effects = what_if(read_live(hall.state, now, times, hall.policy), "11", None, True)
    estate = next(e for e in effects if e.category == "real-estate")
    # Twelve 20-minute transactions on one window, and more coming at the morning's rate.
    assert estate.before is not None and estate.before > 60
    assert estate.after is not None and estate.after < estate.before
    # Every closed window opened with real-estate first does better too.
    for window in ("2", "3", "7", "12", "16"):
        profile = ("real-estate", *hall.state.windows[window].categories)
        for e in what_if(read_live(hall.state, now, times, hall.policy), window, profile, True):
            if e.category == "real-estate":
                assert e.after is not None and e.before is not None and e.after < e.before
    assert snapshot(hall.state) == before  # nothing changed for real


def snapshot(state: object) -> bytes:
    return pickle.dumps(state)


def test_a_change_that_changes_nothing_forecasts_the_same_waits(hall: Hall) -> None:
    """Every layout runs on the same draws (common random numbers): a closed window given
    another profile works no more than before, so every figure is exactly the same."""
    times = ServiceTimes.from_config(hall.config)
    hall.batch(Login(window="10", by="zhaolei"), Login(window="1", by="zhangwei"), now=T0)
    arrive(hall, "real-estate", 5, T0)
    arrive(hall, "general", 5, T0)
    now = T0 + 10 * MINUTE
    change = Change("12", False, ("real-estate", "general"))
    found = outlook(read_live(hall.state, now, times, hall.policy), [change])
    assert found.changes[change] == found.now
    assert found.now["real-estate"] and found.now["general"]


def test_a_profile_change_shows_both_sides(hall: Hall) -> None:
    times = ServiceTimes.from_config(hall.config)
    hall.batch(Login(window="10", by="zhaolei"), Login(window="12", by="sunli"), now=T0)
    arrive(hall, "household", 5, T0)
    arrive(hall, "real-estate", 5, T0)
    now = T0 + 10 * MINUTE
    effects = {
        e.category: e
        for e in what_if(
            read_live(hall.state, now, times, hall.policy), "12", ("real-estate",), False
        )
    }
    assert set(effects) == {"household", "real-estate"}
    assert effects["household"].after is None  # nobody serves it any more
    assert effects["real-estate"].after < effects["real-estate"].before  # type: ignore[operator]


def test_suggestions_cut_the_worst_categorys_wait(hall: Hall) -> None:
    times = ServiceTimes.from_config(hall.config)
    hall.batch(Login(window="10", by="zhaolei"), now=T0)
    arrive(hall, "real-estate", 15, T0)
    now = T0 + 30 * MINUTE
    found = suggest(read_live(hall.state, now, times, hall.policy))
    assert found and found[0].category == "real-estate"
    assert found[0].window == "11" and found[0].open  # the other real-estate window
    for s in found:
        assert s.after is not None and s.before is not None and s.after < s.before
        assert s.categories[0] == "real-estate" or "real-estate" in s.categories
    hall.batch(ChangeProfile(window="10", categories=("general",), by="manager"), now=now)
    assert suggest(read_live(hall.state, now, times, hall.policy))[0].category == "real-estate"


def test_a_window_is_suggested_once_unless_moving_the_category_first_does_better(
    hall: Hall,
) -> None:
    """Seen on the demo hall: "open window 9" twice, once as it is (invoice > tax) and once with
    tax first, the same gain. The hall's policy reads profile order only to break ties, so the
    two forecast alike: the one that keeps window 9's work as it is stays."""
    times = ServiceTimes.from_config(hall.config)
    hall.batch(Login(window="8", by="lina"), now=T0)
    arrive(hall, "tax", 12, T0)
    now = T0 + 20 * MINUTE
    found = suggest(read_live(hall.state, now, times, hall.policy), limit=30)
    assert found and all(s.category == "tax" for s in found)
    windows = [s.window for s in found]
    assert len(windows) == len(set(windows)), windows
    [nine] = [s for s in found if s.window == "9"]
    assert nine.open and nine.categories == ("invoice", "tax")


def test_the_outlook_tries_every_single_change(hall: Hall) -> None:
    """One category with a long queue and one window that serves it; the window beside it,
    closed, serves it too. Of every change a manager can make, opening that window cuts the
    category's longest wait most, and opening a window for something else does nothing for it.
    (The queue came in a burst an hour ago and nobody since: no arrivals are expected.)"""
    times = ServiceTimes.from_config(hall.config)
    arrive(hall, "real-estate", 10, T0)
    now = T0 + 60 * MINUTE
    hall.batch(Login(window="10", by="zhaolei"), Login(window="1", by="zhangwei"), now=now)
    changes = list(single_changes(read_live(hall.state, now, times, hall.policy)))
    closed = [w for w, s in hall.state.windows.items() if s.state.value == "closed"]
    assert Change("11", True) in changes and len(closed) == 14
    # Each closed window as it is, or with each category first; each open one with each other
    # category first (window 10 serves real-estate alone, window 1 four categories).
    categories = len(hall.config.categories)
    assert len(changes) == 14 * categories + (categories - 1) * 2
    found = outlook(read_live(hall.state, now, times, hall.policy))
    # Ten 20-minute transactions on one window: the last would be called about 3 h from now,
    # and counts what it has waited when the runs stop following it, 2 h from now. With two
    # windows it is called about 1 h 30 from now.
    before = found.now["real-estate"]
    assert before == pytest.approx(60 + FOLLOW / 60, abs=1)
    assert "real-estate" in found.capped_now  # "at least": the runs stopped following it
    estate = {change: after["real-estate"] for change, after in found.changes.items()}
    best = min(estate.values(), key=lambda m: math.inf if m is None else m)
    assert estate[Change("11", True)] == best and best is not None
    assert 60 + 60 < best < 60 + 120
    assert "real-estate" not in found.capped[Change("11", True)]  # every ticket was called

    assert estate[Change("2", True)] == before  # window 2 does not serve real-estate


def test_an_idle_alerts_minutes_are_its_age_badges(hall: Hall) -> None:
    """Seen: "（已 3 分钟）" beside a badge of 2′. The badge counts whole minutes from ``since``
    (when the window was idle with a queue); so does the text."""
    hall.batch(Login(window="10", by="zhaolei"), now=T0)
    hall.batch(issue("real-estate"), now=T0 + 90 * SECOND)
    alert = next(a for a in live(hall, T0 + 4 * MINUTE).alerts if a.kind == "idle")
    assert alert.since == T0 + 90 * SECOND
    assert "（已 2 分钟）" in alert.text and "(2 min)" in alert.text_en  # 2.5 minutes idle so
