"""A report as plain text for a terminal: the hall's figures, then a table of the groups."""

from __future__ import annotations

import unicodedata
from datetime import tzinfo

from hall.reports.model import Figures, Report


def render(report: Report, zone: tzinfo) -> str:
    """``zone``: the hall's time zone, the one its managers read times in."""
    t = report.total
    generated = report.generated_at.astimezone(zone)
    zone_name = getattr(zone, "key", None) or generated.strftime("%Z")
    lines = [
        f"{report.hall_name} ({report.hall})  {report.period}: {report.start} .. {report.end}",
        f"journal version {report.version}, generated {generated:%Y-%m-%d %H:%M} {zone_name}",
        "",
        f"tickets   issued {t.issued}, served {t.served}, no-shows {t.no_shows}, "
        f"cancelled {t.cancelled}, expired {t.expired}",
        f"wait      mean {_min(t.wait_mean)}, p90 {_min(t.wait_p90)}, "
        f"within target {_pct(t.within_target)}",
        f"service   mean {_min(t.service_mean)}, p90 {_min(t.service_p90)}",
        f"ratings   {t.rated} (5..1: {' '.join(map(str, t.levels))}), participation "
        f"{_pct(t.participation)}, satisfied {_pct(t.satisfaction)}, bad {_pct(t.bad_rate)}",
        f"cases     {t.cases}: feedback {_pct(t.feedback_rate)}, rectification "
        f"{_pct(t.rectification_rate)}, revisit {_pct(t.revisit_rate)}; overdue now "
        f"{t.overdue_cases}",
        f"breaches  {t.breaches} ({t.excused} excused)"
        + (
            ": " + ", ".join(f"{rule} {n}" for rule, n in report.breaches_by_rule.items())
            if report.breaches_by_rule
            else ""
        ),
        f"pauses    {t.pause_minutes:.0f} min",
    ]
    if report.rows:
        head = [report.by, "name", "issued", "served", "wait", "p90", "in tgt", "rated",
                "satisf", "cases", "rectif", "breach", "pause", "score"]  # fmt: skip
        table = [head] + [_row(f) for f in report.rows]
        widths = [max(_width(row[i]) for row in table) for i in range(len(head))]
        lines.append("")
        for row in table:
            cells = [_pad(cell, widths[i], left=i < 2) for i, cell in enumerate(row)]
            lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _row(f: Figures) -> list[str]:
    return [
        f.key,
        f.name,
        str(f.issued),
        str(f.served),
        _min(f.wait_mean),
        _min(f.wait_p90),
        _pct(f.within_target),
        str(f.rated),
        _pct(f.satisfaction),
        str(f.cases),
        _pct(f.rectification_rate),
        f"{f.breaches}/{f.excused}",
        f"{f.pause_minutes:.0f}",
        "-" if f.score is None else f"{f.score:.1f}",
    ]


def _min(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}m"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    gap = " " * (width - _width(text))
    return text + gap if left else gap + text
