"""What a manager does from the live view (``/manage/{hall}``): open a window for a staff member,
acknowledge an alert, and ask what a change would do to the waits before making it (what-if, and
the changes that would help most). Closing a window, profiles and the notice are the manager
routes of :mod:`hall.api.managers` and :mod:`hall.api.windows`.

A what-if runs the calling policy forward for up to seconds: only its copy of the live state is
taken under the hall's writer lock, and the runs go on in a thread, one per hall at a time, so
tickets, calls and screens never wait for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody

from displays.manager import ManagerScreen
from hall.api.auth import requires
from hall.api.idempotency import request_key
from hall.api.reports import Gate
from hall.api.types import Id
from hall.api.windows import WindowResult, caller, run_command
from hall.domain import commands as cmd
from hall.domain import errors
from hall.domain.state import HallState, WindowState
from hall.engine import HallEngine
from scheduling.forecast import WAITING_LIMIT
from scheduling.whatif import Effect, Live, read_live, suggest, what_if

MANAGER = requires("manager")
ALERT_ID_CHARS = 120  # what AcknowledgeAlert takes
BUSY = "busy: another what-if is being computed for this hall; retry in a moment"


class TooManyWaiting(errors.Conflict):
    """More wait than a what-if forecasts (the forecast's ``WAITING_LIMIT``): refused, no figure
    rather than a guess."""

    code = "too_many_waiting"


class OpenRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    staff: Id  # the username of who will work there


class AcknowledgeResult(msgspec.Struct, frozen=True, kw_only=True):
    alert: str
    by: str  # who acknowledged it first


class WhatIfRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window: Id
    # The window's new profile, in order; omitted: the one it has (only with ``open``).
    categories: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=50)] | None = None
    # True: the window, closed now, opens. False: it stays as it is (open, paused or closed),
    # so a closed window given another profile changes nothing until someone opens it.
    open: bool = False


class Wait(msgspec.Struct, frozen=True, kw_only=True):
    """A category's longest wait over the next hour, minutes, now and after (None: people wait or
    are expected and no open window serves them; 0.0 with nobody waiting or expected). Capped:
    the forecast follows each ticket for two hours at most, and one still waiting then counts
    what it had waited; the figure is then a lower bound ("at least")."""

    category: str
    name: str
    name_en: str
    target_minutes: int
    waiting: int  # tickets of the category waiting now
    before: float | None
    after: float | None
    before_capped: bool
    after_capped: bool


class WhatIfResult(msgspec.Struct, frozen=True, kw_only=True):
    window: str
    open: bool
    categories: list[str]  # the profile after the change
    waits: list[Wait]


class SuggestionItem(msgspec.Struct, frozen=True, kw_only=True):
    window: str
    open: bool  # it is closed now: open it
    categories: list[str]  # with this profile
    profile_changed: bool  # the profile is not the one the window has
    wait: Wait  # the worst category's longest wait before and after


class LiveController(Controller):
    path = "/api/halls/{hall:str}"
    tags = ["managers"]

    @post("/windows/{window:str}/open", opt=MANAGER, status_code=200)
    async def open_window(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[OpenRequest],
    ) -> WindowResult:
        """Open a window for a staff member in a peak, before they reach the desk (the same
        rules as their own login; journaled with who opened it). They log in at the window's
        caller as usual to work it."""
        command = cmd.OpenWindow(window=window, staff=data.staff, by=caller(request))
        return await run_command(request, hall, command)

    @post("/alerts/{alert:str}/acknowledge", opt=MANAGER, status_code=200)
    async def acknowledge(
        self, request: Request[Any, Any, Any], hall: FromPath[str], alert: FromPath[str]
    ) -> AcknowledgeResult:
        """Mark an alert of the live view as seen (for today; it stays listed, greyed, until its
        condition ends). 404 if it is not raised now (it may have just ended)."""
        engine: HallEngine = request.app.state.service.engine(hall)
        if len(alert) > ALERT_ID_CHARS:  # no alert has such an id: nothing to look for
            raise errors.NotFound(f"no alert {errors.shown(alert)} is raised now")
        screen = ManagerScreen(engine.config, lambda: engine.times)

        def raised(state: HallState) -> bool:
            return any(a.id == alert for a in screen.view(state, engine.clock()).alerts)

        if not await engine.read(raised):
            raise errors.NotFound(f"no alert {errors.shown(alert)} is raised now")
        command = cmd.AcknowledgeAlert(alert=alert, by=caller(request))
        done = await engine.execute(
            command, lambda state, _: state.acknowledged[alert], key=request_key(request)
        )
        return AcknowledgeResult(alert=alert, by=done.reply)

    @post("/what-if", opt=MANAGER, status_code=200)
    async def what_if(
        self, request: Request[Any, Any, Any], hall: FromPath[str], data: JSONBody[WhatIfRequest]
    ) -> WhatIfResult:
        """What opening a window, or giving it another profile, would do to the waits: for each
        category of its profile before and after, its longest wait over the next hour (its
        tickets waiting now and those expected to arrive, each until called or the hour ends),
        forecast by
        running the hall's calling policy forward, now and after. Nothing changes."""
        engine: HallEngine = request.app.state.service.engine(hall)
        if engine.config.window(data.window) is None:
            raise errors.UnknownWindow(
                f"no window {errors.shown(data.window)}", window=data.window[: errors.ECHO_CHARS]
            )
        categories = tuple(data.categories) if data.categories is not None else None
        if categories is None and not data.open:
            raise errors.InvalidInput("say what changes: categories, open, or both")
        if categories is not None:
            for category in categories:
                if engine.config.category(category) is None:
                    raise errors.UnknownCategory(
                        f"no category {errors.shown(category)}",
                        category=category[: errors.ECHO_CHARS],
                    )
            if len(set(categories)) != len(categories):
                raise errors.InvalidInput("a profile lists each category once")

        def check(state: HallState) -> None:
            status = state.windows[data.window]
            if data.open and status.state is not WindowState.CLOSED:
                raise errors.WindowBusy(f"window {data.window} is open already")

        async with _gate(request, hall):
            live = await _read_live(engine, check)
            effects = await asyncio.to_thread(what_if, live, data.window, categories, data.open)
        return WhatIfResult(
            window=data.window,
            open=data.open,
            categories=list(categories or live.windows[data.window].categories),
            waits=[_wait(engine, live, e) for e in effects],
        )

    @get("/what-if/suggestions", opt=MANAGER)
    async def suggestions(
        self, request: Request[Any, Any, Any], hall: FromPath[str]
    ) -> list[SuggestionItem]:
        """For the category whose longest wait over the next hour is furthest over its target,
        the few changes of one window (open a closed one, or put the category first in a
        window's profile) that would cut it most, best first. Empty when nobody waits or nothing
        helps."""
        engine: HallEngine = request.app.state.service.engine(hall)
        async with _gate(request, hall):
            live = await _read_live(engine)
            found = await asyncio.to_thread(suggest, live)
        return [
            SuggestionItem(
                window=s.window,
                open=s.open,
                categories=list(s.categories),
                profile_changed=s.categories != live.windows[s.window].categories,
                wait=_wait(
                    engine,
                    live,
                    Effect(s.category, s.before, s.after, s.before_capped, s.after_capped),
                ),
            )
            for s in found
        ]


def _gate(request: Request[Any, Any, Any], hall: str) -> Gate:
    """One what-if at a time per hall; another meanwhile is refused busy, not queued (a manager
    clicking again would only add work behind the first)."""
    gates: dict[str, Gate] = request.app.state.setdefault("what_if_gates", {})
    if hall not in gates:
        gates[hall] = Gate(computing=1, waiting=0, message=BUSY)
    return gates[hall]


async def _read_live(engine: HallEngine, check: Callable[[HallState], None] | None = None) -> Live:
    """The live state copied for the what-if (under the writer's lock: a few milliseconds)."""

    def read(state: HallState) -> Live:
        if check is not None:
            check(state)
        waiting = sum(len(ids) for ids in state.queues.values())
        if waiting > WAITING_LIMIT:
            raise TooManyWaiting(
                f"{waiting} tickets wait: a what-if forecasts {WAITING_LIMIT} at most; "
                "no forecast is given",
                waiting=waiting,
                limit=WAITING_LIMIT,
            )
        return read_live(state, engine.clock(), engine.times, engine.policy)

    live: Live = await engine.read(read)
    return live


def _wait(engine: HallEngine, live: Live, effect: Effect) -> Wait:
    category = engine.config.category(effect.category)
    assert category is not None
    return Wait(
        category=effect.category,
        name=category.name,
        name_en=category.name_en,
        target_minutes=category.target_wait_minutes,
        waiting=live.waiting(effect.category),
        before=_minutes(effect.before),
        after=_minutes(effect.after),
        before_capped=effect.before_capped,
        after_capped=effect.after_capped,
    )


def _minutes(value: float | None) -> float | None:
    """Tenths of a minute, always a float: JSON readers see 0.0 and 12.0 as the same kind of
    figure as 12.5 (an int slipping through would come out as 0)."""
    return None if value is None else float(round(value, 1))
