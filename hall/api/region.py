"""The city view for the region's supervisors: their login, the live load of every hall rolled
up by town and city (``GET /api/region``, the feed ``/ws/region``, the page ``/region``) and a
period's report of every hall with the sums by town and city (``GET /api/region/reports``).

A supervisor logs in as a hall's manager does (the same sessions, argon2 hashes and limits on
guessing), under the scope ``@<region id>``: no hall id starts with ``@``, so a supervisor's
token opens no hall's routes, screens or manager feed. To drill down, the page links each hall
to its manager view, which asks for that hall's manager login.
"""

from __future__ import annotations

import asyncio
import csv as stdlib_csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, cast

import msgspec
from litestar import Litestar, Request, Response, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.params import JSONBody, Parameter
from litestar.response import Template

from displays.city import CityFeed, CityView, RegionName
from displays.feed import _refuse
from displays.pages import not_found
from hall.api import feeds, openapi
from hall.api.auth import Principal, token_hash
from hall.api.errors import Unauthorized
from hall.api.reports import BadQuery, Gate, PeriodParam
from hall.api.windows import LoginRequest
from hall.config import HallConfig, Staff
from hall.domain.errors import NotFound
from hall.engine import utc_now
from hall.region import Region, Unit
from hall.reports import csv
from hall.reports.figures import rating_shares
from hall.reports.model import Figures
from hall.reports.periods import FORMS, PeriodError, parse
from scheduling.calendar import business_day

# The sums of a report that add up across halls (rates and means do not: see each hall's).
SUMMED = (
    *("issued", "served", "no_shows", "cancelled", "expired", "rated", "cases"),
    *("overdue_cases", "breaches", "excused"),
)


class NoRegion(NotFound):
    code = "no_region"


class SupervisorLogin(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    username: str
    name: str


class Sums(msgspec.Struct, frozen=True, kw_only=True):
    """A report's counts summed over halls (levels: counts of 5, 4, 3, 2, 1)."""

    issued: int
    served: int
    no_shows: int
    cancelled: int
    expired: int
    rated: int
    cases: int
    overdue_cases: int
    breaches: int
    excused: int
    levels: tuple[int, int, int, int, int]
    pause_minutes: float
    # Ratings' shares and mean from the summed counts (as a hall's own are); waits and the
    # within-target rate need each ticket: see each hall's.
    bad: int  # ratings of levels 2 and 1
    rating_mean: float | None  # 1-5
    participation: float | None
    satisfaction: float | None
    bad_rate: float | None


class HallReport(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    name_en: str
    figures: Figures  # the hall's report total, as /api/halls/{hall}/reports gives it
    bad: int
    rating_mean: float | None
    version: int


class UnitReport(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str
    name: str
    name_en: str
    halls: list[HallReport]
    units: list[UnitReport]
    total: Sums  # its halls and every unit's under it


class RegionReport(msgspec.Struct, frozen=True, kw_only=True):
    region: RegionName
    period: str
    start: date
    end: date
    city: UnitReport
    generated_at: datetime


def _region(service: Any) -> Region:
    region: Region | None = service.region
    if region is None:
        raise NoRegion("this server runs no region (hall serve --region FILE)")
    return region


class _Supervisors:
    """The region's supervisors, as :meth:`hall.api.auth.Sessions.verify_password` reads a
    hall's staff (``hall.id`` and ``staff_member``): one login path for both."""

    def __init__(self, region: Region) -> None:
        self.hall = _Scope(region.scope)
        self._region = region

    def staff_member(self, username: str) -> Staff | None:
        found = self._region.supervisor(username)
        if found is None:
            return None
        return Staff(
            username=found.username,
            name=found.name,
            password_hash=found.password_hash,
            role="manager",
        )


class _Scope(msgspec.Struct, frozen=True):
    id: str


async def supervisor(service: Any, token: str | None) -> Principal:
    """The supervisor a bearer token names, or Unauthorized (before NoRegion: a request without
    its credential is refused as such everywhere)."""
    if not token:
        raise Unauthorized("the city view needs a supervisor's login (Authorization: Bearer ...)")
    region = _region(service)
    principal: Principal | None = await service.sessions.lookup(token_hash(token))
    if principal is None or principal.hall != region.scope:
        raise Unauthorized("the city view needs a supervisor's login: log in again")
    return principal


def _bearer(request: Request[Any, Any, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@post("/api/region/login", status_code=200, tags=["region"])
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginRequest]) -> SupervisorLogin:
    """A region supervisor logs in (the city view); 401 wrong username or password."""
    service = request.app.state.service
    region = _region(service)
    address = request.client.host if request.client else ""
    accounts = cast(HallConfig, _Supervisors(region))
    principal = await service.sessions.verify_password(
        accounts, data.username, data.password, address
    )
    token = await service.sessions.issue(principal)
    found = region.supervisor(principal.name)
    assert found is not None
    return SupervisorLogin(token=token, username=found.username, name=found.name)


@post("/api/region/logout", status_code=200, tags=["region"])
async def logout(request: Request[Any, Any, Any]) -> dict[str, int]:
    """End every session of the supervisor."""
    service = request.app.state.service
    me = await supervisor(service, _bearer(request))
    return {"sessions_ended": await service.sessions.revoke_user(me.hall, me.name)}


@get("/api/region", tags=["region"])
async def city_view(request: Request[Any, Any, Any]) -> CityView:
    """Every hall's live load (waiting, longest wait, windows, served and ratings today), rolled
    up by town and city; supervisors only."""
    await supervisor(request.app.state.service, _bearer(request))
    feed: CityFeed = request.app.state.city
    return await feed.city.view()


@get("/api/region/reports", tags=["region"])
async def region_report(request: Request[Any, Any, Any], period: PeriodParam) -> RegionReport:
    """Each hall's report total for the period (as its own report), and the counts summed by
    town and city; supervisors only."""
    return await _region_report(request, period)


@get("/api/region/reports.csv", tags=["region"], media_type="text/csv")
async def region_report_csv(request: Request[Any, Any, Any], period: PeriodParam) -> Response[str]:
    """The same report as a CSV file (UTF-8 with a byte order mark, for spreadsheets): a row
    per unit's total (before its halls) and per hall, with the unit's path; supervisors only."""
    report = await _region_report(request, period)
    # "this-month" names no month once saved: a relative period's file says its days.
    label = report.period if report.period[:1].isdigit() else f"{report.start}..{report.end}"
    name = f"report-{report.region.id}-{csv.safe(label)}.csv"
    return Response(
        csv.BOM + render_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _region_report(request: Request[Any, Any, Any], period: str) -> RegionReport:
    service = request.app.state.service
    await supervisor(service, _bearer(request))
    region = _region(service)
    now = utc_now()
    asked = {}
    for config in region.configs:
        try:
            asked[config.hall.id] = parse(period, business_day(config, now))
        except PeriodError as exc:
            raise BadQuery(str(exc), forms=FORMS) from None
    gate: Gate = request.app.state.setdefault("report_gate", Gate())
    async with gate:
        reports = await asyncio.gather(
            *(service.reports.report(hall, p, "hall", now) for hall, p in asked.items())
        )
    by_hall = {
        r.hall: HallReport(
            id=c.hall.id, name=c.hall.name, name_en=c.hall.name_en, figures=r.total,
            bad=_bad(r.total.levels), rating_mean=_mean(r.total.levels), version=r.version,
        )
        for r, c in zip(reports, region.configs, strict=True)
    }  # fmt: skip
    first = reports[0]
    return RegionReport(
        region=RegionName(id=region.id, name=region.name, name_en=region.name_en),
        period=first.period,
        start=first.start,
        end=first.end,
        city=_unit_report(region.city, by_hall),
        generated_at=now,
    )


def _unit_report(unit: Unit, by_hall: dict[str, HallReport]) -> UnitReport:
    every = [by_hall[hall] for path in unit.walk() for hall in path[-1].halls]
    levels = [sum(h.figures.levels[i] for h in every) for i in range(5)]
    served = sum(h.figures.served for h in every)
    participation, satisfaction, bad_rate = rating_shares(levels, served)
    return UnitReport(
        kind=unit.kind,
        id=unit.id,
        name=unit.name,
        name_en=unit.name_en,
        halls=[by_hall[hall] for hall in unit.halls],
        units=[_unit_report(child, by_hall) for child in unit.units],
        total=Sums(
            **{name: sum(getattr(h.figures, name) for h in every) for name in SUMMED},
            levels=(levels[0], levels[1], levels[2], levels[3], levels[4]),
            pause_minutes=round(sum(h.figures.pause_minutes for h in every), 2),
            bad=_bad(levels),
            rating_mean=_mean(levels),
            participation=participation,
            satisfaction=satisfaction,
            bad_rate=bad_rate,
        ),
    )


def _bad(levels: Sequence[int]) -> int:
    return levels[3] + levels[4]


def _mean(levels: Sequence[int]) -> float | None:
    """The mean level (1-5) of counts of levels 5, 4, 3, 2, 1."""
    rated = sum(levels)
    return round(sum((5 - i) * n for i, n in enumerate(levels)) / rated, 2) if rated else None


# The region's CSV: a contract as the hall's (add columns at the end only). ``row`` is "total"
# (a unit's: city, town or village, its halls and every unit's under it) or "hall"; ``path``
# the units' ids from the city down, ``unit`` their names; the figures are the hall CSV's
# (a total's waits, within-target and case rates are empty: see its halls').
CSV_COLUMNS = (
    *("period", "start", "end", "row", "kind", "path", "unit", "hall", "name", "name_en"),
    *csv.FIGURES,
    "rating_mean",
    "version",
)


def render_csv(report: RegionReport) -> str:
    """The region report's CSV text (RFC 4180, as the hall's)."""
    out = io.StringIO()
    writer = stdlib_csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    dates = (report.period, report.start.isoformat(), report.end.isoformat())

    def walk(unit: UnitReport, above: tuple[UnitReport, ...]) -> None:
        path = (*above, unit)
        where = ["/".join(u.id for u in path), " / ".join(u.name for u in path)]
        named = [csv.text(s) for s in where]
        total = (unit.name, unit.name_en, _figures(unit), unit.total.rating_mean, "")
        rows = [("total", "", *total)] + [
            ("hall", h.id, h.name, h.name_en, h.figures, h.rating_mean, str(h.version))
            for h in unit.halls
        ]
        for row, hall, name, name_en, figures, mean, version in rows:
            texts = [csv.text(t) for t in (hall, name, name_en)]
            writer.writerow(
                [*dates, row, unit.kind, *named, *texts, *csv.cells(figures),
                 csv.number(mean, 2), version]
            )  # fmt: skip
        for child in unit.units:
            walk(child, path)

    walk(report.city, ())
    return out.getvalue()


def _figures(unit: UnitReport) -> Figures:
    """A unit's sums as the figures of a CSV row (what needs each ticket: None)."""
    t = unit.total
    counts = {name: getattr(t, name) for name in SUMMED}
    return Figures(
        key=unit.id, name=unit.name, name_en=unit.name_en, **counts,
        wait_mean=None, wait_p90=None, service_mean=None, service_p90=None, within_target=None,
        levels=t.levels, participation=t.participation, satisfaction=t.satisfaction,
        bad_rate=t.bad_rate, feedback_rate=None, rectification_rate=None, revisit_rate=None,
        pause_minutes=t.pause_minutes,
    )  # fmt: skip


@websocket("/ws/region")
async def city_feed(socket: WebSocket[Any, Any, Any], state: State) -> None:
    """The city view, live (``?token=`` a supervisor's): frames as the screens' (feed.js)."""
    await socket.accept()
    service = state.service
    token = socket.query_params.get("token")
    address = feeds.address(socket)
    try:
        await supervisor(service, token)
        state.connections.admit(address)
    except Exception as exc:
        await _refuse(socket, exc)
        return

    async def still() -> None:
        await supervisor(service, token)

    feed: CityFeed = state.city
    try:
        await feed.follow(socket, still)
    except Unauthorized as exc:
        await _refuse(socket, exc)
    except Exception:  # the page went away: it reconnects
        pass
    finally:
        state.connections.release(address)


@get("/region", include_in_schema=False, sync_to_thread=False)
def region_page(state: State) -> Template:
    region: Region | None = state.service.region
    if region is None:
        return not_found("本服务器未配置区域", "This server runs no region (--region FILE)")
    return Template(
        "region.html",
        context={
            "region": region,
            # The city's clock: its centre's time zone (a region is one city).
            "settings": {
                "region": region.id,
                "feed": "/ws/region",
                "timezone": region.configs[0].hall.timezone,
            },
        },
    )


@get("/region/reports", include_in_schema=False, sync_to_thread=False)
def region_reports_page(
    state: State, period: Annotated[str, Parameter(max_length=40)] = "this-month"
) -> Template:
    """The region's reports for supervisors, on the city view's login; it starts on the period
    of its address (a link or a bookmark), which the API checks."""
    region: Region | None = state.service.region
    if region is None:
        return not_found("本服务器未配置区域", "This server runs no region (--region FILE)")
    city = region.configs[0]  # the city's centre: its clock and its business day
    settings = {
        "region": region.id,
        "timezone": city.hall.timezone,
        "today": business_day(city, utc_now()).isoformat(),
        "period": period,
    }
    return Template("region_reports.html", context={"region": region, "settings": settings})


# The statuses each route can answer beyond those of any route (hall/api/openapi.py), and
# whether it takes a supervisor's bearer token: said in the OpenAPI document by :func:`declare`.
ANSWERS = {
    ("/api/region/login", "post"): ({401, 404, 429, 503}, False),
    # Guarded too, but the bearer scheme is declared on reads only: the document promises an
    # Idempotency-Key to every guarded command, and logging out needs none (twice is once).
    ("/api/region/logout", "post"): ({401, 404}, False),
    ("/api/region", "get"): ({401, 404, 503}, True),
    ("/api/region/reports", "get"): ({401, 404, 503}, True),
    ("/api/region/reports.csv", "get"): ({401, 404, 503}, True),
}


def declare(app: Litestar) -> None:
    """Add the region routes' own refusals (no region here: 404; a supervisor's token: 401) to
    the OpenAPI document, after :func:`hall.api.openapi.declare_errors`."""
    paths = app.openapi_schema.paths
    assert paths is not None
    for (path, method), (statuses, guarded) in ANSWERS.items():
        operation = getattr(paths[path], method)
        responses = operation.responses or {}
        for status in sorted(statuses):
            responses[str(status)] = openapi._error_response(openapi.WHY[status])
        operation.responses = responses
        if guarded:
            operation.security = [{openapi.BEARER: []}]


ROUTES: list[Any] = [
    *(login, logout, city_view, region_report, city_feed, region_page),
    *(region_report_csv, region_reports_page),
]
