"""The shared journal: Redis Streams, for many processes and many halls.

Keys (all under the hash tag ``{prefix}``, so they live in one slot and the scripts would also run
on a cluster):

- ``{p}:hall:<hall>``  one stream per hall; entry ID ``0-<version>``, fields pos/type/schema/data
- ``{p}:all``          every append in position order; entry ID ``0-<position>``, fields hall/v
                       (a reference: the event itself is stored once, in its hall's stream)
- ``{p}:position``     the last position handed out
- ``{p}:versions``     hash hall -> version; its keys are the halls
- ``{p}:tokens``       hash hall -> token of the last append, to recognise a retried append
- ``{p}:lease:<hall>`` the hall's writer lease (hall/cluster/leases.py): an append with a fence
                       goes through only while the fence is this key's value

An append is one Lua script call: version check, positions, both XADDs and the version update
happen atomically. Durability is the server's: with ``appendonly yes`` and ``appendfsync always``
Redis replies only after the AOF (where the script's effects are one MULTI/EXEC) is fsynced, and
replays whole transactions only after a crash.

A connection lost after the script ran but before its reply arrived is retried by redis-py with
the same token; the script recognises its own append and reports success instead of a spurious
:class:`WrongVersion`. When the retries run out, :class:`JournalUnavailable` is ambiguous: the
append may have landed. Read the version before trying again.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisError

from hall.domain import events as ev
from hall.domain.events import SCHEMA_VERSION, AnyEvent
from hall.journal.base import Journal, JournalUnavailable, LeaseLost, Recorded, WrongVersion
from hall.journal.memory import check_limit

PAGE = 1000  # entries per XRANGE / XREAD round trip
MAX_CONNECTIONS = 64  # per pooled client (the journal's, the sessions'), per process
POOL_WAIT_SECONDS = 10.0  # for a free connection; the callers' own deadlines are shorter
DURABLE_SETTINGS = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}

# KEYS: versions, tokens, position, all, hall stream, hall lease. ARGV: hall, expected, token,
# schema, fence ('' for none), then type, data for each event. Returns {1, new version},
# {0, actual version} or {2, actual version} (the fence is not the lease: nothing written).
# The fence is checked after recognising a retried append of our own (it landed while we still
# held the lease), before the version (a deposed writer learns it was deposed, not merely
# behind) and before any write, inside the script: a writer that lost its lease while
# paused cannot slip an append in between a check and the write.
# "#!lua" (no flags) makes Redis 7 refuse the whole script up front when it is out of memory,
# instead of failing between two writes: scripts are not rolled back. For the same reason every
# precondition is read before the first write: the hall's version is its stream's last ID (the
# stream is the truth; the versions hash follows it), and positions continue after both the
# counter and the last ID of the ``all`` stream, so a lost counter cannot make an XADD fail
# half-way and leave an orphan entry.
_APPEND = """#!lua
local hall, expected, token, fence = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]
local n = (#ARGV - 5) / 2
local function last_id(key)
    local found = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    if #found == 0 then return 0 end
    return tonumber(string.match(found[1][1], '%-(%d+)$'))
end
local actual = last_id(KEYS[5])
if actual ~= expected and n > 0 and actual == expected + n
        and redis.call('HGET', KEYS[2], hall) == token then
    return {1, actual}  -- our own append, retried after a lost reply
end
if fence ~= '' and redis.call('GET', KEYS[6]) ~= fence then return {2, actual} end
if actual ~= expected then return {0, actual} end
if n == 0 then return {1, actual} end
local counter = tonumber(redis.call('GET', KEYS[3]) or '0')
if counter == nil then return redis.error_reply('position counter is not a number') end
local first = math.max(counter, last_id(KEYS[4]))
for i = 1, n do
    local version, position = expected + i, first + i
    redis.call('XADD', KEYS[5], string.format('0-%d', version), 'pos', position,
               'type', ARGV[4 + 2 * i], 'schema', ARGV[4], 'data', ARGV[5 + 2 * i])
    redis.call('XADD', KEYS[4], string.format('0-%d', position), 'hall', hall, 'v', version)
end
redis.call('SET', KEYS[3], first + n)
redis.call('HSET', KEYS[1], hall, expected + n)
redis.call('HSET', KEYS[2], hall, token)
return {1, expected + n}
"""


# KEYS: a hall's stream. ARGV: the first version, how many entries at most, the hall's id as a
# JSON string. Returns {entries, last version, page}: the page is one JSON array of the entries as
# Recorded objects, the stored event spliced in as it is (it is JSON already). One bulk reply per
# page instead of nine per entry, which redis-py parses one at a time (in Python, without hiredis:
# ~15,000 entries/s, most of a replay's time), and one decode call per page instead of one per
# event. The fields are found by name, not by place.
_READ = """
local found = redis.call('XRANGE', KEYS[1], '0-' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local parts, last = {}, 0
for i, entry in ipairs(found) do
    local raw, fields = entry[2], {}
    for j = 1, #raw, 2 do fields[raw[j]] = raw[j + 1] end
    local version = string.match(entry[1], '%-(%d+)$')
    parts[i] = '{"hall":' .. ARGV[3] .. ',"version":' .. version .. ',"position":' .. fields.pos
        .. ',"schema":' .. fields.schema .. ',"event":' .. fields.data .. '}'
    last = tonumber(version)
end
return {#found, last, '[' .. table.concat(parts, ',') .. ']'}
"""
READ_PAGE = 5000  # entries per read script call: a few ms of Redis's time each
_page = msgspec.json.Decoder(list[Recorded])
_hall_json = msgspec.json.Encoder()


def pooled(
    url: str, *, wait: float, socket_timeout: float | None, connect_timeout: float, retry: Retry
) -> aioredis.Redis:
    """A client on a blocking pool of MAX_CONNECTIONS: a process serving hundreds of halls, or
    hundreds of requests at once, waits up to ``wait`` for a free connection instead of failing
    the 101st command as if Redis were down (redis-py's default pool). Close it with
    ``aclose(close_connection_pool=True)``: the pool is not closed with the client otherwise."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=wait,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=retry,
    )
    return aioredis.Redis(connection_pool=pool)


async def shared_secret(journal: RedisJournal, name: str) -> bytes:
    """32 random bytes kept under ``{prefix}:<name>``, the same for every process of the
    region: the first to ask makes them (SET NX), the others read them back."""
    key = f"{journal.tag}:{name}"
    with _translated(name):
        await journal.client.set(key, secrets.token_bytes(32), nx=True)
        found: Any = await journal.client.get(key)
    return bytes(found)


def _seq(entry_id: bytes) -> int:
    """``b"0-42"`` -> 42: versions and positions are the sequence part of our explicit IDs."""
    return int(entry_id.rpartition(b"-")[2])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XREAD's entries for our one stream, from a RESP2 list or a RESP3 map."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [entries for _, entries in reply]
    return [(entry_id, fields) for entries in streams for entry_id, fields in entries]


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:  # ConnectionError, TimeoutError, OOM, READONLY, LOADING...
        raise JournalUnavailable(f"redis journal, {what}: {exc}") from exc


class RedisJournal(Journal):
    """A :class:`Journal` in the Redis at ``url``, under keys tagged ``{prefix}``.

    ``retries``: how often redis-py retries a command after a connection error or timeout (with
    exponential backoff capped at 0.5 s) before we report :class:`JournalUnavailable`.
    ``block_ms``: how long one XREAD of ``follow`` blocks before it asks again.
    """

    def __init__(
        self, url: str, prefix: str = "hall", *, retries: int = 3, block_ms: int = 5000
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be non-empty and without braces: {prefix!r}")
        tag = "{" + prefix + "}"
        self._keys = [f"{tag}:versions", f"{tag}:tokens", f"{tag}:position", f"{tag}:all"]
        self._versions, _, _, self._all = self._keys
        self._hall_prefix = f"{tag}:hall:"
        self._block_ms = block_ms
        self._closed = False
        # socket_timeout=None: redis-py 8 defaults to 5 s, which makes a blocking XREAD longer than
        # that fail, and a task cancelled during a command then loses its cancellation about a
        # third of the time (the task stays "cancelling" and shutdown hangs). Liveness comes from
        # TCP keepalive (on by default) and from XREAD's own BLOCK timeout instead.
        # The client connects lazily, on the first command, in the running loop: never at import.
        self._redis = pooled(
            url,
            wait=POOL_WAIT_SECONDS,
            socket_timeout=None,
            connect_timeout=5,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        )
        # Followers block in XREAD on connections of their own, without retries: when Redis goes
        # away, or close() drops the connections, a follower hears of it at once instead of
        # reconnecting to block again; it resumes by following from its last version.
        self._blocking = aioredis.Redis.from_url(
            url, socket_timeout=None, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        self._append_script = self._redis.register_script(_APPEND)
        self._read_script = self._redis.register_script(_READ)

    def _hall_key(self, hall: str) -> str:
        return self._hall_prefix + hall

    def lease_key(self, hall: str) -> str:
        return self._hall_prefix.replace(":hall:", ":lease:") + hall

    @property
    def tag(self) -> str:
        """The hash-tagged key prefix (``{prefix}``): other shared keys of the region live
        under it, in the same slot as the journal's."""
        return self._hall_prefix.removesuffix(":hall:")

    @property
    def client(self) -> aioredis.Redis:
        """The journal's connection pool (with its retries), for the region's other shared keys."""
        return self._redis

    def _check_open(self) -> None:
        if self._closed:
            raise JournalUnavailable("the journal is closed")

    async def append(
        self,
        hall: str,
        events: Sequence[AnyEvent],
        expected_version: int,
        *,
        fence: str | None = None,
    ) -> int:
        """See :meth:`Journal.append`; on an ambiguous failure see the module docstring."""
        self._check_open()
        args: list[str | bytes | int] = [
            hall,
            expected_version,
            secrets.token_hex(8),
            SCHEMA_VERSION,
            fence or "",
        ]
        for event in events:
            args += [str(event.__struct_config__.tag), ev.encode(event)]
        with _translated(f"append to {hall}"):
            ok, version = await self._append_script(
                keys=[*self._keys, self._hall_key(hall), self.lease_key(hall)], args=args
            )
        if ok == 2:
            raise LeaseLost(hall)
        if not ok:
            raise WrongVersion(hall, expected_version, int(version))
        return int(version)

    async def _xrange(self, key: str, start: int, end: int | None, limit: int | None) -> list[Any]:
        """Entries of ``key`` with sequence ``start..end``, in pages, at most ``limit``."""
        out: list[Any] = []
        last = "+" if end is None else f"0-{end}"
        while limit is None or len(out) < limit:
            count = PAGE if limit is None else min(PAGE, limit - len(out))
            page: Any = await self._redis.xrange(key, f"0-{start}", last, count=count)
            out += page
            if len(page) < count:
                break
            start = _seq(page[-1][0]) + 1
        return out

    def _recorded(self, hall: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Recorded:
        return Recorded(
            hall=hall,
            version=_seq(entry_id),
            position=int(fields[b"pos"]),
            event=ev.decode(fields[b"data"]),
            schema=int(fields[b"schema"]),
        )

    async def _pages(self, hall: str, start: int, limit: int | None) -> list[bytes]:
        """The hall's entries from version ``start`` on, at most ``limit``, as JSON pages."""
        pages: list[bytes] = []
        key, name, got = self._hall_key(hall), _hall_json.encode(hall), 0
        while limit is None or got < limit:
            count = READ_PAGE if limit is None else min(READ_PAGE, limit - got)
            found, last, page = await self._read_script(keys=[key], args=[start, count, name])
            if found:
                pages.append(page)
            got += found
            if found < count:
                break
            start = last + 1
        return pages

    @staticmethod
    def _decoded(pages: list[bytes]) -> list[Recorded]:
        if len(pages) == 1:
            return _page.decode(pages[0])
        return [record for page in pages for record in _page.decode(page)]

    async def read(self, hall: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        self._check_open()
        check_limit(limit)
        with _translated(f"read {hall}"):
            pages = await self._pages(hall, max(after, 0) + 1, limit)
        return self._decoded(pages)

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        self._check_open()
        check_limit(limit)
        with _translated("read all"):
            refs = await self._xrange(self._all, max(after, 0) + 1, None, limit)
            # The events of one hall inside a window of positions have consecutive versions, so
            # one XRANGE per hall fetches exactly them.
            spans: dict[str, tuple[int, int]] = {}
            for _, fields in refs:
                hall, version = fields[b"hall"].decode(), int(fields[b"v"])
                low, high = spans.get(hall, (version, version))
                spans[hall] = (min(low, version), max(high, version))
            async with self._redis.pipeline(transaction=False) as pipe:
                for hall, (low, high) in spans.items():
                    pipe.xrange(self._hall_key(hall), f"0-{low}", f"0-{high}")
                pages = await pipe.execute()
        found = [
            self._recorded(hall, entry_id, fields)
            for hall, page in zip(spans, pages, strict=True)
            for entry_id, fields in page
        ]
        return sorted(found, key=lambda r: r.position)

    async def version(self, hall: str) -> int:
        self._check_open()
        with _translated(f"version of {hall}"):
            found = await self._redis.hget(self._versions, hall)
        return int(found) if found is not None else 0

    async def halls(self) -> list[str]:
        self._check_open()
        with _translated("halls"):
            found: Any = await self._redis.hgetall(self._versions)
        return sorted(hall.decode() for hall, version in found.items() if int(version) > 0)

    async def follow(self, hall: str, after: int = 0) -> AsyncIterator[Recorded]:
        """See :meth:`Journal.follow`: XREAD BLOCK on the hall's stream, from ``0-<after>``.

        Raises :class:`JournalUnavailable` as soon as the connection is lost (no retries here) or
        the journal is closed; resume with ``follow(hall, last_version_seen)``.
        """
        key, last = self._hall_key(hall), f"0-{max(after, 0)}"
        while True:
            self._check_open()
            with _translated(f"follow {hall}"):
                reply = await self._blocking.xread({key: last}, count=PAGE, block=self._block_ms)
            for entry_id, fields in _entries(reply):
                last = entry_id.decode()
                yield self._recorded(hall, entry_id, fields)

    async def tail(self, after: dict[str, int], block_ms: int) -> dict[str, list[Recorded]]:
        """New events of many halls at once: one XREAD BLOCK over their streams, each from its
        version in ``after``; waits at most ``block_ms`` for the first (then: nothing)."""
        self._check_open()
        streams: dict[Any, Any] = {
            self._hall_key(hall): f"0-{max(v, 0)}" for hall, v in after.items()
        }
        with _translated("tail"):
            reply: Any = await self._blocking.xread(streams, count=PAGE, block=block_ms)
        found: dict[str, list[Recorded]] = {}
        pairs = reply.items() if isinstance(reply, dict) else (reply or [])
        for key, entries in pairs:
            hall = _text(key).removeprefix(self._hall_prefix)
            found[hall] = [self._recorded(hall, entry_id, fields) for entry_id, fields in entries]
        return found

    async def diagnostics(self) -> dict[str, str]:
        """Server version and persistence settings (``appendfsync`` should be ``always``)."""
        self._check_open()
        with _translated("diagnostics"):
            info = await self._redis.info("server")
            found = {"redis_version": _text(info.get("redis_version", "?"))}
            with contextlib.suppress(RedisError):  # CONFIG is often disabled on managed Redis
                for pattern in ("append*", "maxmemory-policy"):
                    config: Any = await self._redis.config_get(pattern)
                    found |= {_text(k): _text(v) for k, v in config.items()}
        return found

    async def durability_problems(self) -> list[str]:
        """Settings under which Redis may acknowledge an append and then lose it: without the
        AOF, or fsyncing it only every second, a crash or restart loses acknowledged events; an
        eviction policy may delete a hall's stream to make room."""
        found = await self.diagnostics()
        problems = [
            f"{name} is {found.get(name, 'unknown (CONFIG GET refused)')}, not {wanted}"
            for name, wanted in DURABLE_SETTINGS.items()
            if found.get(name) != wanted
        ]
        return problems

    async def close(self) -> None:
        """Idempotent. Closes the connections; a follower blocked in XREAD gets an error."""
        if not self._closed:
            self._closed = True
            await self._blocking.aclose()
            await self._redis.aclose(close_connection_pool=True)  # ours, though passed in

    async def save_checkpoint(self, hall: str, version: int, blob: bytes) -> None:
        """A hash of its own per hall, ``{prefix}:checkpoint:<hall>`` (version, data)."""
        self._check_open()
        with _translated(f"checkpoint of {hall}"):
            await self._redis.hset(self._checkpoint_key(hall), mapping={"v": version, "d": blob})

    async def load_checkpoint(self, hall: str) -> tuple[int, bytes] | None:
        self._check_open()
        with _translated(f"checkpoint of {hall}"):
            found: Any = await self._redis.hmget(self._checkpoint_key(hall), ["v", "d"])
        version, blob = found
        return None if version is None or blob is None else (int(version), blob)

    def _checkpoint_key(self, hall: str) -> str:
        return self._hall_prefix.replace(":hall:", ":checkpoint:") + hall
