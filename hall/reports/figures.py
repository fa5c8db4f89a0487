"""A report's figures from the read model: one pass over the period's rows, grouped.

What a period holds: tickets by their business day of issue; ratings with their ticket (a
rating is given the day the ticket was served); cases by the business day of the rating;
breaches and pauses by the business day they were recorded or began on. Case steps and excuses
count as of the report's version, whenever they were made. The README's Reports section gives
every definition; ``tests/unit/test_report_recompute.py`` checks them against a fold of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import msgspec

from hall.config import HallConfig
from hall.domain.oversight import Case, Stage, overdue
from hall.reports.model import DayLoad, Figures, Grouping, HourLoad, Report
from hall.reports.periods import Period
from hall.reports.store import ReadModel

GROUPINGS: tuple[Grouping, ...] = ("hall", "zone", "category", "window", "staff")
SATISFIED = (5, 4)
BAD = (2, 1)


@dataclass(slots=True)
class _Tally:
    """One group's counts while the rows go by."""

    issued: int = 0
    served: int = 0
    no_shows: int = 0
    cancelled: int = 0
    expired: int = 0
    waits: list[float] = field(default_factory=list)  # seconds
    services: list[float] = field(default_factory=list)
    targeted: int = 0  # called, with a known target
    within: int = 0
    levels: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # levels 5..1
    cases: int = 0
    verified: int = 0
    valid: int = 0
    rectified: int = 0
    revisited: int = 0
    overdue: int = 0
    breaches: int = 0
    excused: int = 0
    paused: float = 0.0  # seconds

    @property
    def rated(self) -> int:
        return sum(self.levels)


def compute(
    model: ReadModel, config: HallConfig, period: Period, by: Grouping, now: datetime
) -> Report:
    """The report of ``period`` for the hall and, unless ``by`` is "hall", per group."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}: one of {', '.join(GROUPINGS)}")
    span = (period.start.isoformat(), period.end.isoformat())
    with model.reading() as conn:
        version = int(_scalar(conn, "SELECT value FROM meta WHERE key = 'version'") or 0)
        tickets = conn.execute(
            "SELECT day, category, issued, called, started, ended, window, staff, state, rating "
            "FROM tickets WHERE day BETWEEN ? AND ?",
            span,
        ).fetchall()
        cases = conn.execute(
            "SELECT id, day, rated, window, staff, category, level, channel, stage, valid, "
            "verified, rectified, revisited FROM cases WHERE day BETWEEN ? AND ?",
            span,
        ).fetchall()
        breaches = conn.execute(
            "SELECT rule, window, staff, excused FROM breaches WHERE day BETWEEN ? AND ?", span
        ).fetchall()
        pauses = conn.execute(
            "SELECT day, window, staff, start, end FROM pauses WHERE day BETWEEN ? AND ?", span
        ).fetchall()

    zone_of_category = {c.id: c.zone for c in config.categories}
    zone_of_window = {w.id: w.zone for w in config.windows}
    ticket_key, window_key = _keys(by, zone_of_category, zone_of_window)
    targets = {c.id: c.target_wait_minutes * 60.0 for c in config.categories}
    total, groups = _Tally(), dict[str, _Tally]()
    tz, hours, days = config.tz, dict[int, list[Any]](), dict[str, list[Any]]()

    def tallies(key: str | None) -> list[_Tally]:
        if by == "hall" or key is None:  # in no group: the hall's figures only
            return [total]
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Tally()
        return [total, group]

    for day, category, issued, called, started, ended, window, staff, state, level in tickets:
        hour = datetime.fromtimestamp(issued, tz).hour
        by_hour = hours.setdefault(hour, [0, 0, 0.0, 0])  # issued, served, wait sum, waits
        by_day = days.setdefault(day, [0, 0, 0.0, 0, 0, 0])  # ... satisfied, rated
        by_hour[0] += 1
        by_day[0] += 1
        wait = None if called is None else called - issued
        if wait is not None:
            by_hour[2] += wait
            by_hour[3] += 1
            by_day[2] += wait
            by_day[3] += 1
        if state == "finished":
            hours.setdefault(datetime.fromtimestamp(ended, tz).hour, [0, 0, 0.0, 0])[1] += 1
            by_day[1] += 1
        if level is not None:
            by_day[5] += 1
            by_day[4] += level in SATISFIED
        target = targets.get(category)
        for tally in tallies(ticket_key(category, window, staff)):
            tally.issued += 1
            if state == "finished":
                tally.served += 1
                if started is not None:
                    tally.services.append(ended - started)
            elif state == "no_show":
                tally.no_shows += 1
            elif state == "cancelled":
                tally.cancelled += 1
            elif state == "expired":
                tally.expired += 1
            if wait is not None:
                tally.waits.append(wait)
                if target is not None:
                    tally.targeted += 1
                    tally.within += wait <= target
            if level is not None:
                tally.levels[5 - level] += 1

    for row in cases:
        case_id, day, rated, window, staff, category, level, channel, stage, valid = row[:10]
        verified, rectified, revisited = row[10:]
        late = stage != "closed" and overdue(
            config,
            Case(
                id=case_id,
                number=case_id,
                day=date.fromisoformat(day),
                rated_at=datetime.fromtimestamp(rated, tz),
                window=window,
                staff=staff,
                category=category,
                level=level,
                channel=channel,
                stage=Stage(stage),
            ),
            now,
        )
        for tally in tallies(ticket_key(category, window, staff)):
            tally.cases += 1
            tally.verified += verified is not None
            if valid == 1:
                tally.valid += 1
                tally.rectified += rectified is not None
                tally.revisited += revisited is not None
            tally.overdue += late

    by_rule: dict[str, int] = {}
    for rule, window, staff, excused in breaches:
        by_rule[rule] = by_rule.get(rule, 0) + 1
        for tally in tallies(window_key(window, staff)):
            tally.breaches += 1
            tally.excused += excused

    stamp = now.timestamp()
    for day, window, staff, start, end in pauses:
        if end is None:  # still paused: until now, at most to the end of its day
            midnight = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), tz)
            end = max(start, min(stamp, midnight.timestamp()))
        for tally in tallies(window_key(window, staff)):
            tally.paused += end - start

    names = _names(config, by)
    scored = by in ("window", "staff")
    rows = tuple(
        _figures(key, names.get(key, (key, "")), groups.get(key) or _Tally(), config, scored)
        for key in _order(names, groups)
    )
    return Report(
        hall=config.hall.id,
        hall_name=config.hall.name,
        period=period.label,
        start=period.start,
        end=period.end,
        by=by,
        total=_figures("", (config.hall.name, config.hall.name_en), total, config, False),
        rows=rows if by != "hall" else (),
        hours=_hours(hours),
        days=tuple(
            DayLoad(
                day=date.fromisoformat(day),
                issued=v[0],
                served=v[1],
                wait_mean=_minutes(v[2] / v[3]) if v[3] else None,
                satisfaction=v[4] / v[5] if v[5] else None,
            )
            for day, v in sorted(days.items())
        ),
        breaches_by_rule=dict(sorted(by_rule.items())),
        version=version,
        generated_at=now,
    )


KeyOf = Callable[..., str | None]


def _keys(
    by: Grouping, zone_of_category: dict[str, str], zone_of_window: dict[str, str]
) -> tuple[KeyOf, KeyOf]:
    """How a ticket or case (category, window, staff) and a breach or pause (window, staff)
    find their group; None: in no group (counted in the hall's total only)."""
    match by:
        case "zone":
            return (
                lambda category, window, staff: zone_of_category.get(category),
                lambda window, staff: zone_of_window.get(window),
            )
        case "category":
            return (lambda category, window, staff: category, lambda window, staff: None)
        case "window":
            return (lambda category, window, staff: window, lambda window, staff: window)
        case "staff":
            return (lambda category, window, staff: staff, lambda window, staff: staff)
    return (lambda *_: None, lambda *_: None)


def _names(config: HallConfig, by: Grouping) -> dict[str, tuple[str, str]]:
    """The groups the hall file knows, in its order, with their names (zh, en)."""
    match by:
        case "zone":
            return {z.id: (z.name, z.name_en) for z in config.zones}
        case "category":
            return {c.id: (c.name, c.name_en) for c in config.categories}
        case "window":
            return {w.id: (w.name, w.name_en) for w in config.windows}
        case "staff":
            return {s.username: (s.name, "") for s in config.staff if s.role == "staff"}
    return {}


def _order(names: dict[str, tuple[str, str]], groups: dict[str, _Tally]) -> list[str]:
    """The hall file's groups in its order, then any the journal names that it no longer has."""
    return list(names) + sorted(k for k in groups if k not in names)


def _figures(
    key: str, name: tuple[str, str], t: _Tally, config: HallConfig, scored: bool
) -> Figures:
    rated = t.rated
    participation, satisfaction, bad_rate = rating_shares(t.levels, t.served)
    figures = Figures(
        key=key,
        name=name[0],
        name_en=name[1],
        issued=t.issued,
        served=t.served,
        no_shows=t.no_shows,
        cancelled=t.cancelled,
        expired=t.expired,
        wait_mean=_mean(t.waits),
        wait_p90=_p90(t.waits),
        service_mean=_mean(t.services),
        service_p90=_p90(t.services),
        within_target=t.within / t.targeted if t.targeted else None,
        rated=rated,
        levels=(t.levels[0], t.levels[1], t.levels[2], t.levels[3], t.levels[4]),
        participation=participation,
        satisfaction=satisfaction,
        bad_rate=bad_rate,
        cases=t.cases,
        feedback_rate=t.verified / t.cases if t.cases else None,
        rectification_rate=t.rectified / t.valid if t.valid else None,
        revisit_rate=t.revisited / t.valid if t.valid else None,
        overdue_cases=t.overdue,
        breaches=t.breaches,
        excused=t.excused,
        pause_minutes=t.paused / 60,
    )
    if not scored:
        return figures
    return msgspec.structs.replace(figures, score=score(figures, config))


def rating_shares(
    levels: Sequence[int], served: int
) -> tuple[float | None, float | None, float | None]:
    """Participation, satisfaction and bad rate of ``levels`` (counts of 5, 4, 3, 2, 1) for
    ``served`` tickets: a hall's, or a region's unit's from its halls' summed counts."""
    rated = sum(levels)
    return (
        rated / served if served else None,
        (levels[0] + levels[1]) / rated if rated else None,
        (levels[3] + levels[4]) / rated if rated else None,
    )


def score(figures: Figures, config: HallConfig) -> float | None:
    """The assessment score (0-100): the weighted mean of the components that are defined,
    each on 0-100. Discipline is 100 less ``breach_penalty`` per unexcused breach (at least 0);
    rectification with no valid case to rectify is 100. None for a group that handled no ticket
    (nothing to assess), or when no weight applies."""
    if not figures.issued:
        return None
    assessment = config.assessment
    components: dict[str, float | None] = {
        "satisfaction": _percent(figures.satisfaction),
        "within_target": _percent(figures.within_target),
        "discipline": max(
            0.0, 100.0 - assessment.breach_penalty * (figures.breaches - figures.excused)
        ),
        "rectification": (
            100.0 if figures.rectification_rate is None else figures.rectification_rate * 100
        ),
        "participation": _percent(figures.participation),
    }
    weighted = [
        (assessment.weights.get(name, 0.0), value)
        for name, value in components.items()
        if value is not None and assessment.weights.get(name, 0.0) > 0
    ]
    weight = sum(w for w, _ in weighted)
    if not weight:
        return None
    return sum(w * v for w, v in weighted) / weight


def _hours(hours: dict[int, list[Any]]) -> tuple[HourLoad, ...]:
    if not hours:
        return ()
    return tuple(
        HourLoad(
            hour=h,
            issued=hours.get(h, [0])[0],
            served=hours.get(h, [0, 0])[1],
            wait_mean=_minutes(hours[h][2] / hours[h][3]) if h in hours and hours[h][3] else None,
        )
        for h in range(min(hours), max(hours) + 1)
    )


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _minutes(seconds: float) -> float:
    return seconds / 60


def _mean(values: list[float]) -> float | None:
    return _minutes(math.fsum(values) / len(values)) if values else None


def _p90(values: Iterable[float]) -> float | None:
    """The nearest-rank 90th percentile: the smallest value at least 90 % of values reach."""
    ordered = sorted(values)
    if not ordered:
        return None
    return _minutes(ordered[math.ceil(0.9 * len(ordered)) - 1])


def _scalar(conn: Any, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]
