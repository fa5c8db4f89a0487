"""Sessions beyond a window: a manager's own login (no window opens), a manager closing a window
or logging a person out or posting the hall screens' notice, and staff changing their own
password.

Ending sessions is all-or-nothing per person: logging out, a forced logout and a password change
revoke every token of that person, so a token left on another device stops working too.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, JSONBody, Parameter

from hall.api.auth import principal_of, requires, verify_login
from hall.api.idempotency import request_key
from hall.api.types import MaybeText, Password, Text
from hall.api.windows import LoginRequest, WindowResult, caller, run_command
from hall.domain import commands as cmd
from hall.domain.errors import Forbidden, InvalidInput, UnknownStaff, WindowNotOpen
from hall.domain.events import AnyEvent
from hall.domain.state import HallState
from hall.engine import HallEngine
from hall.views import notice

MANAGER = requires("manager")
MIN_PASSWORD = 8
# What even a manager does not read back from the journal: password hashes, visitors' secrets.
HIDDEN = ("password_hash", "secret")


class ManagerLoginResult(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    username: str


class ForceRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Text | None = None  # why, for the journal (never public)


class LogoutResult(msgspec.Struct, frozen=True, kw_only=True):
    sessions_ended: int
    window_closed: str | None  # the window the person was logged in at, now closed


class ForceLogoutResult(LogoutResult, frozen=True, kw_only=True):
    username: str


class PasswordRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    old_password: Password
    new_password: Password


class NoticeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: MaybeText  # both empty: the hall file's notice again
    text_en: MaybeText = ""


class NoticeResult(msgspec.Struct, frozen=True, kw_only=True):
    """The notice hall screens now show, and whether a manager posted it (else the hall file's)."""

    text: str
    text_en: str
    posted: bool


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    event: dict[str, Any]


class PasswordResult(msgspec.Struct, frozen=True, kw_only=True):
    """Every earlier session of the person has ended; this token is the one to use now."""

    token: str


class ManagerController(Controller):
    path = "/api/halls/{hall:str}"
    tags = ["managers"]

    @post("/managers/login", status_code=200)
    async def login(
        self, request: Request[Any, Any, Any], hall: FromPath[str], data: JSONBody[LoginRequest]
    ) -> ManagerLoginResult:
        """A manager logs in without a window: nothing opens on the public screens."""
        principal = await verify_login(request, hall, data.username, data.password)
        if principal.role != "manager":
            raise Forbidden("only a manager logs in here; staff log in at a window")
        token = await request.app.state.service.sessions.issue(principal)
        return ManagerLoginResult(token=token, username=principal.name)

    @post("/logout", opt=requires("staff"), status_code=200)
    async def logout(self, request: Request[Any, Any, Any], hall: FromPath[str]) -> LogoutResult:
        """End every session of the caller (a manager's too), closing their window if they are
        logged in at one (refused while it holds a ticket, as at the window)."""
        service = request.app.state.service
        engine: HallEngine = service.engine(hall)
        me = caller(request)
        window = await engine.read(lambda state: state.staff_at.get(me))
        if window is not None:
            await engine.execute(cmd.Logout(window=window, by=me))
        ended = await service.sessions.revoke_user(hall, me)
        return LogoutResult(sessions_ended=ended, window_closed=window)

    @post("/windows/{window:str}/force-close", opt=MANAGER, status_code=200)
    async def force_close(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        window: FromPath[str],
        data: JSONBody[ForceRequest],
    ) -> WindowResult:
        """Close a window whoever is logged in there (even someone no longer in the config); a
        ticket it held waits again in its queue, in its place. Journaled with who did it."""
        command = cmd.ForceClose(window=window, by=caller(request), note=data.note)
        return await run_command(request, hall, command)

    @post("/staff/{username:str}/logout", opt=MANAGER, status_code=200)
    async def force_logout(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        username: FromPath[str],
        data: JSONBody[ForceRequest],
    ) -> ForceLogoutResult:
        """End every session of a person and close the window they are logged in at, if any."""
        service = request.app.state.service
        engine: HallEngine = service.engine(hall)
        window = await engine.read(lambda state: state.staff_at.get(username))
        ended = await service.sessions.revoke_user(hall, username)
        if not ended and window is None and engine.config.staff_member(username) is None:
            raise UnknownStaff(f"unknown staff member {username!r}")
        if window is not None:
            with contextlib.suppress(WindowNotOpen):  # they logged out meanwhile: done too
                command = cmd.ForceClose(window=window, by=caller(request), note=data.note)
                await run_command(request, hall, command)
        return ForceLogoutResult(username=username, sessions_ended=ended, window_closed=window)

    @put("/notice", opt=MANAGER, status_code=200)
    async def post_notice(
        self, request: Request[Any, Any, Any], hall: FromPath[str], data: JSONBody[NoticeRequest]
    ) -> NoticeResult:
        """Set the scrolling notice of the hall screens, in Chinese and English (journaled, so it
        outlives a restart); both texts empty put the hall file's notice back."""
        engine: HallEngine = request.app.state.service.engine(hall)
        command = cmd.PostNotice(text=data.text, text_en=data.text_en, by=caller(request))

        def reply(state: HallState, _: list[AnyEvent]) -> NoticeResult:
            text, text_en = notice(state)
            return NoticeResult(text=text, text_en=text_en, posted=state.notice is not None)

        done = await engine.execute(command, reply, key=request_key(request))
        return done.reply

    @get("/journal", opt=MANAGER)
    async def journal(
        self,
        request: Request[Any, Any, Any],
        hall: FromPath[str],
        after: Annotated[int, Parameter(ge=0, le=2**53)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> list[JournalEntry]:
        """The hall's events after version ``after`` as journaled, with who did what and the
        notes staff wrote (which no public view shows); for managers only."""
        engine: HallEngine = request.app.state.service.engine(hall)
        entries = []
        for record in await engine.history(after, limit):
            event = msgspec.to_builtins(record.event)
            for name in HIDDEN:
                event.pop(name, None)
            entries.append(JournalEntry(version=record.version, event=event))
        return entries

    @post("/password", opt=requires("staff"), status_code=200)
    async def change_password(
        self, request: Request[Any, Any, Any], hall: FromPath[str], data: JSONBody[PasswordRequest]
    ) -> PasswordResult:
        """Change one's own password (the old one is checked like a login). The new hash is
        journaled; every session of the person ends, and a new token is answered."""
        me = principal_of(request)
        if len(data.new_password) < MIN_PASSWORD or data.new_password == data.old_password:
            raise InvalidInput(
                f"a new password has at least {MIN_PASSWORD} characters and differs from the old"
            )
        await verify_login(request, hall, me.name, data.old_password)
        service = request.app.state.service
        new_hash = await service.sessions.hash_password(data.new_password)
        engine: HallEngine = service.engine(hall)
        await engine.execute(cmd.ChangePassword(staff=me.name, password_hash=new_hash))
        await service.sessions.revoke_user(hall, me.name)
        renewed = await service.sessions.renewed(me)
        return PasswordResult(token=await service.sessions.issue(renewed))
