"""The window caller (呼叫器): a page for the staff at one window, on a small desk screen or a
keypad, and the desk feed it follows.

``/caller/{hall}/{window}``: staff log in with their username and password (the bearer token is
kept by the browser, so a reload or a server restart does not log them out mid-service), then
call, recall, start, finish with an outcome, mark a no-show, transfer, pause with a reason,
resume and log out, each by a button or a single key, through the window routes of the API with
an Idempotency-Key per press (reused when the press is retried). What the page shows comes live
from ``/ws/halls/{hall}/screens/desks/{window}``: the window screen's view with the ticket held
and its times, the queue in the order this window's call-next would take it, and the other
windows (:mod:`displays.desk`). Where the hall requires devices, the feed takes a screen's token
or the window's caller's (``#token=`` on first open, as every device page).
"""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, get, websocket
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from devices.listed import DevicePage
from displays.desk import DeskScreen
from displays.feed import serve, window_devices
from displays.pages import window_or_404

# Finishing outcomes, as the desk offers them (hall.domain.events.Outcome).
OUTCOMES = (
    ("done", "办结", "Done"),
    ("accepted", "容缺受理", "Accepted, papers to follow"),
    ("returned", "退回", "Returned"),
)


@get("/caller/{hall:str}/{window:str}", include_in_schema=False, sync_to_thread=False)
def caller_page(state: State, hall: FromPath[str], window: FromPath[str]) -> Template:
    found = window_or_404(state, hall, window)
    if isinstance(found, Template):
        return found
    config, defined = found
    return Template(
        "caller.html",
        context={
            "config": config,
            "window": defined,
            "settings": {
                "hall": config.hall.id,
                "window": defined.id,
                "timezone": config.hall.timezone,
                "feed": f"/ws/halls/{config.hall.id}/screens/desks/{defined.id}",
                "api": f"/api/halls/{config.hall.id}",
                "require_device": config.screens.require_device,
                "categories": [[c.id, c.name, c.name_en] for c in config.categories],
                "pause_reasons": [[r.code, r.name, r.name_en] for r in config.pause_reasons],
                "outcomes": OUTCOMES,
            },
        },
    )


@websocket("/ws/halls/{hall:str}/screens/desks/{window:str}")
async def desk_feed(
    socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str], window: FromPath[str]
) -> None:
    await serve(
        socket,
        state.screens,
        hall,
        ("desk", window),
        window,
        lambda engine: DeskScreen(engine.config, engine.policy, window),
        admit=window_devices(socket, window, ("caller",)),
    )


ROUTES: list[Any] = [caller_page, desk_feed]
PAGES = (
    DevicePage(
        path="/caller/{hall}/{window}",
        name="呼叫器",
        name_en="Window caller",
        about="窗口工作人员登录后叫号、重呼、开始办理、办结、过号、转移、暂停和恢复，每项都有单键快捷键；"
        "显示当前号码及其等候和办理时间、本窗口按叫号顺序的等候队列。为 1024×600 桌面小屏设计。",
        about_en="Staff at a window log in, then call, recall, start, finish, mark no-shows, "
        "transfer, pause and resume, each with a single key; shows the current number with its "
        "wait and service time, and this window's queue in call order. Made for a 1024×600 desk "
        "screen.",
        per_window=True,
    ),
)
