"""Who may do what: staff sessions (argon2 passwords, random bearer tokens) and device tokens.

Sessions are kept by token hash only, in a store (hall/api/session_store.py): this process's
memory and ``DATA/sessions.json`` for a server on its own journal, the region's Redis for
servers sharing a Redis journal. Limits on guessing and on costly checks are in
hall/api/limits.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from hall.api.errors import Busy, TooManyAttempts, Unauthorized
from hall.api.idempotency import HEADER, STATE_KEY, checked_key
from hall.api.ratelimits import LoginLimiter
from hall.api.session_store import SESSION_SECONDS, LocalSessions, SessionStore
from hall.api.session_store import Principal as Principal  # where routes have always found it
from hall.config import HallConfig
from hall.domain.errors import Forbidden
from hall.journal.base import JournalError

# Looks up a staff member's password hash as journaled (a password change), None if never changed.
HashLookup = Callable[[str], Awaitable[str | None]]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Staff logins: passwords checked under the login limits (kept per process: hall/api/
    ratelimits.py), and bearer tokens kept by hash, with an expiry, in a :class:`SessionStore`,
    which a server on Redis shares with every process of its region (``store``, set before
    serving). Logging out, a forced logout and a password change end every session of the person.
    """

    def __init__(
        self,
        clock: Any = time.monotonic,
        limiter: LoginLimiter | None = None,
        store: SessionStore | None = None,
        seconds: float = SESSION_SECONDS,
    ) -> None:
        self.store = store or LocalSessions(clock=clock)
        self.seconds = seconds
        self._hasher = PasswordHasher()
        self.limiter = limiter or LoginLimiter(clock)

    async def verify_password(
        self,
        config: HallConfig,
        username: str,
        password: str,
        address: str = "",
        current_hash: HashLookup | None = None,
    ) -> Principal:
        hall = config.hall.id
        # Counted before anything is awaited: parallel guesses each count.
        at = self.limiter.attempt(hall, username, address)
        try:
            epoch = await self.store.epoch(hall, username)
            staff = config.staff_member(username)
            stored = (await current_hash(username) if current_hash else None) or (
                staff.password_hash if staff else None
            )
            # Hash even for unknown users, so timing does not tell which usernames exist.
            ok = await self.limiter.check(
                lambda: self._verify(stored or _DUMMY_HASH, password), (hall, address)
            )
        except (Busy, TooManyAttempts, JournalError):  # never checked: not against the name
            self.limiter.refund(hall, username, address, at)
            raise
        if staff is None or stored is None or not ok:
            self.limiter.failed(hall, address)
            raise Unauthorized("wrong username or password")
        self.limiter.succeeded(hall, username, address, at)
        return Principal(hall, staff.role, staff.username, epoch=epoch)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def hash_password(self, password: str) -> str:
        """A new argon2 hash, taking a turn among the costly checks."""
        return await self.limiter.check(lambda: self._hasher.hash(password))

    async def issue(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)  # 256 bits
        if not await self.store.add(token_hash(token), principal, self.seconds):
            raise Unauthorized("your sessions were ended meanwhile; log in again")
        return token

    async def revoke_user(self, hall: str, name: str) -> int:
        """End every session of one person, and any login of theirs under way; returns how many
        sessions there were."""
        return await self.store.end_all(hall, name)

    async def renewed(self, principal: Principal) -> Principal:
        """``principal`` as of now, for a new token right after its own sessions were ended."""
        return replace(principal, epoch=await self.store.epoch(principal.hall, principal.name))

    async def lookup(self, digest: str) -> Principal | None:
        """The principal of a token, given its :func:`token_hash` (hashed once per request);
        ``SessionsUnavailable`` (503) when a shared store cannot say."""
        return await self.store.get(digest)


_DUMMY_HASH = PasswordHasher().hash(secrets.token_hex(16))


def device_principal(config: HallConfig, digest: str) -> Principal | None:
    for device in config.devices:
        if hmac.compare_digest(device.token_sha256, digest):
            return Principal(config.hall.id, "device", device.id, device.kind)
    return None


# A route's ``opt`` key naming who may call it (see requires()), and the state key under which
# :class:`Authorize` leaves the caller.
REQUIRES = "requires"
PRINCIPAL = "principal"
_KEY_HEADER = HEADER.lower().encode()  # ASGI header names are lower case


def requires(*allowed: str) -> dict[str, tuple[str, ...]]:
    """The ``opt`` of a route that admits principals whose role (or ``device:<kind>``) is in
    ``allowed`` (a manager counts as staff): ``@post(..., opt=requires("staff"))``.

    Not a Litestar guard: Litestar copies the route handler for every guard it runs (22 us of a
    ~400 us command, measured), and a guard reads headers through objects built per request.
    :class:`Authorize` checks it instead.
    """
    return {REQUIRES: allowed}


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller of a route declared with :func:`requires` (also ``request.state.principal``)."""
    principal: Principal = connection.scope["state"][PRINCIPAL]
    return principal


class Authorize:
    """ASGI middleware: for a route with :func:`requires` in its ``opt``, the bearer token's
    principal must be of the route's hall and allowed there (else 401, 403); a write's
    ``Idempotency-Key`` must be well formed (else 400). Leaves both in the connection's state.

    It runs after routing (Litestar applies app middleware per route, with ``route_handler`` and
    ``path_params`` in the scope) and after :class:`hall.api.limits.BodyLimits`.
    """

    def __init__(self, app: ASGIApp, service: Any) -> None:
        self.app = app
        self.service = service  # a HallService, which imports this module

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:  # a WebSocket route checks its own (query) token
            allowed = scope["route_handler"].opt.get(REQUIRES)
            if allowed is not None:
                await self._check(scope, allowed)
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, allowed: tuple[str, ...]) -> None:
        token = key = None
        for name, value in scope["headers"]:  # the first of each, as Headers.get() would
            if name == b"authorization" and token is None:
                token = value.decode("latin-1")
            elif name == _KEY_HEADER and key is None:
                key = value.decode("latin-1")
        # Never from the query string: URLs end up in access logs and browser history.
        scheme, _, token = (token or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("this needs a bearer token (Authorization: Bearer ...)")
        hall_id = scope["path_params"].get("hall", "")
        engine = self.service.engine(hall_id)
        digest = token_hash(token)
        # Devices first: their tokens are in the hall file, so a kiosk never waits on a shared
        # session store (nor fails with it).
        principal = device_principal(engine.config, digest) or await self.service.sessions.lookup(
            digest
        )
        reading = scope.get("method", "GET") in ("GET", "HEAD")
        if principal is not None and overseen(self.service, principal, hall_id):
            if not reading:  # a supervisor drills down to look, never to act
                raise Forbidden("a region supervisor may look into a hall, not act in it")
        elif principal is None or principal.hall != hall_id:
            raise Unauthorized("unknown or expired token; log in again")
        role = f"device:{principal.device_kind}" if principal.role == "device" else principal.role
        if role not in allowed and not (principal.role == "manager" and "staff" in allowed):
            raise Forbidden(f"a {role} may not do this", needs=list(allowed))
        state = scope["state"]
        state[PRINCIPAL] = principal
        if not reading:
            key = checked_key(key)
            state[STATE_KEY] = None if key is None else f"{principal.name}/{key}"


def overseen(service: Any, principal: Principal, hall: str) -> bool:
    """A region supervisor's session looking into one of the region's halls (read-only)."""
    region = getattr(service, "region", None)
    return region is not None and region.oversees(principal.hall, hall)


async def verify_login(
    connection: ASGIConnection[Any, Any, Any, Any], hall: str, username: str, password: str
) -> Principal:
    """Check a username and password for a hall, against its latest journaled password change,
    else its config; limits per username and per client address apply (hall/api/ratelimits.py)."""
    service = connection.app.state.service  # a HallService, which imports this module
    engine = service.engine(hall)

    async def current(name: str) -> str | None:
        found: str | None = await engine.read(lambda state: state.passwords.get(name))
        return found

    address = connection.client.host if connection.client else ""
    principal: Principal = await service.sessions.verify_password(
        engine.config, username, password, address, current
    )
    return principal
