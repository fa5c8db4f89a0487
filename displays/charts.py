"""The report pages' charts: a :class:`~hall.reports.model.Report` in, SVG text out. Pure: no
I/O, no clock (the SVG carries no date), the same report gives the same bytes.

matplotlib draws them on the server (Agg, no display): halls run offline, so no charting
script comes from a CDN, and the SVG prints as sharply as the tables. Text stays text
(``svg.fonttype = "none"``), so the browser sets the Chinese labels with its own fonts; the
fonts listed here only measure them. matplotlib is imported on first use: the server starts
without it.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hall.domain.oversight import RULES
from hall.domain.rating import LEVELS
from hall.reports.model import Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# What a page's CSS would pick, for measuring; DejaVu (matplotlib's own) always exists.
FONTS = ["WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC", "DejaVu Sans"]
RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "hall",  # ids from a fixed salt: the same report, the same SVG
    "font.family": "sans-serif",
    "font.sans-serif": FONTS,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
}
ISSUED, SERVED, WAIT, GOOD, BAD, BREACH = (
    "#8fb3e8",
    "#1f5fbf",
    "#e07b00",
    "#2e9d5b",
    "#c62828",
    "#7a4fbf",
)
SIZE = (7.2, 3.0)  # inches; scaled by the page
# rc_context sets matplotlib's global settings: one chart at a time (pages draw in threads).
_DRAWING = threading.Lock()


def hours(report: Report) -> str:
    """Load by hour of day: tickets issued and served (bars), mean wait (line, right axis)."""
    busy = [h.hour for h in report.hours if h.issued or h.served]
    # Every hour from the first busy one to the last: a quiet lunch hour shows as a gap.
    loads = [
        h
        for h in sorted(report.hours, key=lambda h: h.hour)
        if busy and min(busy) <= h.hour <= max(busy)
    ]
    labels = [f"{h.hour:02d}" for h in loads]
    return _load(
        labels,
        [h.issued for h in loads],
        [h.served for h in loads],
        [h.wait_mean for h in loads],
        "时段 Hour",
    )


def days(report: Report) -> str:
    """Load by business day: issued and served (bars), mean wait (line, right axis)."""
    labels = [d.day.strftime("%m-%d") for d in report.days]
    return _load(
        labels,
        [d.issued for d in report.days],
        [d.served for d in report.days],
        [d.wait_mean for d in report.days],
        "日期 Day",
    )


def ratings(report: Report) -> str:
    """How many ratings gave each level, best first."""
    names = [f"{zh} {en}" for _, zh, en in LEVELS]
    colours = [GOOD, GOOD, "#9aa7bd", BAD, BAD]
    return _bars(names, list(report.total.levels), colours, "评价数 Ratings")


def breaches(report: Report) -> str:
    """Breaches recorded in the period, per rule (excused ones included)."""
    rules = [r for r in RULES if report.breaches_by_rule.get(r)]
    rules += sorted(
        r for r in report.breaches_by_rule if r not in RULES and report.breaches_by_rule[r]
    )
    names = [f"{RULES[r][0]} {RULES[r][1]}" if r in RULES else r for r in rules]
    counts = [report.breaches_by_rule[r] for r in rules]
    return _bars(names, counts, [BREACH] * len(rules), "违规次数 Breaches")


CHARTS: dict[str, Callable[[Report], str]] = {
    "hours": hours,
    "days": days,
    "ratings": ratings,
    "breaches": breaches,
}


def _integers() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _load(
    labels: Sequence[str],
    issued: Sequence[int],
    served: Sequence[int],
    waits: Sequence[float | None],
    xlabel: str,
) -> str:
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        if not labels:
            _nothing(axes)
            return
        x = list(range(len(labels)))
        width = 0.4
        axes.bar([i - width / 2 for i in x], issued, width, label="取号 Issued", color=ISSUED)
        axes.bar([i + width / 2 for i in x], served, width, label="办结 Served", color=SERVED)
        axes.set_xticks(x, labels, rotation=90 if len(labels) > 16 else 0)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("件数 Tickets")
        axes.yaxis.set_major_locator(_integers())
        wait = axes.twinx()
        wait.spines["right"].set_visible(True)
        points = [(i, w) for i, w in zip(x, waits, strict=True) if w is not None]
        if points:
            wait.plot(
                *zip(*points, strict=True),
                color=WAIT,
                marker="o",
                markersize=3,
                label="平均等候 Mean wait",
            )
        wait.set_ylabel("分钟 Minutes")
        # At least a minute tall: waits of seconds should look short, not fill the axis.
        wait.set_ylim(0, max([1.0, *(w for _, w in points)]) * 1.15)
        pad = max(0.0, (6 - len(labels)) / 2)  # a day or two: bars of a sensible width
        axes.set_xlim(-0.5 - pad, len(labels) - 0.5 + pad)
        handles = axes.get_legend_handles_labels()[0] + wait.get_legend_handles_labels()[0]
        figure.legend(handles=handles, loc="outside upper center", ncols=3, frameon=False)

    return _svg(draw)


def _bars(names: Sequence[str], counts: Sequence[int], colours: Sequence[str], xlabel: str) -> str:
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        if not any(counts):
            _nothing(axes)
            return
        y = list(range(len(names)))
        bars = axes.barh(y, counts, height=0.6, color=colours)
        axes.bar_label(bars, [str(c) for c in counts], padding=3)
        axes.set_yticks(y, names)
        axes.invert_yaxis()  # the first (best level, first rule) on top
        axes.set_xlabel(xlabel)
        axes.xaxis.set_major_locator(_integers())
        axes.set_xlim(right=max(counts) * 1.15 + 0.5)

    return _svg(draw)


def _nothing(axes: Axes) -> None:
    axes.set_axis_off()
    axes.text(
        0.5,
        0.5,
        "无数据 No data",
        ha="center",
        va="center",
        transform=axes.transAxes,
        color="#5d6a80",
        fontsize=12,
    )


def _svg(draw: Callable[[Any], None]) -> str:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; before anything draws
    # A listed font without a normal weight ("now using 500") is not worth a log line a chart.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    from matplotlib.figure import Figure

    with _DRAWING, matplotlib.rc_context(RC), warnings.catch_warnings():
        # Measuring Chinese with a font that lacks it (a machine without CJK fonts) warns per
        # glyph; the browser sets the text with its own fonts anyway.
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message="findfont", category=UserWarning)
        figure = Figure(figsize=SIZE, layout="constrained")
        draw(figure)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(out.getvalue())


def _inline(svg: str) -> str:
    """The <svg> element alone, to put in a page: no XML declaration, no DOCTYPE (a URL), no
    RDF metadata (more URLs)."""
    svg = svg[svg.index("<svg") :]
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
