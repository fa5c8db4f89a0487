"""A report built by hand (known figures), for the chart and page tests that need one without a
journal behind it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hall.reports.model import DayLoad, Figures, HourLoad, Report


def figures(key: str = "", name: str = "全厅", **changes: object) -> Figures:
    values: dict[str, object] = {
        "key": key,
        "name": name,
        "issued": 120,
        "served": 104,
        "no_shows": 9,
        "cancelled": 4,
        "expired": 3,
        "wait_mean": 12.5,
        "wait_p90": 31.0,
        "service_mean": 8.25,
        "service_p90": 17.0,
        "within_target": 0.83,
        "rated": 70,
        "levels": (41, 17, 7, 3, 2),
        "participation": 70 / 104,
        "satisfaction": 58 / 70,
        "bad_rate": 5 / 70,
        "cases": 5,
        "feedback_rate": 1.0,
        "rectification_rate": 0.75,
        "revisit_rate": 0.5,
        "overdue_cases": 1,
        "breaches": 6,
        "excused": 1,
        "pause_minutes": 95.5,
    }
    values.update(changes)
    return Figures(**values)  # type: ignore[arg-type]


def report(by: str = "window") -> Report:
    start = date(2026, 10, 12)
    days = tuple(
        DayLoad(
            day=start + timedelta(days=i),
            issued=20 + 3 * i,
            served=18 + 3 * i,
            wait_mean=10.0 + i,
            satisfaction=0.8,
        )
        for i in range(5)
    )
    hours = tuple(
        HourLoad(hour=h, issued=n, served=max(0, n - 2), wait_mean=None if n == 0 else 5.0 + h / 2)
        for h, n in zip(range(8, 18), (4, 17, 23, 19, 6, 0, 11, 21, 14, 5), strict=True)
    )
    rows = (
        figures("1", "1号窗口", name_en="Window 1", issued=70, served=61, score=92.5),
        figures(
            "2", "2号窗口", name_en="Window 2", issued=50, served=43, wait_mean=None, score=None
        ),
    )
    return Report(
        hall="demo-county",
        hall_name="示范县政务服务中心",
        period="2026-W42",
        start=start,
        end=start + timedelta(days=6),
        by=by,  # type: ignore[arg-type]
        total=figures(),
        rows=rows if by != "hall" else (),
        hours=hours,
        days=days,
        breaches_by_rule={"pause_too_long": 4, "idle_with_queue": 2},
        version=4321,
        generated_at=datetime(2026, 10, 19, 1, 0, tzinfo=UTC),
    )
