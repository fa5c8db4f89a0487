"""A report as CSV: one line for the hall's total, then one per group, in stable columns.

The columns are a contract (spreadsheets and scripts read them by name): add new ones at the
end, never rename or reorder; ``tests/unit/test_report_csv.py`` pins the header. Rates are shares
from 0 to 1 with four decimals, times are minutes with two; an empty cell: nothing to count.
"""

from __future__ import annotations

import csv
import io

from hall.reports.model import Figures, Report

# The figures of one row, as any report's CSV gives them (the region's too: hall/api/region.py).
FIGURES = (
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
)
COLUMNS = (
    *("period", "start", "end", "by"),
    "row",  # "total" (the hall) or "group"
    *("key", "name"),
    *FIGURES,
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
    return f"report-{report.hall}-{safe(report.period)}-{report.by}.csv"


def safe(text: str) -> str:
    """``text`` for a file name: letters, digits, '-' and '.'; anything else '_'."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


def _line(report: Report, row: str, f: Figures) -> list[str]:
    return [
        report.period,
        report.start.isoformat(),
        report.end.isoformat(),
        report.by,
        row,
        text(f.key),
        text(f.name),
        *cells(f),
        str(report.version),
    ]


def cells(f: Figures) -> list[str]:
    """The cells of :data:`FIGURES` for ``f``."""
    return [
        str(f.issued),
        str(f.served),
        str(f.no_shows),
        str(f.cancelled),
        str(f.expired),
        number(f.wait_mean, 2),
        number(f.wait_p90, 2),
        number(f.service_mean, 2),
        number(f.service_p90, 2),
        number(f.within_target, 4),
        str(f.rated),
        *(str(n) for n in f.levels),
        number(f.participation, 4),
        number(f.satisfaction, 4),
        number(f.bad_rate, 4),
        str(f.cases),
        number(f.feedback_rate, 4),
        number(f.rectification_rate, 4),
        number(f.revisit_rate, 4),
        str(f.overdue_cases),
        str(f.breaches),
        str(f.excused),
        number(f.pause_minutes, 2),
        number(f.score, 2),
    ]


# A spreadsheet takes a cell starting with one of these for a formula (CSV injection): a name
# from a hall file, or a window id such as "-1", is shown as text instead.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text(value: str) -> str:
    """A name as a cell: never read as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def number(value: float | None, places: int) -> str:
    """A figure with ``places`` decimals; empty: nothing to count."""
    return "" if value is None else f"{value:.{places}f}"
