"""Reports for managers: a period's figures as JSON, or as a CSV download."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, Parameter

from hall.api.auth import requires
from hall.api.errors import Busy
from hall.domain.errors import HallError, shown
from hall.engine import utc_now
from hall.reports import csv
from hall.reports.figures import GROUPINGS
from hall.reports.model import Grouping, Report
from hall.reports.periods import FORMS, PeriodError, parse
from scheduling.calendar import business_day

MANAGER = requires("manager")
# Reports computed at once per server (each holds a thread for up to a second on a long period),
# and how many more may wait for a turn; beyond, 503 busy: a manager reloading a page in a loop
# must not delay everyone's reports by tens of seconds.
COMPUTING = 2
WAITING = 8
RETRY_SECONDS = 2


class BadQuery(HallError):
    """A period or grouping the report cannot read: a request to correct (400), not a command
    the hall refused (422)."""

    code = "invalid_query"


PeriodParam = Annotated[
    str, Parameter(description=f"the period: {FORMS}", min_length=1, max_length=40)
]
ByParam = Annotated[
    str, Parameter(description=f"one row per group: {', '.join(GROUPINGS)} (hall: none)")
]


class ReportController(Controller):
    path = "/api/halls/{hall:str}"
    tags = ["reports"]

    @get("/reports", opt=MANAGER)
    async def report(
        self, request: Request[Any, Any, Any], hall: FromPath[str], period: PeriodParam,
        by: ByParam = "hall",
    ) -> Report:  # fmt: skip
        """The figures of a period (tickets, waits, service, ratings, the follow-up of bad
        ratings, breaches, pauses, the assessment score), for the hall and per group; from
        every event journaled before the request. Staff names in full: managers only."""
        return await report_for(request, hall, period, by)

    @get("/reports.csv", opt=MANAGER, media_type="text/csv")
    async def report_csv(
        self, request: Request[Any, Any, Any], hall: FromPath[str], period: PeriodParam,
        by: ByParam = "hall",
    ) -> Response[str]:  # fmt: skip
        """The same report as a CSV file (UTF-8 with a byte order mark, for spreadsheets);
        its columns are listed in the README's Reports section."""
        report = await report_for(request, hall, period, by)
        return Response(
            csv.BOM + csv.render(report),
            media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types
            headers={"Content-Disposition": f'attachment; filename="{csv.filename(report)}"'},
        )


async def report_for(request: Request[Any, Any, Any], hall: str, period: str, by: str) -> Report:
    """The report a request asks for (the pages' charts too), or a clear refusal."""
    service = request.app.state.service
    engine = service.engine(hall)  # 404 for a hall this server does not run
    if by not in GROUPINGS:
        raise BadQuery(f"cannot group by {shown(by)}", known=list(GROUPINGS))
    now: datetime = utc_now()
    try:
        asked = parse(period, business_day(engine.config, now))
    except PeriodError as exc:
        raise BadQuery(str(exc), forms=FORMS) from None
    grouping: Grouping = by  # checked against GROUPINGS above
    gate: Gate = request.app.state.setdefault("report_gate", Gate())
    async with gate:
        report: Report = await service.reports.report(hall, asked, grouping, now)
    return report


class Gate:
    """At most ``computing`` computations at once, ``waiting`` more in line; the rest are refused
    busy with ``message`` (COMPUTING reports, WAITING more, by default)."""

    def __init__(
        self,
        computing: int = COMPUTING,
        waiting: int = WAITING,
        message: str = "many reports are being prepared now; try again in a moment",
    ) -> None:
        self._turns = asyncio.Semaphore(computing)
        self._inside = 0
        self._limit = computing + waiting
        self._message = message

    async def __aenter__(self) -> None:
        if self._inside >= self._limit:
            raise Busy(self._message, retry_after=RETRY_SECONDS)
        self._inside += 1
        try:
            await self._turns.acquire()
        except BaseException:
            self._inside -= 1
            raise

    async def __aexit__(self, *_: object) -> None:
        self._turns.release()
        self._inside -= 1
