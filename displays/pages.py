"""The pages a hall server serves to browsers: the start page and the screens.

Each page is a template over the hall file (names, time zone, the screen's settings); what changes
comes from the screen feed of the same view model (``/ws/halls/{hall}/screens/...``) through
``/static/feed.js``. Nothing is fetched from elsewhere: halls run on closed networks. The pages are
not part of the API, so they stay out of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from hall.config import HallConfig, Window
from hall.domain.errors import shown

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def template_config(*more: Path) -> TemplateConfig[Any]:
    """Jinja over this package's templates and ``more`` directories (the device pages')."""
    from litestar.plugins.jinja import JinjaTemplateEngine

    return TemplateConfig(directory=[TEMPLATES, *more], engine=JinjaTemplateEngine)


def _configs(state: State) -> list[HallConfig]:
    configs: list[HallConfig] = state.service.configs
    return configs


def hall_or_404(state: State, hall: str) -> HallConfig | Template:
    """The hall's config, or the page that says there is no such hall."""
    config = hall_config(state, hall)
    if config is None:
        return not_found(f"没有大厅 {shown(hall)}", f"No hall {shown(hall)} on this server")
    return config


def window_or_404(state: State, hall: str, window: str) -> tuple[HallConfig, Window] | Template:
    """The hall's config and its window, or the page that says there is no such hall or
    window."""
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    defined = config.window(window)
    if defined is None:
        return not_found(
            f"没有窗口 {shown(window)}", f"No window {shown(window)} in {config.hall.name_en}"
        )
    return config, defined


def hall_config(state: State, hall: str) -> HallConfig | None:
    return next((c for c in _configs(state) if c.hall.id == hall), None)


def not_found(what: str, what_en: str) -> Template:
    return Template("not_found.html", context={"what": what, "what_en": what_en}, status_code=404)


@get("/", include_in_schema=False, sync_to_thread=False)
def start_page(state: State) -> Template:
    # The device pages (kiosk, caller, pad) are the devices package's: the app lists them here.
    pages = state.get("device_pages", ())
    return Template("start.html", context={"halls": _configs(state), "device_pages": pages})


@get("/screens/{hall:str}", include_in_schema=False, sync_to_thread=False)
def hall_screen(state: State, hall: FromPath[str]) -> Template:
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    screen = config.screens.hall
    return Template(
        "hall.html",
        context={
            "config": config,
            "title": screen.title or config.hall.name,
            "title_en": screen.title_en or config.hall.name_en,
            "settings": {
                "hall": config.hall.id,
                "timezone": config.hall.timezone,
                "calls": screen.calls,
                "feed": f"/ws/halls/{config.hall.id}/screens/hall",
            },
        },
    )


@get("/screens/{hall:str}/windows/{window:str}", include_in_schema=False, sync_to_thread=False)
def window_screen(state: State, hall: FromPath[str], window: FromPath[str]) -> Template:
    found = window_or_404(state, hall, window)
    if isinstance(found, Template):
        return found
    config, defined = found
    return Template(
        "window.html",
        context={
            "config": config,
            "window": defined,
            "settings": {
                "hall": config.hall.id,
                "timezone": config.hall.timezone,
                "feed": f"/ws/halls/{config.hall.id}/screens/windows/{defined.id}",
            },
        },
    )


def routes() -> list[Any]:
    """The page handlers and ``/static/`` (feed.js, the pages' scripts and styles)."""
    return [
        start_page,
        hall_screen,
        window_screen,
        create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
    ]
