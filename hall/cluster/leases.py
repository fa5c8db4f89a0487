"""Writer leases and the roll of live processes, in the region's Redis.

- ``{p}:lease:<hall>``  ``"<fence>|<node>"`` with a TTL: the hall's one writer. The fence number
  comes from ``{p}:fence:<hall>`` (INCR on every acquisition), so each lease a hall ever had has
  its own value; the journal's append script compares it (hall/journal/redis.py).
- ``{p}:nodes``         sorted set node -> expiry (Redis's own clock, in ms); ``{p}:node-urls``
  hash node -> the URL other processes reach it at; ``{p}:node-halls`` hash node -> the halls
  it hosts, one ``<hall> <digest of its hall file>`` per line (a town's server may host only
  its own and its villages' halls; a process with another version of a hall file is seen);
  ``{p}:node-instances`` hash node -> a random id of the process using that name, so that a
  second process given the same ``--node-id`` is refused instead of sharing its leases.

Expiries are Redis's: a process's clock, or a pause of it, never decides who holds a lease.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from hall.journal.base import JournalError

# KEYS: lease, fence counter. ARGV: node, ttl ms. Returns the new lease value, or false.
_ACQUIRE = """#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local value = redis.call('INCR', KEYS[2]) .. '|' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""

# KEYS: the leases. ARGV: ttl ms, then each lease's expected value. Returns 1/0 per lease.
_RENEW = """#!lua
local held = {}
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[i + 1] then
        redis.call('PEXPIRE', key, ARGV[1])
        held[i] = 1
    else
        held[i] = 0
    end
end
return held
"""

# KEYS: lease. ARGV: value. Deletes the lease only if it is still ours.
_RELEASE = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: nodes, node urls, node halls, node instances. ARGV: node, url, ttl ms ('0': leave),
# halls, instance. Returns the live nodes' urls and halls, or false when another live process
# uses this node's name.
_HEARTBEAT = """#!lua
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms)
for _, node in ipairs(dead) do
    for i = 2, 4 do redis.call('HDEL', KEYS[i], node) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local owner = redis.call('HGET', KEYS[4], ARGV[1])
if owner and owner ~= ARGV[5] then return false end
if ARGV[3] == '0' then
    redis.call('ZREM', KEYS[1], ARGV[1])
    for i = 2, 4 do redis.call('HDEL', KEYS[i], ARGV[1]) end
else
    redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
    redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
end
return {redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""


@dataclass(frozen=True)
class Member:
    url: str
    halls: dict[str, str]  # hall -> the digest of the hall file this node serves it with


class NameTaken(JournalError):
    """Another live process of the region uses this node's name (``--node-id``)."""

    def __init__(self, node: str) -> None:
        super().__init__(
            f"another process of the region is running as node {node!r}: give each process "
            "its own --node-id (the default, HOSTNAME:PORT, is the same on cloned machines)"
        )
        self.node = node


def _hosted(text: str) -> dict[str, str]:
    pairs = (line.partition(" ") for line in text.split("\n") if line)
    return {hall: digest for hall, _, digest in pairs}


def holder(value: bytes | str | None) -> str | None:
    """The node named by a lease value (``"<fence>|<node>"``), or None for no lease."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    return text.partition("|")[2] or None


@dataclass(frozen=True)
class Lease:
    hall: str
    value: str  # "<fence>|<node>": what the append script compares

    @property
    def fence(self) -> int:
        return int(self.value.partition("|")[0])


class Leases:
    """The lease and roll scripts over one Redis client, under the journal's tag ``{p}``."""

    def __init__(self, client: aioredis.Redis, tag: str) -> None:
        self._redis = client
        self._tag = tag
        self.instance = secrets.token_hex(8)  # this process, whatever its node's name
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._heartbeat = client.register_script(_HEARTBEAT)

    def key(self, hall: str) -> str:
        return f"{self._tag}:lease:{hall}"

    async def acquire(self, hall: str, node: str, ttl_ms: int) -> Lease | None:
        value: Any = await self._acquire(
            keys=[self.key(hall), f"{self._tag}:fence:{hall}"], args=[node, ttl_ms]
        )
        return None if value is None else Lease(hall, value.decode())

    async def renew(self, leases: Iterable[Lease], ttl_ms: int) -> dict[str, bool]:
        """Extend each lease still held; says which are (a lease not renewed in time expired,
        and may be another's now)."""
        leases = list(leases)
        if not leases:
            return {}
        found: Any = await self._renew(
            keys=[self.key(lease.hall) for lease in leases],
            args=[ttl_ms, *(lease.value for lease in leases)],
        )
        return {lease.hall: bool(ok) for lease, ok in zip(leases, found, strict=True)}

    async def release(self, lease: Lease) -> None:
        await self._release(keys=[self.key(lease.hall)], args=[lease.value])

    async def holders(self, halls: list[str]) -> dict[str, str | None]:
        """Which node holds each hall's lease now (None: nobody)."""
        if not halls:
            return {}
        found: Any = await self._redis.mget([self.key(hall) for hall in halls])
        return {hall: holder(value) for hall, value in zip(halls, found, strict=True)}

    async def heartbeat(
        self, node: str, url: str, ttl_ms: int, halls: Mapping[str, str] | None = None
    ) -> dict[str, Member]:
        """Say this node, hosting ``halls``, is alive for ``ttl_ms`` more (0: it leaves); the
        live nodes. Raises :class:`NameTaken` while another process uses this node's name."""
        keys = [f"{self._tag}:{name}" for name in ("nodes", "node-urls", "node-halls")]
        keys.append(f"{self._tag}:node-instances")
        hosted_here = "\n".join(f"{hall} {digest}" for hall, digest in (halls or {}).items())
        args: list[str | int] = [node, url, ttl_ms, hosted_here, self.instance]
        found: Any = await self._heartbeat(keys=keys, args=args)
        if found is None:
            raise NameTaken(node)
        urls, hosted = ([item.decode() for item in part] for part in found)
        halls_of = dict(zip(hosted[::2], hosted[1::2], strict=True))
        return {
            name: Member(address, _hosted(halls_of.get(name, "")))
            for name, address in zip(urls[::2], urls[1::2], strict=True)
        }
