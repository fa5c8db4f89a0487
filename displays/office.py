"""The manager's office pages: bad-rating follow-up (差评整改) and reports. Each page is a shell
over the hall file; the manager logs in on the page (displays/static/manager-session.js) and
its script reads the manager-only API with the bearer token, which never goes into a URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.datastructures import State
from litestar.params import FromPath, Parameter
from litestar.response import Template

from displays.pages import hall_or_404
from hall.config import HallConfig

GROUPINGS = ("hall", "zone", "category", "window", "staff")


def _context(config: HallConfig, page: str, **settings: Any) -> dict[str, Any]:
    return {
        "config": config,
        "page": page,
        "settings": {"hall": config.hall.id, "timezone": config.hall.timezone, **settings},
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
    context = _context(config, "reports", period=period, by=by if by in GROUPINGS else "hall")
    return Template("reports.html", context=context)


ROUTES = [cases_page, reports_page]
