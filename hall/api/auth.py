"""Who may do what: staff sessions (argon2 passwords, random bearer tokens) and device tokens.

Sessions are kept by token hash only, in memory and (when the server has a data directory) in
``DATA/sessions.json``, rewritten at each login and logout, so a restart does not log out staff
in the middle of a transaction. Limits on guessing and on costly checks are in
hall/api/limits.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from hall.api.errors import Busy, TooManyAttempts, Unauthorized
from hall.api.idempotency import HEADER, STATE_KEY, checked_key
from hall.api.ratelimits import LoginLimiter
from hall.config import HallConfig
from hall.domain.errors import Forbidden

log = logging.getLogger(__name__)

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

    def __init__(
        self,
        clock: Any = time.monotonic,
        limiter: LoginLimiter | None = None,
        store: Path | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._by_hash: dict[str, tuple[Principal, float]] = {}
        self._of: dict[tuple[str, str], set[str]] = {}  # (hall, username) -> token hashes
        self._epochs: dict[tuple[str, str], int] = {}  # (hall, username) -> sessions ended
        self._clock = clock
        self._wall = wall  # expiries are kept on disk in wall-clock time, in memory in ``clock``'s
        self._hasher = PasswordHasher()
        self.limiter = limiter or LoginLimiter(clock)
        self._store = store
        if store is not None:
            self._load(store)

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
        self._save()
        return token

    def revoke_user(self, hall: str, name: str) -> int:
        """End every session of one person, and any login of theirs under way; returns how many
        sessions there were."""
        self._epochs[(hall, name)] = self._epochs.get((hall, name), 0) + 1
        digests = self._of.pop((hall, name), set())
        for digest in digests:
            self._by_hash.pop(digest, None)
        self._save()
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

    def _save(self) -> None:
        """Write the sessions (hashes, never tokens) and epochs where a restart finds them: to a
        temporary file, fsync'd, then renamed over the old one, so a crash leaves one or the
        other whole. Logins are a few a minute, so a rewrite each time costs nothing."""
        if self._store is None:
            return
        now, wall = self._clock(), self._wall()
        body = {
            "sessions": [
                [digest, p.hall, p.role, p.name, wall + expires - now]
                for digest, (p, expires) in self._by_hash.items()
                if expires > now
            ],
            "epochs": [[hall, name, n] for (hall, name), n in self._epochs.items()],
        }
        temporary = self._store.with_suffix(".tmp")
        try:
            self._store.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                json.dump(body, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._store)
            directory = os.open(self._store.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself outlives a power cut
            finally:
                os.close(directory)
        except OSError as exc:
            # The sessions in memory still work. But the file on disk may hold one a logout just
            # ended: it goes, so that after a restart everyone logs in again rather than an
            # ended session coming back.
            log.warning("cannot keep sessions in %s: %s", self._store, exc.strerror)
            with contextlib.suppress(OSError):
                self._store.unlink()

    def _load(self, store: Path) -> None:
        try:
            body = json.loads(store.read_text())
            now, wall = self._clock(), self._wall()
            for hall, name, n in body["epochs"]:
                self._epochs[(str(hall), str(name))] = int(n)
            for digest, hall, role, name, expires_at in body["sessions"]:
                if role not in ("staff", "manager") or float(expires_at) <= wall:
                    continue
                principal = Principal(str(hall), role, str(name))
                principal = replace(principal, epoch=self._epochs.get((hall, name), 0))
                self._by_hash[str(digest)] = (principal, now + float(expires_at) - wall)
                self._of.setdefault((principal.hall, principal.name), set()).add(str(digest))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:  # staff log in again
            log.warning("ignoring the sessions in %s (%s): staff log in again", store, exc)
            self._by_hash.clear()
            self._of.clear()


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
                self._check(scope, allowed)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, allowed: tuple[str, ...]) -> None:
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
        principal = self.service.sessions.lookup(digest) or device_principal(engine.config, digest)
        if principal is None or principal.hall != hall_id:
            raise Unauthorized("unknown or expired token; log in again")
        role = f"device:{principal.device_kind}" if principal.role == "device" else principal.role
        if role not in allowed and not (principal.role == "manager" and "staff" in allowed):
            raise Forbidden(f"a {role} may not do this", needs=list(allowed))
        state = scope["state"]
        state[PRINCIPAL] = principal
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            key = checked_key(key)
            state[STATE_KEY] = None if key is None else f"{principal.name}/{key}"


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
