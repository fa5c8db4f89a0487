"""The report charts (displays/charts.py): valid SVG carrying the report's values and labels as
text, nothing fetched from elsewhere, the same report giving the same bytes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import msgspec
import pytest

from displays import charts
from hall.reports.model import HourLoad
from tests.support.reports import report

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # raises on anything but well-formed XML
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("name", sorted(charts.CHARTS))
def test_each_chart_is_inline_svg_with_nothing_from_elsewhere(name: str) -> None:
    svg = charts.CHARTS[name](report())
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    texts(svg)
    # Namespaces are names, not addresses; nothing else may point outside the page.
    urls = set(re.findall(r"https?://[^\"' )]+", svg))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "<image" not in svg and "@import" not in svg and "<script" not in svg
    assert svg == charts.CHARTS[name](report())  # deterministic: no date, fixed ids


def test_the_hour_chart_has_every_hour_from_first_to_last_and_the_series() -> None:
    labels = texts(charts.hours(report()))
    hours = labels[: labels.index("时段 Hour")]  # the x axis is drawn first: its ticks
    assert hours == [f"{h:02d}" for h in range(8, 18)]  # 13:00 had nobody: a gap, not a skip
    for legend in ("取号 Issued", "办结 Served", "平均等候 Mean wait", "分钟 Minutes"):
        assert legend in labels
    # The bars are as tall as the counts: the 10:00 bar (23 issued) is the tallest issued bar.
    root = ET.fromstring(charts.hours(report()))
    heights = [
        _height(p)
        for p in root.iter(f"{SVG}path")
        if p.get("clip-path") and "#8fb3e8" in (p.get("style") or "")
    ]
    issued = [h.issued for h in report().hours]
    assert len(heights) == len(issued)
    assert heights.index(max(heights)) == issued.index(max(issued))
    ratios = [h / n for h, n in zip(heights, issued, strict=True) if n]
    assert max(ratios) - min(ratios) < 1e-3 * max(ratios)


def _height(path: ET.Element) -> float:
    ys = [float(v) for v in re.findall(r"[-\d.]+", path.get("d", ""))[1::2]]
    return max(ys) - min(ys)


def test_the_ratings_and_breaches_charts_label_each_bar_with_its_count() -> None:
    ratings = texts(charts.ratings(report()))
    for label, count in zip(
        (
            "非常满意 Very satisfied",
            "满意 Satisfied",
            "基本满意 Fairly satisfied",
            "不满意 Dissatisfied",
            "非常不满意 Very dissatisfied",
        ),
        report().total.levels,
        strict=True,
    ):
        assert label in ratings and str(count) in ratings
    breaches = texts(charts.breaches(report()))
    assert "超时暂停 Pause too long" in breaches and "4" in breaches
    assert "有人等候时空闲 Idle while people wait" in breaches and "2" in breaches
    assert "频繁过号 Repeated no-shows" not in breaches  # none in the period


def test_an_empty_period_says_so() -> None:
    empty = msgspec.structs.replace(
        report(),
        hours=tuple(HourLoad(hour=h, issued=0, served=0, wait_mean=None) for h in range(24)),
        days=(),
        breaches_by_rule={},
        total=msgspec.structs.replace(report().total, levels=(0, 0, 0, 0, 0)),
    )
    for draw in charts.CHARTS.values():
        assert "无数据 No data" in texts(draw(empty))
