"""The pages people touch, served by the hall server like the screens: the kiosk (取号机), the
window caller (呼叫器), the evaluation pad (评价器) and the visitor's phone page (from the QR code
on the ticket). Templates in ``devices/templates/``, scripts and styles in ``devices/static/``
(at ``/static/devices/``); the live parts follow screen-like feeds through ``/static/feed.js``.
Each page's routes are in its own module; this one gathers them for the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.static_files import create_static_files_router

from devices import caller, kiosk, pad, phone
from devices.listed import DevicePage

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


DEVICE_PAGES: tuple[DevicePage, ...] = (*kiosk.PAGES, *caller.PAGES, *pad.PAGES)


def routes() -> list[Any]:
    return [
        *kiosk.ROUTES,
        *caller.ROUTES,
        *pad.ROUTES,
        *phone.ROUTES,
        create_static_files_router(
            path="/static/devices", directories=[STATIC], include_in_schema=False
        ),
    ]
