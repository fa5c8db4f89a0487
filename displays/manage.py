"""The manager's live view: the page ``/manage/{hall}`` and its feed
``/ws/halls/{hall}/screens/manager?token=<a manager's bearer token>``.

The page asks for a manager's login (``/static/manager-session.js``), then follows the feed
(:mod:`displays.manager`) and acts through the API (:mod:`hall.api.live`, and the manager routes
before it: force-close, profile, notice). The feed admits a live manager session of this hall
only: no token or an unknown one 4401, a staff member's 4403. The session is checked when the
feed opens and again each second: once it has ended (a logout elsewhere, a password change, a
forced logout, expiry) the feed closes with 4401, and the page shows the login form again.
"""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, get, websocket
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from displays.feed import serve
from displays.manager import ManagerScreen
from displays.pages import hall_or_404
from hall.api.auth import overseen, token_hash
from hall.api.errors import Unauthorized
from hall.domain.errors import Forbidden
from hall.engine import HallEngine


@get("/manage/{hall:str}", include_in_schema=False, sync_to_thread=False)
def manage_page(state: State, hall: FromPath[str]) -> Template:
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    return Template(
        "manage.html",
        context={
            "config": config,
            "settings": {
                "hall": config.hall.id,
                "timezone": config.hall.timezone,
                "feed": f"/ws/halls/{config.hall.id}/screens/manager",
                "categories": [[c.id, c.name, c.name_en] for c in config.categories],
                "staff": [[s.username, s.name] for s in config.staff],
            },
        },
    )


@websocket("/ws/halls/{hall:str}/screens/manager")
async def manager_feed(socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str]) -> None:
    service = state.screens.service
    token = socket.query_params.get("token")
    digest = token_hash(token) if token else None

    async def admit(engine: HallEngine) -> None:
        principal = await service.sessions.lookup(digest) if digest else None
        hall_id = engine.config.hall.id
        if principal is None or not (
            principal.hall == hall_id or overseen(service, principal, hall_id)
        ):
            raise Unauthorized("the live view needs a manager's token: log in again")
        if principal.role != "manager":
            raise Forbidden("the live view is for managers")

    async def still() -> None:
        if digest is None or await service.sessions.lookup(digest) is None:
            raise Unauthorized("your session has ended: log in again")

    await serve(
        socket,
        state.screens,
        hall,
        ("manager",),
        None,
        lambda engine: ManagerScreen(engine.config, lambda: engine.times),
        admit=admit,
        still=still,
    )


ROUTES: list[Any] = [manage_page, manager_feed]
