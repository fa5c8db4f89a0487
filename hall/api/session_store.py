"""Where staff sessions live: one port, two stores.

- :class:`LocalSessions`: in this process's memory and (given a path) in ``DATA/sessions.json``,
  rewritten at each login and logout, so a restart does not log out staff in the middle of a
  transaction. For one server on its own journal (SQLite, memory).
- :class:`RedisSessions`: in the region's Redis, beside the journal, so that every process of
  the region accepts a token made by any of them, and a logout on one ends the session on all
  of them at once. Nothing about validity is cached in the process: each check is one GET.

Either keeps sessions by token hash only, never the token, and per person an *epoch*: how many
times their sessions were ended, so that a login that raced a logout gets no token.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import msgspec

from hall.journal.base import JournalUnavailable

log = logging.getLogger(__name__)

Role = Literal["staff", "manager", "device"]
SESSION_SECONDS = 12 * 3600  # one working day and its overtime


@dataclass(frozen=True, slots=True)
class Principal:
    hall: str
    role: Role
    name: str  # username, or device id
    device_kind: str | None = None
    # How many times this person's sessions had been ended when their password was checked: a
    # login that raced a logout or a password change gets no token (Sessions.issue).
    epoch: int = field(default=0, compare=False)


class SessionsUnavailable(JournalUnavailable):
    """The shared session store cannot be reached: 503 ``unavailable``, retry. Never a 401,
    which would send staff back to the login form for what is the store's trouble."""


class SessionStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, digest: str, principal: Principal, seconds: float) -> bool:
        """Keep a session for ``seconds``, unless the person's sessions were ended after
        ``principal.epoch`` was read (then False, and nothing is kept)."""

    @abc.abstractmethod
    async def get(self, digest: str) -> Principal | None:
        """The principal of a live session, None if there is none (or it expired)."""

    @abc.abstractmethod
    async def end_all(self, hall: str, name: str) -> int:
        """End every session of one person and advance their epoch; how many were live."""

    @abc.abstractmethod
    async def epoch(self, hall: str, name: str) -> int:
        """How many times this person's sessions were ended."""

    async def close(self) -> None:  # noqa: B027 - nothing to release in memory
        """Release connections."""


class LocalSessions(SessionStore):
    """Sessions in memory, and in ``path`` if given. Expiries are kept in ``clock``'s time in
    memory and in ``wall`` time on disk."""

    def __init__(
        self,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._by_hash: dict[str, tuple[Principal, float]] = {}
        self._of: dict[tuple[str, str], set[str]] = {}  # (hall, username) -> token hashes
        self._epochs: dict[tuple[str, str], int] = {}  # (hall, username) -> sessions ended
        self._clock = clock
        self._wall = wall
        self._path = path
        if path is not None:
            self._load(path)

    async def add(self, digest: str, principal: Principal, seconds: float) -> bool:
        key = (principal.hall, principal.name)
        if principal.epoch != self._epochs.get(key, 0):
            return False
        now = self._clock()
        mine = self._of.setdefault(key, set())
        for old in [d for d in mine if self._by_hash[d][1] < now]:  # expired: forget them
            mine.discard(old)
            del self._by_hash[old]
        self._by_hash[digest] = (principal, now + seconds)
        mine.add(digest)
        self._save()
        return True

    async def get(self, digest: str) -> Principal | None:
        entry = self._by_hash.get(digest)
        if entry is None:
            return None
        principal, expires = entry
        if self._clock() > expires:
            del self._by_hash[digest]
            self._of.get((principal.hall, principal.name), set()).discard(digest)
            return None
        return principal

    async def end_all(self, hall: str, name: str) -> int:
        self._epochs[(hall, name)] = self._epochs.get((hall, name), 0) + 1
        digests = self._of.pop((hall, name), set())
        for digest in digests:
            self._by_hash.pop(digest, None)
        self._save()
        return len(digests)

    async def epoch(self, hall: str, name: str) -> int:
        return self._epochs.get((hall, name), 0)

    def _save(self) -> None:
        """Write the sessions (hashes, never tokens) and epochs where a restart finds them: to a
        temporary file, fsync'd, then renamed over the old one, so a crash leaves one or the
        other whole. Logins are a few a minute, so a rewrite each time costs nothing."""
        if self._path is None:
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
        temporary = self._path.with_suffix(".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                json.dump(body, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._path)
            directory = os.open(self._path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself outlives a power cut
            finally:
                os.close(directory)
        except OSError as exc:
            # The sessions in memory still work. But the file on disk may hold one a logout just
            # ended: it goes, so that after a restart everyone logs in again rather than an
            # ended session coming back.
            log.warning("cannot keep sessions in %s: %s", self._path, exc.strerror)
            with contextlib.suppress(OSError):
                self._path.unlink()

    def _load(self, path: Path) -> None:
        try:
            body = json.loads(path.read_text())
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
            log.warning("ignoring the sessions in %s (%s): staff log in again", path, exc)
            self._by_hash.clear()
            self._of.clear()


# KEYS: epochs, the person's set, the session. ARGV: person field, epoch read at the password
# check, digest, value, ms, the sessions' key prefix. Returns 1, or 0 if the epoch moved on.
# The person's set is pruned of expired sessions here, so it holds live ones only (plus those
# that expired since the last login) and never grows with a person who never logs out.
# "#!lua": refused whole up front when Redis is out of memory, never half-run.
_ADD = """#!lua
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') ~= tonumber(ARGV[2]) then return 0 end
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', ARGV[6] .. digest) == 0 then redis.call('SREM', KEYS[2], digest) end
end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS: epochs, the person's set. ARGV: person field, the sessions' key prefix. Returns how many
# sessions were live.
_END_ALL = """#!lua
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local ended = 0
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    ended = ended + redis.call('DEL', ARGV[2] .. digest)
end
redis.call('DEL', KEYS[2])
return ended
"""


class _Stored(msgspec.Struct, array_like=True, frozen=True):
    hall: str
    role: Literal["staff", "manager"]
    name: str
    epoch: int


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    # Imported here so that a server on SQLite never imports redis.
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as exc:  # ConnectionError, TimeoutError, OOM, READONLY, LOADING...
        raise SessionsUnavailable(f"redis sessions, {what}: {exc}") from exc


class RedisSessions(SessionStore):
    """Sessions in the Redis at ``url``, under the journal's hash tag ``tag`` (``{prefix}``):

    - ``{p}:session:<token hash>``   the principal, with the session's expiry (PX)
    - ``{p}:sessions-of:<hall>:<username>``  set of that person's token hashes (hall ids and
      usernames have no colon), for ending all of them at once
    - ``{p}:session-epochs``         hash ``<hall>:<username>`` -> sessions ended

    The scripts touch session keys they find in the person's set: those are in the same hash
    slot, so this also runs on a cluster. Each command waits at most ``timeout`` seconds for
    Redis and is tried twice, so a request behind a lost Redis is answered 503 within about
    ``2 * timeout`` seconds rather than hanging.
    """

    def __init__(self, url: str, tag: str, timeout: float = 1.0) -> None:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from hall.journal.redis import pooled

        self._session_prefix = f"{tag}:session:"
        self._person_prefix = f"{tag}:sessions-of:"
        self._epochs = f"{tag}:session-epochs"
        # Connects lazily, on the first command, in the running loop; every authenticated
        # request and feed check comes through here, so hundreds at once wait for a connection.
        self._redis = pooled(
            url,
            wait=timeout,
            socket_timeout=timeout,
            connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),  # once more, on a fresh connection (Redis restarted)
        )
        self._add = self._redis.register_script(_ADD)
        self._end_all = self._redis.register_script(_END_ALL)

    async def add(self, digest: str, principal: Principal, seconds: float) -> bool:
        if principal.role == "device":
            raise ValueError("device tokens are in the hall file, not sessions")
        person = f"{principal.hall}:{principal.name}"
        value = msgspec.json.encode(
            _Stored(principal.hall, principal.role, principal.name, principal.epoch)
        )
        keys = [self._epochs, self._person_prefix + person, self._session_prefix + digest]
        args: list[Any] = [person, principal.epoch, digest, value, max(1, round(seconds * 1000))]
        with _translated("login"):
            added = await self._add(keys=keys, args=[*args, self._session_prefix])
        return bool(added)

    async def get(self, digest: str) -> Principal | None:
        with _translated("session check"):
            value = await self._redis.get(self._session_prefix + digest)
        if value is None:
            return None
        stored = msgspec.json.decode(value, type=_Stored)
        return Principal(stored.hall, stored.role, stored.name, epoch=stored.epoch)

    async def end_all(self, hall: str, name: str) -> int:
        person = f"{hall}:{name}"
        keys = [self._epochs, self._person_prefix + person]
        with _translated("ending sessions"):
            ended = await self._end_all(keys=keys, args=[person, self._session_prefix])
        return int(ended)

    async def epoch(self, hall: str, name: str) -> int:
        with _translated("session epoch"):
            found = await self._redis.hget(self._epochs, f"{hall}:{name}")
        return int(found or 0)

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)  # ours, though passed in
