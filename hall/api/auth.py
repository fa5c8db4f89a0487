"""Who may do what: staff sessions (argon2 passwords, random bearer tokens) and device tokens.

Sessions live in memory: after a restart staff log in again (their windows stay as they were,
since logging in again at one's own window changes nothing). Only token hashes are kept. Limits on
guessing and on costly checks are in hall/api/limits.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from hall.api.errors import Busy, TooManyAttempts, Unauthorized
from hall.api.idempotency import HEADER, checked_key
from hall.api.ratelimits import LoginLimiter
from hall.config import HallConfig
from hall.domain.errors import Forbidden

Role = Literal["staff", "manager", "device"]
SESSION_SECONDS = 12 * 3600  # one working day and its overtime
# Looks up a staff member's password hash as journaled (a password change), None if never changed.
HashLookup = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Principal:
    hall: str
    role: Role
    name: str  # username, or device id
    device_kind: str | None = None
    # How many times this person's sessions had been ended when their password was checked: a
    # login that raced a logout or a password change gets no token (Sessions.issue).
    epoch: int = field(default=0, compare=False)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Bearer tokens for logged-in staff, by hash, with an expiry; indexed by person too, since
    logging out, a forced logout and a password change end every session of that person."""

    def __init__(self, clock: Any = time.monotonic, limiter: LoginLimiter | None = None) -> None:
        self._by_hash: dict[str, tuple[Principal, float]] = {}
        self._of: dict[tuple[str, str], set[str]] = {}  # (hall, username) -> token hashes
        self._epochs: dict[tuple[str, str], int] = {}  # (hall, username) -> sessions ended
        self._clock = clock
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
        epoch = self._epochs.get((hall, username), 0)
        staff = config.staff_member(username)
        stored = (await current_hash(username) if current_hash else None) or (
            staff.password_hash if staff else None
        )
        # Hash even for unknown users, so timing does not tell which usernames exist.
        try:
            ok = await self.limiter.check(
                lambda: self._verify(stored or _DUMMY_HASH, password), (hall, address)
            )
        except (Busy, TooManyAttempts):  # never checked: it does not count against the name
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

    def issue(self, principal: Principal) -> str:
        key = (principal.hall, principal.name)
        if principal.epoch != self._epochs.get(key, 0):
            raise Unauthorized("your sessions were ended meanwhile; log in again")
        token = secrets.token_urlsafe(32)  # 256 bits
        digest, now = token_hash(token), self._clock()
        mine = self._of.setdefault(key, set())
        for old in [d for d in mine if self._by_hash[d][1] < now]:  # expired: forget them
            mine.discard(old)
            del self._by_hash[old]
        self._by_hash[digest] = (principal, now + SESSION_SECONDS)
        mine.add(digest)
        return token

    def revoke_user(self, hall: str, name: str) -> int:
        """End every session of one person, and any login of theirs under way; returns how many
        sessions there were."""
        self._epochs[(hall, name)] = self._epochs.get((hall, name), 0) + 1
        digests = self._of.pop((hall, name), set())
        for digest in digests:
            self._by_hash.pop(digest, None)
        return len(digests)

    def renewed(self, principal: Principal) -> Principal:
        """``principal`` as of now, for a new token right after its own sessions were ended."""
        return replace(principal, epoch=self._epochs.get((principal.hall, principal.name), 0))

    def lookup(self, digest: str) -> Principal | None:
        """The principal of a token, given its :func:`token_hash` (hashed once per request)."""
        entry = self._by_hash.get(digest)
        if entry is None:
            return None
        principal, expires = entry
        if self._clock() > expires:
            del self._by_hash[digest]
            self._of.get((principal.hall, principal.name), set()).discard(digest)
            return None
        return principal


_DUMMY_HASH = PasswordHasher().hash(secrets.token_hex(16))


def device_principal(config: HallConfig, digest: str) -> Principal | None:
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
        digest = token_hash(token)
        principal = service.sessions.lookup(digest) or device_principal(engine.config, digest)
        if principal is None or principal.hall != hall_id:
            raise Unauthorized("unknown or expired token; log in again")
        role = f"device:{principal.device_kind}" if principal.role == "device" else principal.role
        if role not in allowed and not (principal.role == "manager" and "staff" in allowed):
            raise Forbidden(f"a {role} may not do this", needs=list(allowed))
        if connection.scope.get("method", "GET") not in ("GET", "HEAD"):
            checked_key(connection.headers.get(HEADER))
        connection.state.principal = principal

    return guard


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
