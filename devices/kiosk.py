"""The kiosk page (取号机): zones, then a zone's services, then the ticket, for a touch screen or a
keyboard; a large-type elder mode (适老化); an optional resident ID number.

The page is a template over the hall file (zones and services with their names, priorities);
the waiting counts on its buttons come live from the hall screen's feed. It takes tickets with
its kiosk's device token (from ``#token=`` on first open, then kept by the browser) through
``POST …/tickets``, one Idempotency-Key per tap, reused when it retries.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from devices.listed import DevicePage
from displays.pages import hall_or_404

IDLE_SECONDS = 15  # back to the start, elder mode off and any ID number forgotten
IDLE_RANGE = (5, 600)  # what ``?idle=`` may set (a hall's slower visitors, a test's impatience)


@get("/kiosk/{hall:str}", include_in_schema=False, sync_to_thread=False)
def kiosk_page(request: Request[Any, Any, Any], state: State, hall: FromPath[str]) -> Template:
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    zones = [
        {
            "id": zone.id,
            "name": zone.name,
            "name_en": zone.name_en,
            "categories": [
                {"id": c.id, "prefix": c.prefix, "name": c.name, "name_en": c.name_en}
                for c in config.categories
                if c.zone == zone.id
            ],
        }
        for zone in config.zones
    ]
    return Template(
        "kiosk.html",
        context={
            "config": config,
            "settings": {
                "hall": config.hall.id,
                "name": config.hall.name,
                "name_en": config.hall.name_en,
                "timezone": config.hall.timezone,
                "zones": [z for z in zones if z["categories"]],
                "priorities": {p.id: [p.name, p.name_en] for p in config.priorities},
                "idle_seconds": _idle(request.query_params.get("idle")),
                "feed": f"/ws/halls/{config.hall.id}/screens/hall",
                "api": f"/api/halls/{config.hall.id}",
            },
        },
    )


def _idle(text: str | None) -> int:
    if text is None or not text.isascii() or not text.isdigit():
        return IDLE_SECONDS
    return max(IDLE_RANGE[0], min(IDLE_RANGE[1], int(text)))


ROUTES: list[Any] = [kiosk_page]
PAGES = (
    DevicePage(
        path="/kiosk/{hall}",
        name="取号机",
        name_en="Ticket kiosk",
        about="按专区和业务取号（触摸屏或键盘），大字适老模式，可选身份证号；显示号码、前面人数和预计等候。"
        "首次打开时在地址后加 #token=取号机设备令牌。",
        about_en="Take a ticket by zone and service (touch screen or keyboard), a large-type "
        "mode for older visitors, an optional ID number; shows the number, how many are ahead "
        "and the estimated wait. Open it once with #token=KIOSK-DEVICE-TOKEN.",
    ),
)
