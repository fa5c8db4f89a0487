"""The manager's office pages: bad-rating follow-up (差评整改) and reports. Each page is a shell
over the hall file; the manager logs in on the page (displays/static/manager-session.js) and
its script reads the manager-only API with the bearer token, which never goes into a URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, Parameter
from litestar.response import Template

from displays import charts
from displays.pages import hall_or_404
from hall.api.auth import requires
from hall.api.reports import ByParam, PeriodParam, report_for
from hall.api.types import TEXT_MAX
from hall.config import HallConfig
from hall.domain.errors import NotFound, shown
from hall.engine import utc_now
from hall.reports.model import Report
from scheduling.calendar import business_day

GROUPINGS = ("hall", "zone", "category", "window", "staff")


def _context(config: HallConfig, page: str, **settings: Any) -> dict[str, Any]:
    return {
        "config": config,
        "page": page,
        "settings": {
            "hall": config.hall.id,
            "timezone": config.hall.timezone,
            "text_max": TEXT_MAX,  # the inputs' maxlength: what the API takes
            **settings,
        },
    }


@get("/manage/{hall:str}/cases", include_in_schema=False, sync_to_thread=False)
def cases_page(state: State, hall: FromPath[str]) -> Template:
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    return Template("cases.html", context=_context(config, "cases"))


@get("/manage/{hall:str}/reports", include_in_schema=False, sync_to_thread=False)
def reports_page(
    state: State,
    hall: FromPath[str],
    period: Annotated[str, Parameter(max_length=40)] = "this-month",
    by: Annotated[str, Parameter(max_length=20)] = "hall",
) -> Template:
    """The page starts on the period and grouping of its address (a link or a bookmark); the
    API checks them."""
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    # today: the hall's business day, as the API reads "today"; the picker starts there.
    context = _context(
        config,
        "reports",
        period=period,
        by=by if by in GROUPINGS else "hall",
        today=business_day(config, utc_now()).isoformat(),
    )
    return Template("reports.html", context=context)


class UnknownChart(NotFound):
    code = "unknown_chart"


class RecentReports:
    """The report a page's four charts share: asked at once, computed once (a quarter of a big
    hall takes seconds), kept a few seconds."""

    def __init__(self, seconds: float = 10.0, most: int = 16) -> None:
        self.seconds, self.most = seconds, most
        self._kept: dict[tuple[str, str, str], tuple[float, asyncio.Future[Report]]] = {}

    async def get(self, key: tuple[str, str, str], make: Callable[[], Awaitable[Report]]) -> Report:
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is None or now - kept[0] > self.seconds:
            for old in [k for k, (at, _) in self._kept.items() if now - at > self.seconds]:
                del self._kept[old]
            if len(self._kept) >= self.most:
                self._kept.clear()
            kept = self._kept[key] = (now, asyncio.ensure_future(make()))
        try:
            return await asyncio.shield(kept[1])
        except Exception:
            self._kept.pop(key, None)  # a refusal is not kept: the next ask tries again
            raise


@get(
    "/api/halls/{hall:str}/reports/charts/{chart:str}",
    opt=requires("manager"),
    media_type="image/svg+xml",
    tags=["reports"],
)
async def report_chart(
    request: Request[Any, Any, Any],
    hall: FromPath[str],
    chart: Annotated[
        str, Parameter(description=f"one of {', '.join(f'{c}.svg' for c in charts.CHARTS)}")
    ],
    period: PeriodParam,
    by: ByParam = "hall",
) -> Response[str]:
    """A chart of the period's report as SVG (drawn on the server: text as text, no external
    references), to put inline in a page: hours (load by hour), days (load by day), ratings
    (levels), breaches (by rule)."""
    draw = charts.CHARTS.get(chart.removesuffix(".svg")) if chart.endswith(".svg") else None
    if draw is None:
        known = [f"{c}.svg" for c in charts.CHARTS]
        raise UnknownChart(f"no chart {shown(chart)}", known=known)
    recent: RecentReports = request.app.state.setdefault("recent_reports", RecentReports())
    report = await recent.get((hall, period, by), lambda: report_for(request, hall, period, by))
    svg = await asyncio.to_thread(draw, report)  # tens of milliseconds: off the event loop
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


ROUTES = [cases_page, reports_page, report_chart]
