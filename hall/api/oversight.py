"""Bad ratings' follow-up (差评整改) and discipline breaches, for managers: the open cases with
their deadlines and history, a step of a case, the recent breaches, an excuse.

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
from hall.api.casefiles import CaseFiles
from hall.api.idempotency import request_key
from hall.api.types import Id, MaybeText, Text
from hall.api.windows import caller
from hall.config import HallConfig
from hall.domain import commands as cmd
from hall.domain.events import AnyEvent
from hall.domain.oversight import BREACH_DAYS, RULES, Breach, Case, deadlines, overdue
from hall.domain.state import HallState
from hall.engine import HallEngine
from scheduling.calendar import business_day

MANAGER = requires("manager")
STATE_KEY = "case_files"  # app.state: hall id -> CaseFiles


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


class CaseView(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the rated ticket's id: the case's id in the routes
    number: str
    day: date  # deadlines count in working days from it
    rated_at: datetime
    window: str
    staff: str
    staff_name: str
    category: Named
    level: int
    channel: str
    reasons: list[Named]
    comment: str | None  # the visitor's words: managers only
    stage: str  # the step the case waits for
    valid: bool | None
    verified_by: str | None  # who found it not valid (someone else confirms)
    deadlines: dict[str, date]  # the last day of each step
    due: date
    overdue: bool
    steps: list[CaseStepView]


class CasesView(msgspec.Struct, frozen=True, kw_only=True):
    today: date
    revisit_results: list[Named]
    cases: list[CaseView]  # overdue first, then by due day and rating time


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
    measured: float | None  # None: not read back from the journal
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


def _files(request: Request[Any, Any, Any], engine: HallEngine) -> CaseFiles:
    kept: dict[str, CaseFiles] = request.app.state.setdefault(STATE_KEY, {})
    files = kept.get(engine.hall)
    if files is None or files.engine is not engine:
        files = kept[engine.hall] = CaseFiles(engine)
    return files


def _copy(state: HallState) -> tuple[int, list[Case], list[Breach]]:
    """Copies: the state's own objects change under the next command."""
    cases = [replace(c) for c in state.cases.values()]
    return state.version, cases, [replace(b) for b in state.breaches.values()]


async def _read(
    request: Request[Any, Any, Any], engine: HallEngine
) -> tuple[int, list[Case], list[Breach], CaseFiles]:
    """The open cases and kept breaches (copies, at one version) and the journal's facts about
    them, read at least up to that version."""
    version, cases, breaches = await engine.read(_copy)
    times = [c.rated_at for c in cases] + [b.at for b in breaches]
    files = _files(request, engine)
    await files.catch_up(version, min(times, default=None))
    files.forget(version, (c.id for c in cases), (b.id for b in breaches))
    return version, cases, breaches, files


def _person(config: HallConfig, username: str | None) -> str | None:
    if username is None:
        return None
    member = config.staff_member(username)
    return member.name if member else username


def _named(code: str, found: Any) -> Named:
    if found is None:
        return Named(code=code, name=code, name_en=code)
    return Named(code=code, name=found.name, name_en=found.name_en)


def case_view(
    config: HallConfig, case: Case, files: CaseFiles, version: int, now: datetime
) -> CaseView:
    rated = files.ratings.get(case.id)
    steps = [s.event for s in files.steps.get(case.id, []) if s.version <= version]
    return CaseView(
        id=case.id,
        number=case.number,
        day=case.day,
        rated_at=case.rated_at,
        window=case.window,
        staff=case.staff,
        staff_name=_person(config, case.staff) or case.staff,
        category=_named(case.category, config.category(case.category)),
        level=case.level,
        channel=case.channel,
        reasons=[_named(r, config.rating_reason(r)) for r in (rated.reasons if rated else ())],
        comment=rated.comment if rated else None,
        stage=case.stage.value,
        valid=case.valid,
        verified_by=case.verified_by,
        deadlines={stage.value: day for stage, day in deadlines(config, case.day).items()},
        due=deadlines(config, case.day)[case.stage],
        overdue=overdue(config, case, now),
        steps=[
            CaseStepView(
                step=s.step,
                at=s.at,
                by=s.by,
                by_name=_person(config, s.by) or s.by,
                valid=s.valid,
                result=None
                if s.result is None
                else _named(s.result, config.revisit_result(s.result)),
                text=s.text,
            )
            for s in steps
        ],
    )


def breach_view(config: HallConfig, breach: Breach, files: CaseFiles) -> BreachView:
    zh, en, unit = RULES.get(breach.rule, (breach.rule, breach.rule, ""))
    measured = files.breaches.get(breach.id)
    excuse = measured.excuse if measured else None
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
        measured=measured.event.measured if measured else None,
        limit=measured.event.limit if measured else None,
        evidence=list(measured.event.evidence) if measured else [],
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
        version, cases, _, files = await _read(request, engine)
        now = engine.clock()
        views = [case_view(config, c, files, version, now) for c in cases]
        views.sort(key=lambda v: (not v.overdue, v.due, v.rated_at))
        results = [_named(r.code, r) for r in config.cases.revisit_results]
        return CasesView(today=business_day(config, now), revisit_results=results, cases=views)

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
        _, _, kept, files = await _read(request, engine)
        today = business_day(config, engine.clock())
        first = today - timedelta(days=days - 1)
        views = [breach_view(config, b, files) for b in kept]
        views = [v for v in views if v.day >= first]
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
        _, _, kept, files = await _read(request, engine)
        found = next(b for b in kept if b.id == breach)
        return breach_view(engine.config, found, files)
