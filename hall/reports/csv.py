"""A report as CSV: one line for the hall's total, then one per group, in stable columns.

The columns are a contract (spreadsheets and scripts read them by name): add new ones at the
end, never rename or reorder; ``tests/unit/test_report_csv.py`` pins the header. Rates are shares
from 0 to 1 with four decimals, times are minutes with two; an empty cell: nothing to count.
"""

from __future__ import annotations

import csv
import io

from hall.reports.model import Figures, Report

COLUMNS = (
    "period",
    "start",
    "end",
    "by",
    "row",  # "total" (the hall) or "group"
    "key",
    "name",
    "issued",
    "served",
    "no_shows",
    "cancelled",
    "expired",
    "wait_mean_min",
    "wait_p90_min",
    "service_mean_min",
    "service_p90_min",
    "within_target",
    "rated",
    "level_5",
    "level_4",
    "level_3",
    "level_2",
    "level_1",
    "participation",
    "satisfaction",
    "bad_rate",
    "cases",
    "feedback_rate",
    "rectification_rate",
    "revisit_rate",
    "overdue_cases",
    "breaches",
    "excused",
    "pause_minutes",
    "score",
    "version",
)
# Excel reads a UTF-8 file as the local code page unless it starts with this; the download adds
# it, the command line's standard output does not (it would reach the next program's input).
BOM = "\ufeff"


def render(report: Report) -> str:
    """The report's CSV text (RFC 4180: CRLF line ends, quoting where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(_line(report, "total", report.total))
    for figures in report.rows:
        writer.writerow(_line(report, "group", figures))
    return out.getvalue()


def filename(report: Report) -> str:
    """A download's file name: the hall, the period and the grouping, in safe characters."""
    period = "".join(c if c.isalnum() or c in "-." else "_" for c in report.period)
    return f"report-{report.hall}-{period}-{report.by}.csv"


def _line(report: Report, row: str, f: Figures) -> list[str]:
    return [
        report.period,
        report.start.isoformat(),
        report.end.isoformat(),
        report.by,
        row,
        _text(f.key),
        _text(f.name),
        str(f.issued),
        str(f.served),
        str(f.no_shows),
        str(f.cancelled),
        str(f.expired),
        _num(f.wait_mean, 2),
        _num(f.wait_p90, 2),
        _num(f.service_mean, 2),
        _num(f.service_p90, 2),
        _num(f.within_target, 4),
        str(f.rated),
        *(str(n) for n in f.levels),
        _num(f.participation, 4),
        _num(f.satisfaction, 4),
        _num(f.bad_rate, 4),
        str(f.cases),
        _num(f.feedback_rate, 4),
        _num(f.rectification_rate, 4),
        _num(f.revisit_rate, 4),
        str(f.overdue_cases),
        str(f.breaches),
        str(f.excused),
        _num(f.pause_minutes, 2),
        _num(f.score, 2),
        str(report.version),
    ]


# A spreadsheet takes a cell starting with one of these for a formula (CSV injection): a name
# from a hall file, or a window id such as "-1", is shown as text instead.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _num(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"
