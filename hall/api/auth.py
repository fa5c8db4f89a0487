"""Who may do what: staff sessions (argon2 passwords, random bearer tokens) and device tokens.

Sessions live in memory: after a restart staff log in again (their windows stay as they were,
since logging in again at one's own window changes nothing). Only token hashes are kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from hall.api.errors import TooManyAttempts, Unauthorized
from hall.config import HallConfig
from hall.domain.errors import Forbidden

Role = Literal["staff", "manager", "device"]
SESSION_SECONDS = 12 * 3600  # one working day and its overtime
# Password guessing: after MAX_FAILURES wrong passwords within FAILURE_WINDOW seconds a username
# is locked for LOCK_SECONDS. Short, so that a prankster cannot keep staff out for long.
MAX_FAILURES, FAILURE_WINDOW, LOCK_SECONDS = 5, 15 * 60, 5 * 60


@dataclass(frozen=True, slots=True)
class Principal:
    hall: str
    role: Role
    name: str  # username, or device id
    device_kind: str | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Bearer tokens for logged-in staff, by hash, with an expiry."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._by_hash: dict[str, tuple[Principal, float]] = {}
        self._clock = clock
        self._hasher = PasswordHasher()
        self._failures: dict[tuple[str, str], list[float]] = {}  # (hall, username) -> times

    async def verify_password(self, config: HallConfig, username: str, password: str) -> Principal:
        key, now = (config.hall.id, username), self._clock()
        recent = [t for t in self._failures.get(key, ()) if now - t < FAILURE_WINDOW]
        if len(recent) >= MAX_FAILURES and now - recent[-1] < LOCK_SECONDS:
            wait = int(LOCK_SECONDS - (now - recent[-1])) + 1
            raise TooManyAttempts(
                f"too many wrong passwords; try again in {wait} s", retry_after=wait
            )
        try:
            principal = await self._check(config, username, password)
        except Unauthorized:
            self._failures[key] = [*recent, now][-MAX_FAILURES:]
            raise
        self._failures.pop(key, None)
        return principal

    async def _check(self, config: HallConfig, username: str, password: str) -> Principal:
        staff = config.staff_member(username)
        # Hash even for unknown users, so timing does not tell which usernames exist.
        stored = staff.password_hash if staff else _DUMMY_HASH
        try:
            await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            staff = None
        if staff is None:
            raise Unauthorized("wrong username or password")
        return Principal(config.hall.id, staff.role, staff.username)

    def issue(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)  # 256 bits
        self._by_hash[token_hash(token)] = (principal, self._clock() + SESSION_SECONDS)
        return token

    def revoke(self, token: str) -> None:
        self._by_hash.pop(token_hash(token), None)

    def revoke_user(self, hall: str, name: str) -> None:
        for key, (principal, _) in list(self._by_hash.items()):
            if principal.hall == hall and principal.name == name:
                del self._by_hash[key]

    def lookup(self, token: str) -> Principal | None:
        entry = self._by_hash.get(token_hash(token))
        if entry is None:
            return None
        principal, expires = entry
        if self._clock() > expires:
            del self._by_hash[token_hash(token)]
            return None
        return principal


_DUMMY_HASH = PasswordHasher().hash(secrets.token_hex(16))


def device_principal(config: HallConfig, token: str) -> Principal | None:
    digest = token_hash(token)
    for device in config.devices:
        if hmac.compare_digest(device.token_sha256, digest):
            return Principal(config.hall.id, "device", device.id, device.kind)
    return None


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Never from the query string: URLs end up in access logs and browser history.
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def requires(*allowed: str) -> Any:
    """A guard admitting principals whose role (or ``device:<kind>``) is in ``allowed``.

    The principal is left in ``connection.state.principal`` for the handler.
    """

    # Async although it awaits nothing: Litestar runs a plain function guard in a thread pool,
    # a thread round trip on every request (measured: ~15% of the server's CPU at 1,000/s).
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        token = bearer(connection)
        if token is None:
            raise Unauthorized("this needs a bearer token (Authorization: Bearer ...)")
        service = connection.app.state.service  # a HallService, which imports this module
        hall_id = connection.path_params.get("hall", "")
        engine = service.engine(hall_id)
        principal = service.sessions.lookup(token) or device_principal(engine.config, token)
        if principal is None or principal.hall != hall_id:
            raise Unauthorized("unknown or expired token; log in again")
        role = f"device:{principal.device_kind}" if principal.role == "device" else principal.role
        if role not in allowed and not (principal.role == "manager" and "staff" in allowed):
            raise Forbidden(f"a {role} may not do this", needs=list(allowed))
        connection.state.principal = principal

    return guard
