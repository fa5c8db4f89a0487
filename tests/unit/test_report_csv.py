"""The CSV's columns are a contract: spreadsheets and scripts read them by name."""

from __future__ import annotations

import csv as stdlib_csv
import io
from datetime import UTC, date, datetime

from hall.reports import csv
from hall.reports.model import Figures, Report

HEADER = (
    "period,start,end,by,row,key,name,issued,served,no_shows,cancelled,expired,wait_mean_min,"
    "wait_p90_min,service_mean_min,service_p90_min,within_target,rated,level_5,level_4,level_3,"
    "level_2,level_1,participation,satisfaction,bad_rate,cases,feedback_rate,rectification_rate,"
    "revisit_rate,overdue_cases,breaches,excused,pause_minutes,score,version"
)


def figures(key: str, name: str, **values: object) -> Figures:
    base: dict[str, object] = dict(
        issued=10, served=8, no_shows=1, cancelled=1, expired=0, wait_mean=4.25, wait_p90=9.0,
        service_mean=7.5, service_p90=12.0, within_target=0.875, rated=6, levels=(3, 1, 1, 1, 0),
        participation=0.75, satisfaction=4 / 6, bad_rate=1 / 6, cases=1, feedback_rate=1.0,
        rectification_rate=None, revisit_rate=None, overdue_cases=0, breaches=2, excused=1,
        pause_minutes=12.345,
    )  # fmt: skip
    base.update(values)
    return Figures(key=key, name=name, **base)  # type: ignore[arg-type]


def sample() -> Report:
    return Report(
        hall="demo",
        hall_name="示范大厅",
        period="2026-Q4",
        start=date(2026, 10, 1),
        end=date(2026, 12, 31),
        by="window",
        total=figures("", "示范大厅"),
        rows=(figures("1", "1号窗口, 综合", score=87.456), figures("2", '2号"窗口"', issued=0)),
        hours=(),
        days=(),
        breaches_by_rule={},
        version=1234,
        generated_at=datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_the_header_is_pinned() -> None:
    assert ",".join(csv.COLUMNS) == HEADER
    assert csv.render(sample()).split("\r\n")[0] == HEADER


def test_rows_read_back_by_name() -> None:
    rows = list(stdlib_csv.DictReader(io.StringIO(csv.render(sample()), newline="")))
    assert [r["row"] for r in rows] == ["total", "group", "group"]
    total, one, two = rows
    assert total["key"] == "" and total["name"] == "示范大厅" and total["by"] == "window"
    assert one["name"] == "1号窗口, 综合" and two["name"] == '2号"窗口"'  # quoted, not split
    assert one["wait_mean_min"] == "4.25" and one["within_target"] == "0.8750"
    assert one["satisfaction"] == "0.6667" and one["pause_minutes"] == "12.35"
    assert one["rectification_rate"] == "" and one["revisit_rate"] == ""  # nothing to count
    assert one["score"] == "87.46" and total["score"] == ""
    assert (one["level_5"], one["level_1"]) == ("3", "0")
    assert one["version"] == "1234" and one["period"] == "2026-Q4"
    assert one["start"] == "2026-10-01" and one["end"] == "2026-12-31"


def test_file_name_is_safe() -> None:
    report = sample()
    assert csv.filename(report) == "report-demo-2026-Q4-window.csv"
    odd = Report(**{**{f: getattr(report, f) for f in report.__struct_fields__}, "period": 'a/"b'})
    assert csv.filename(odd) == "report-demo-a__b-window.csv"


def test_a_cell_a_spreadsheet_would_take_for_a_formula_is_text() -> None:
    report = sample()
    rows = (figures("-1", '=HYPERLINK("http://x")'), figures("2", "@SUM(A1)"))
    odd = Report(**{**{f: getattr(report, f) for f in report.__struct_fields__}, "rows": rows})
    _, one, two = stdlib_csv.DictReader(io.StringIO(csv.render(odd), newline=""))
    assert (one["key"], one["name"]) == ("'-1", '\'=HYPERLINK("http://x")')
    assert two["name"] == "'@SUM(A1)"
    assert one["wait_mean_min"] == "4.25"  # numbers are left as they are
