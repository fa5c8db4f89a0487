"""What the managers' oversight API shows beyond the live state, read from the read model: a
bad rating's reasons and comment, each step of its case with who, when and what, a breach's
measure and evidence and its excuse. The state keeps only what deciding needs (which cases are
open, which breaches exist); these facts are in the journal, and the read model has them folded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from hall.reports.store import ReadModel

CHUNK = 500  # ids per query: far below SQLite's limit on bound parameters


@dataclass(frozen=True, slots=True)
class Step:
    version: int
    step: str
    at: datetime
    by: str
    valid: bool | None
    result: str | None
    text: str


@dataclass(slots=True)
class CaseDetails:
    reasons: tuple[str, ...] = ()
    comment: str | None = None
    steps: list[Step] = field(default_factory=list)  # in journal order


@dataclass(frozen=True, slots=True)
class Excuse:
    at: datetime
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class BreachDetails:
    measured: float
    limit: float
    evidence: tuple[int, ...]
    excuse: Excuse | None


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _chunks(ids: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _in(conn: sqlite3.Connection, sql: str, ids: list[str], upto: int) -> list[Any]:
    """Rows of ``sql`` (its ``{marks}``: one mark per id, then one for ``upto``); STRICT tables
    give each column its declared type."""
    marks = ", ".join("?" * len(ids))
    return conn.execute(sql.format(marks=marks), [*ids, upto]).fetchall()


def cases(model: ReadModel, ids: Collection[str], upto: int) -> dict[str, CaseDetails]:
    """The rating and the steps of each case in ``ids`` (a rated ticket's id), as of journal
    version ``upto`` (the state the caller shows). A case the model lacks is left out."""
    found: dict[str, CaseDetails] = {}
    with model.reading() as conn:
        for chunk in _chunks(ids):
            # A ticket "not rated" on the pad may be rated from the phone later: the last counts.
            ratings = _in(
                conn,
                "SELECT ticket, reasons, comment FROM ratings WHERE ticket IN ({marks}) "
                "AND version <= ? ORDER BY version",
                chunk,
                upto,
            )
            for ticket, reasons, comment in ratings:
                found[ticket] = CaseDetails(reasons=tuple(reasons.split()), comment=comment)
            steps = _in(
                conn,
                "SELECT version, case_id, step, at, by, valid, result, text FROM case_steps "
                "WHERE case_id IN ({marks}) AND version <= ? ORDER BY version",
                chunk,
                upto,
            )
            for version, case, step, at, by, valid, result, text in steps:
                verdict = None if valid is None else bool(valid)
                found.setdefault(case, CaseDetails()).steps.append(
                    Step(version, step, _time(at), by, verdict, result, text)
                )
    return found


def breaches(model: ReadModel, since: date) -> dict[str, BreachDetails]:
    """Every breach recorded on business day ``since`` or later, by id, with its excuse."""
    with model.reading() as conn:
        rows = conn.execute(
            "SELECT id, measured, limit_, evidence, excused, excused_at, excused_by, reason "
            "FROM breaches WHERE day >= ?",
            (since.isoformat(),),
        ).fetchall()
    return {
        breach: BreachDetails(
            measured=measured,
            limit=limit,
            evidence=tuple(int(v) for v in evidence.split()),
            excuse=Excuse(_time(at), by, reason) if excused else None,
        )
        for breach, measured, limit, evidence, excused, at, by, reason in rows
    }


@dataclass(frozen=True, slots=True)
class ClosedCase:
    id: str
    number: str
    day: date
    rated_at: datetime
    window: str
    staff: str
    category: str
    level: int
    valid: bool | None
    result: str | None
    closed_at: datetime
    closed_by: str


def closed_cases(model: ReadModel, since: datetime, most: int) -> list[ClosedCase]:
    """Cases closed at ``since`` or later, the latest first, at most ``most``: the open ones
    are the state's; once closed they leave it, and only the journal (folded here) has them."""
    with model.reading() as conn:
        rows = conn.execute(
            "SELECT c.id, t.number, c.day, c.rated, c.window, c.staff, c.category, c.level, "
            "c.valid, c.result, c.closed, s.by FROM cases c "
            "JOIN tickets t ON t.id = c.id "
            "JOIN case_steps s ON s.case_id = c.id AND s.step = 'close' "
            "WHERE c.stage = 'closed' AND c.closed >= ? ORDER BY c.closed DESC LIMIT ?",
            (since.timestamp(), most),
        ).fetchall()
    return [_closed(*row) for row in rows]


def _closed(
    case: str, number: str, day: str, rated: float, window: str, staff: str, category: str,
    level: int, valid: int | None, result: str | None, closed: float, by: str,
) -> ClosedCase:  # fmt: skip
    verdict = None if valid is None else bool(valid)
    return ClosedCase(
        id=case, number=number, day=date.fromisoformat(day), rated_at=_time(rated),
        window=window, staff=staff, category=category, level=level, valid=verdict,
        result=result, closed_at=_time(closed), closed_by=by,
    )  # fmt: skip
