"""Bad ratings' follow-up (差评整改) and discipline breaches, for managers: the open cases with
their deadlines and history, a step of a case, the recent breaches, an excuse.

Which cases are open and which breaches exist come from the live state (authoritative); their
details (a rating's reasons and comment, each step's who, when and text, a breach's measure,
evidence and excuse) from the reports' read model, caught up with the journal first.

Comments (the visitor's words) and staff names are in these answers: they are manager-only, as
every route here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, Parameter

from hall.api.auth import requires
from hall.api.idempotency import request_key
from hall.api.types import Id, MaybeText, Text
from hall.api.windows import caller
from hall.config import HallConfig
from hall.domain import commands as cmd
from hall.domain.events import AnyEvent
from hall.domain.oversight import BREACH_DAYS, RULES, Breach, Case, deadlines, overdue
from hall.domain.state import HallState
from hall.engine import HallEngine
from hall.reports import details
from hall.reports.details import BreachDetails, CaseDetails
from scheduling.calendar import business_day

MANAGER = requires("manager")


class Named(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    name_en: str


class CaseStepView(msgspec.Struct, frozen=True, kw_only=True):
    step: str
    at: datetime
    by: str
    by_name: str
    valid: bool | None
    result: Named | None
    text: str


class RatedCase(msgspec.Struct, frozen=True, kw_only=True):
    """What every case says of the bad rating that opened it, open or closed."""

    id: str  # the rated ticket's id: the case's id in the routes
    number: str
    day: date  # deadlines count in working days from it
    rated_at: datetime
    window: str
    staff: str
    staff_name: str
    category: Named
    level: int


class CaseView(RatedCase, frozen=True, kw_only=True):
    channel: str
    reasons: list[Named]
    comment: str | None  # the visitor's words: managers only
    stage: str  # the step the case waits for
    valid: bool | None
    verified_by: str | None  # who found it not valid (someone else confirms)
    verified_by_name: str | None
    deadlines: dict[str, date]  # the last day of each step
    due: date
    overdue: bool
    steps: list[CaseStepView]


class CasesView(msgspec.Struct, frozen=True, kw_only=True):
    today: date
    revisit_results: list[Named]
    cases: list[CaseView]  # overdue first, then by due day and rating time


class ClosedCaseView(RatedCase, frozen=True, kw_only=True):
    valid: bool | None  # False: found not valid (and confirmed so)
    result: Named | None  # the revisit's result
    closed_at: datetime
    closed_by: str
    closed_by_name: str


class ClosedCasesView(msgspec.Struct, frozen=True, kw_only=True):
    days: int
    cases: list[ClosedCaseView]  # the latest closed first, at most CLOSED_MOST


# A page lists them, read-only: a hall closing hundreds a month wants a report, not a list.
CLOSED_MOST = 200


class StepRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    step: Literal["verify", "confirm", "rectify", "revisit", "close"]
    valid: bool | None = None  # verify and confirm: the verdict
    result: Id | None = None  # revisit: a code of the hall's cases.revisit_results
    text: MaybeText = ""  # why not valid, what was done, a note


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    case: str
    number: str
    step: str
    stage: str | None  # what the case waits for now; None: closed
    closed: bool


class BreachView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    rule: str
    rule_name: str
    rule_name_en: str
    unit: str
    window: str
    staff: str | None
    staff_name: str | None
    since: datetime
    at: datetime
    day: date
    measured: float | None  # None: not in the read model (not expected)
    limit: float | None
    evidence: list[int]  # journal versions of the events that show it
    excused: bool
    excuse_reason: str | None
    excused_by: str | None
    excused_by_name: str | None
    excused_at: datetime | None


class BreachesView(msgspec.Struct, frozen=True, kw_only=True):
    today: date
    days: int
    breaches: list[BreachView]  # newest first


class ExcuseRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Text


def _copy(state: HallState) -> tuple[int, list[Case], list[Breach]]:
    """Copies: the state's own objects change under the next command."""
    cases = [replace(c) for c in state.cases.values()]
    return state.version, cases, [replace(b) for b in state.breaches.values()]


async def _cases(
    request: Request[Any, Any, Any], engine: HallEngine
) -> tuple[list[Case], dict[str, CaseDetails]]:
    """The open cases (copies) and their details up to the state's version."""
    version, cases, _ = await engine.read(_copy)
    ids = [c.id for c in cases]
    reports = request.app.state.service.reports
    found: dict[str, CaseDetails] = await reports.read(
        engine.hall, lambda model: details.cases(model, ids, version)
    )
    return cases, found


async def _breach_details(
    request: Request[Any, Any, Any], engine: HallEngine, first: date
) -> dict[str, BreachDetails]:
    """The details of the breaches recorded on business day ``first`` or later."""
    reports = request.app.state.service.reports
    found: dict[str, BreachDetails] = await reports.read(
        engine.hall, lambda model: details.breaches(model, first)
    )
    return found


def _name(config: HallConfig, username: str) -> str:
    """A person's name as the hall file gives it (someone since removed: the username)."""
    member = config.staff_member(username)
    return member.name if member else username


def _person(config: HallConfig, username: str | None) -> str | None:
    return None if username is None else _name(config, username)


def _named(code: str, found: Any) -> Named:
    if found is None:
        return Named(code=code, name=code, name_en=code)
    return Named(code=code, name=found.name, name_en=found.name_en)


def _rated(config: HallConfig, case: Case | details.ClosedCase) -> dict[str, Any]:
    """The fields of RatedCase, from an open case of the state or a closed one of the reports."""
    return {
        "id": case.id,
        "number": case.number,
        "day": case.day,
        "rated_at": case.rated_at,
        "window": case.window,
        "staff": case.staff,
        "staff_name": _name(config, case.staff),
        "category": _named(case.category, config.category(case.category)),
        "level": case.level,
    }


def _result(config: HallConfig, code: str | None) -> Named | None:
    return None if code is None else _named(code, config.revisit_result(code))


def case_view(config: HallConfig, case: Case, found: CaseDetails | None, now: datetime) -> CaseView:
    found = found or CaseDetails()
    return CaseView(
        **_rated(config, case),
        channel=case.channel,
        reasons=[_named(r, config.rating_reason(r)) for r in found.reasons],
        comment=found.comment,
        stage=case.stage.value,
        valid=case.valid,
        verified_by=case.verified_by,
        verified_by_name=_person(config, case.verified_by),
        deadlines={stage.value: day for stage, day in deadlines(config, case.day).items()},
        due=deadlines(config, case.day)[case.stage],
        overdue=overdue(config, case, now),
        steps=[
            CaseStepView(
                step=s.step,
                at=s.at,
                by=s.by,
                by_name=_name(config, s.by),
                valid=s.valid,
                result=_result(config, s.result),
                text=s.text,
            )
            for s in found.steps
        ],
    )


def breach_view(config: HallConfig, breach: Breach, found: BreachDetails | None) -> BreachView:
    zh, en, unit = RULES.get(breach.rule, (breach.rule, breach.rule, ""))
    # The state says whether it is excused; the model, caught up later, may know more already.
    excuse = found.excuse if found and breach.excused else None
    return BreachView(
        id=breach.id,
        rule=breach.rule,
        rule_name=zh,
        rule_name_en=en,
        unit=unit,
        window=breach.window,
        staff=breach.staff,
        staff_name=_person(config, breach.staff),
        since=breach.since,
        at=breach.at,
        day=business_day(config, breach.at),
        measured=found.measured if found else None,
        limit=found.limit if found else None,
        evidence=list(found.evidence) if found else [],
        excused=breach.excused,
        excuse_reason=excuse.reason if excuse else None,
        excused_by=excuse.by if excuse else None,
        excused_by_name=_person(config, excuse.by) if excuse else None,
        excused_at=excuse.at if excuse else None,
    )


class OversightController(Controller):
    path = "/api/halls/{hall:str}"
    tags = ["oversight"]

    @get("/cases", opt=MANAGER)
    async def cases(self, request: Request[Any, Any, Any], hall: FromPath[str]) -> CasesView:
        """Open follow-up cases of bad ratings (不满意, 非常不满意): overdue ones first, each with
        its deadlines in working days, its history, and the rating's reasons and comment."""
        engine: HallEngine = request.app.state.service.engine(hall)
        config = engine.config
        cases, found = await _cases(request, engine)
        now = engine.clock()
        views = [case_view(config, c, found.get(c.id), now) for c in cases]
        views.sort(key=lambda v: (not v.overdue, v.due, v.rated_at))
        results = [_named(r.code, r) for r in config.cases.revisit_results]
        return CasesView(today=business_day(config, now), revisit_results=results, cases=views)

    @get("/cases/closed", opt=MANAGER)
    async def closed(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        days: Annotated[int, Parameter(ge=1, le=BREACH_DAYS)] = 30,
    ) -> ClosedCasesView:
        """Cases closed in the last ``days`` days (24 hours each), the latest first (at most
        200), from the reports' read model: closed cases leave the live state."""
        engine: HallEngine = request.app.state.service.engine(hall)
        config = engine.config
        since = engine.clock() - timedelta(days=days)
        reports = request.app.state.service.reports
        found: list[details.ClosedCase] = await reports.read(
            engine.hall, lambda model: details.closed_cases(model, since, CLOSED_MOST)
        )
        views = [
            ClosedCaseView(
                **_rated(config, c),
                valid=c.valid,
                result=_result(config, c.result),
                closed_at=c.closed_at,
                closed_by=c.closed_by,
                closed_by_name=_name(config, c.closed_by),
            )
            for c in found
        ]
        return ClosedCasesView(days=days, cases=views)

    @post("/cases/{case:str}/steps", opt=MANAGER, status_code=200)
    async def step(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        case: FromPath[str],
        data: JSONBody[StepRequest],
    ) -> StepResult:
        """The case's next step, by the calling manager: verify (valid, or not valid with a
        reason in ``text``), confirm (a second manager's verdict on a case found not valid),
        rectify (``text``: what was done), revisit (``result``: a revisit result code) or close.
        Any other step than the one the case waits for is refused (409 case_step_refused)."""
        engine: HallEngine = request.app.state.service.engine(hall)
        command = cmd.StepCase(
            case=case,
            step=data.step,
            by=caller(request),
            valid=data.valid,
            result=data.result,
            text=data.text,
        )

        # A closed case leaves the state, and its ticket leaves with its day: ask first.
        found = await engine.read(lambda state: state.cases.get(case))
        number = found.number if found else ""

        def reply(state: HallState, _: list[AnyEvent]) -> StepResult:
            left = state.cases.get(case)
            stage = left.stage.value if left else None
            return StepResult(
                case=case, number=number, step=data.step, stage=stage, closed=left is None
            )

        done = await engine.execute(command, reply, key=request_key(request))
        result: StepResult = done.reply
        return result

    @get("/breaches", opt=MANAGER)
    async def breaches(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        days: Annotated[int, Parameter(ge=1, le=BREACH_DAYS)] = 1,
    ) -> BreachesView:
        """Discipline breaches of the last ``days`` business days (1: today), newest first,
        excused ones included (an excuse is recorded, never a deletion)."""
        engine: HallEngine = request.app.state.service.engine(hall)
        config = engine.config
        today = business_day(config, engine.clock())
        first = today - timedelta(days=days - 1)
        _, _, kept = await engine.read(_copy)
        kept = [b for b in kept if business_day(config, b.at) >= first]
        found = await _breach_details(request, engine, first)
        views = [breach_view(config, b, found.get(b.id)) for b in kept]
        views.sort(key=lambda v: v.at, reverse=True)
        return BreachesView(today=today, days=days, breaches=views)

    @post("/breaches/{breach:str}/excuse", opt=MANAGER, status_code=200)
    async def excuse(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        breach: FromPath[str],
        data: JSONBody[ExcuseRequest],
    ) -> BreachView:
        """Excuse a breach with a reason: it stays on record, the assessment stops counting it."""
        engine: HallEngine = request.app.state.service.engine(hall)
        command = cmd.ExcuseBreach(breach=breach, reason=data.reason, by=caller(request))
        await engine.execute(command, key=request_key(request))
        excused = await engine.read(lambda state: replace(state.breaches[breach]))
        found = await _breach_details(request, engine, business_day(engine.config, excused.at))
        return breach_view(engine.config, excused, found.get(breach))
