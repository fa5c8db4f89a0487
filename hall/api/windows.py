"""Window staff: log in at a window, then call, recall, start, finish, mark no-shows, transfer,
pause, resume and log out. Every command acts as the staff member whose token is presented; the
domain refuses it unless that person is logged in at this window. Managers also set profiles.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post, put
from litestar.params import FromPath, JSONBody

from hall.api.auth import principal_of, requires, verify_login
from hall.api.idempotency import request_key
from hall.api.service import estimator
from hall.api.types import Id, Password, Text
from hall.domain import commands as cmd
from hall.domain.events import AnyEvent, Outcome
from hall.domain.state import HallState
from hall.engine import HallEngine, Reply
from hall.views import TicketFacts, TicketView, WindowView, render_ticket, ticket_facts, window_view

STAFF = requires("staff")


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Id
    password: Password


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    username: str
    window: WindowView


class FinishRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    outcome: Outcome = Outcome.DONE


class TransferRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: Id | None = None
    to_window: Id | None = None


class PauseRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Id  # a code of the hall's pause_reasons: public
    note: Text | None = None  # for staff only


class ProfileRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    categories: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=50)]


class WindowResult(msgspec.Struct, frozen=True, kw_only=True):
    """The window after the command, and the ticket the command was about (if any)."""

    window: WindowView
    ticket: TicketView | None


# The window after the command, and the ticket the command was about (made into a view later).
_Result = tuple[WindowView, TicketFacts | None]


def _result(engine: HallEngine, window: str) -> Reply[_Result]:
    def reply(state: HallState, events: list[AnyEvent]) -> _Result:
        ticket_id = next((getattr(e, "ticket", None) for e in events), None)
        ticket_id = ticket_id or state.windows[window].ticket
        ticket = state.tickets.get(ticket_id) if ticket_id else None
        facts = ticket_facts(state, ticket, estimator(engine)) if ticket else None
        return window_view(state, window), facts

    return reply


async def run_command(
    request: Request[Any, Any, Any], hall: FromPath[str], command: cmd.AnyCommand
) -> WindowResult:
    """Execute a command at a window (retried safely under the request's Idempotency-Key)."""
    engine: HallEngine = request.app.state.service.engine(hall)
    reply = _result(engine, getattr(command, "window", ""))
    done = await engine.execute(command, reply, key=request_key(request))
    view, facts = done.reply
    ticket = render_ticket(engine.config, facts, TicketView) if facts else None
    return WindowResult(window=view, ticket=ticket)


def caller(request: Request[Any, Any, Any]) -> str:
    """The username (or device id) whose token the request presents."""
    return principal_of(request).name


class WindowController(Controller):
    path = "/api/halls/{hall:str}/windows/{window:str}"
    tags = ["windows"]

    @post("/login", status_code=200)
    async def login(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[LoginRequest],
    ) -> LoginResult:
        """Log in at a window with username and password; answers the bearer token to use."""
        service = request.app.state.service
        engine = service.engine(hall)
        principal = await verify_login(request, hall, data.username, data.password)
        done = await engine.execute(
            cmd.Login(window=window, by=principal.name), lambda s, _: window_view(s, window)
        )
        token = await service.sessions.issue(principal)
        return LoginResult(token=token, username=principal.name, window=done.reply)

    @post("/call-next", opt=STAFF, status_code=200)
    async def call_next(
        self, request: Request[Any, Any, Any], hall: FromPath[str], window: FromPath[str]
    ) -> WindowResult:
        """Call the next ticket this window should serve (its ticket is null if none waits)."""
        return await run_command(request, hall, cmd.CallNext(window=window, by=caller(request)))

    @post("/recall", opt=STAFF, status_code=200)
    async def recall(
        self, request: Request[Any, Any, Any], hall: FromPath[str], window: FromPath[str]
    ) -> WindowResult:
        """Announce the called ticket again."""
        return await run_command(request, hall, cmd.Recall(window=window, by=caller(request)))

    @post("/start", opt=STAFF, status_code=200)
    async def start(
        self, request: Request[Any, Any, Any], hall: FromPath[str], window: FromPath[str]
    ) -> WindowResult:
        """The visitor has arrived: start serving the called ticket."""
        return await run_command(request, hall, cmd.Start(window=window, by=caller(request)))

    @post("/finish", opt=STAFF, status_code=200)
    async def finish(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[FinishRequest],
    ) -> WindowResult:
        """Finish: done (办结), accepted with materials to follow (容缺) or returned (退回)."""
        command = cmd.Finish(window=window, by=caller(request), outcome=data.outcome)
        return await run_command(request, hall, command)

    @post("/no-show", opt=STAFF, status_code=200)
    async def no_show(
        self, request: Request[Any, Any, Any], hall: FromPath[str], window: FromPath[str]
    ) -> WindowResult:
        """The called visitor did not come."""
        return await run_command(request, hall, cmd.NoShow(window=window, by=caller(request)))

    @post("/transfer", opt=STAFF, status_code=200)
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[TransferRequest],
    ) -> WindowResult:
        """Send the held ticket to another category and/or a named window; it keeps its place."""
        command = cmd.Transfer(
            window=window, by=caller(request), category=data.category, to_window=data.to_window
        )
        return await run_command(request, hall, command)

    @post("/pause", opt=STAFF, status_code=200)
    async def pause(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[PauseRequest],
    ) -> WindowResult:
        """Pause with a reason code (public) and an optional note (staff only)."""
        command = cmd.Pause(window=window, by=caller(request), reason=data.reason, note=data.note)
        return await run_command(request, hall, command)

    @post("/resume", opt=STAFF, status_code=200)
    async def resume(
        self, request: Request[Any, Any, Any], hall: FromPath[str], window: FromPath[str]
    ) -> WindowResult:
        return await run_command(request, hall, cmd.Resume(window=window, by=caller(request)))

    @post("/logout", opt=STAFF, status_code=200)
    async def logout(
        self, request: Request[Any, Any, Any], hall: FromPath[str], window: FromPath[str]
    ) -> WindowResult:
        """Close the window and end every session of this person (all their tokens)."""
        result = await run_command(request, hall, cmd.Logout(window=window, by=caller(request)))
        await request.app.state.service.sessions.revoke_user(hall, caller(request))
        return result

    @put("/profile", opt=requires("manager"), status_code=200)
    async def profile(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[ProfileRequest],
    ) -> WindowResult:
        """A manager sets the categories this window serves, in order of preference."""
        command = cmd.ChangeProfile(
            window=window, categories=tuple(data.categories), by=caller(request)
        )
        return await run_command(request, hall, command)
