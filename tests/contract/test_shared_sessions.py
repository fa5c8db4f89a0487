"""The session stores' contract, for the file of a server of its own and for a region's Redis;
then what only Redis does: sessions shared by the processes of a region (each ``Sessions`` here
has its own Redis client, as each process would)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from hall.api.auth import Sessions, token_hash
from hall.api.errors import Unauthorized, to_response
from hall.api.session_store import (
    LocalSessions,
    Principal,
    RedisSessions,
    SessionStore,
    SessionsUnavailable,
)
from hall.config import HallConfig
from tests.support.redis import PrivateRedis, unique_prefix

LINA = Principal("demo-county", "staff", "lina")


def _tag(prefix: str) -> str:
    return "{" + prefix + "}"  # as RedisJournal.tag


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Sessions]]:
    """Every session store behind one contract: ``DATA/sessions.json`` (a server of its own) and
    the region's Redis. Makes ``Sessions`` on one store (a file, or the test's Redis prefix)."""
    made: list[Sessions] = []

    def make(seconds: float = 3600) -> Sessions:
        if request.param == "file":
            backend: SessionStore = LocalSessions(tmp_path / "sessions.json")
        else:
            url = request.getfixturevalue("redis_url")
            backend = RedisSessions(url, _tag(request.getfixturevalue("redis_prefix")))
        made.append(Sessions(store=backend, seconds=seconds))
        return made[-1]

    yield make
    for sessions in made:
        await sessions.store.close()


async def test_sessions_expire(store: Callable[..., Sessions]) -> None:
    sessions = store(seconds=0.3)
    token = await sessions.issue(LINA)
    assert await sessions.lookup(token_hash(token)) == LINA
    await asyncio.sleep(0.4)
    assert await sessions.lookup(token_hash(token)) is None


async def test_revoking_a_person_ends_all_their_sessions(store: Callable[..., Sessions]) -> None:
    sessions = store()
    zhangwei = Principal("demo-county", "staff", "zhangwei")
    tokens = [await sessions.issue(LINA) for _ in range(3)]
    kept = await sessions.issue(zhangwei)
    assert await sessions.revoke_user("demo-county", "lina") == 3
    assert [await sessions.lookup(token_hash(t)) for t in tokens] == [None] * 3
    assert await sessions.lookup(token_hash(kept)) == zhangwei
    assert await sessions.revoke_user("demo-county", "lina") == 0


async def test_a_login_that_raced_a_logout_gets_no_token(
    store: Callable[..., Sessions], default_config: HallConfig
) -> None:
    sessions = store()
    checking = asyncio.create_task(sessions.verify_password(default_config, "lina", "hall-demo"))
    await asyncio.sleep(0)  # the password is being checked...
    await sessions.revoke_user(default_config.hall.id, "lina")  # ...when her sessions are ended
    principal = await checking
    with pytest.raises(Unauthorized):
        await sessions.issue(principal)
    token = await sessions.issue(await sessions.renewed(principal))  # as a password change does
    assert await sessions.lookup(token_hash(token)) == principal


@pytest.fixture
async def region(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Sessions]]:
    """Makes ``Sessions`` on the test's Redis prefix, one client each, closed at the end."""
    made: list[Sessions] = []

    def make(seconds: float = 3600) -> Sessions:
        store = RedisSessions(redis_url, _tag(redis_prefix))
        made.append(Sessions(store=store, seconds=seconds))
        return made[-1]

    yield make
    for sessions in made:
        await sessions.store.close()


async def test_a_token_made_on_one_process_works_on_another_until_a_logout_there(
    region: Callable[..., Sessions],
) -> None:
    a, b = region(), region()
    on_a, on_b = await a.issue(LINA), await b.issue(LINA)
    other = await a.issue(Principal("demo-county", "staff", "zhangwei"))
    assert await b.lookup(token_hash(on_a)) == LINA
    assert await a.lookup(token_hash(on_b)) == LINA
    assert await b.lookup(token_hash("not a token")) is None

    assert await b.revoke_user("demo-county", "lina") == 2  # both of hers, wherever made
    assert await a.lookup(token_hash(on_a)) is None
    assert await a.lookup(token_hash(on_b)) is None
    assert await a.lookup(token_hash(other)) is not None  # nobody else's
    assert await a.revoke_user("demo-county", "lina") == 0


async def test_hundreds_of_checks_at_once_wait_their_turn_for_a_connection(
    region: Callable[..., Sessions],
) -> None:
    """More requests at once than the pool has connections (a shift starting, every screen
    back after a blip): each waits for a connection; none is told Redis is unavailable."""
    a = region()
    token = await a.issue(LINA)
    found = await asyncio.gather(*(a.lookup(token_hash(token)) for _ in range(300)))
    assert found == [LINA] * 300


async def test_a_login_that_raced_a_logout_on_another_process_gets_no_token(
    region: Callable[..., Sessions], default_config: HallConfig
) -> None:
    a, b = region(), region()
    checking = asyncio.create_task(a.verify_password(default_config, "lina", "hall-demo"))
    await asyncio.sleep(0.01)  # the epoch is read, the password is being checked on A...
    await b.revoke_user(default_config.hall.id, "lina")  # ...when B ends her sessions
    principal = await checking
    with pytest.raises(Unauthorized):
        await a.issue(principal)
    token = await a.issue(await a.renewed(principal))  # as a password change does
    assert await b.lookup(token_hash(token)) == principal


async def test_sessions_expire_in_redis_and_leave_no_key_behind(
    region: Callable[..., Sessions], redis_url: str, redis_prefix: str
) -> None:
    short = region(seconds=0.3)
    first = await short.issue(LINA)
    await asyncio.sleep(0.4)
    assert await region().lookup(token_hash(first)) is None
    second = await short.issue(LINA)  # prunes the expired one from her set
    client = redis.Redis.from_url(redis_url)
    try:
        tag = _tag(redis_prefix)
        mine = client.smembers(f"{tag}:sessions-of:demo-county:lina")
        assert mine == {token_hash(second).encode()}
        for key in client.scan_iter(match=f"*{redis_prefix}*"):
            value = client.dump(key) or b""
            assert first.encode() not in key + value and second.encode() not in key + value
            assert key.decode().startswith(tag + ":")  # one hash slot with the journal
            if key != f"{tag}:session-epochs".encode():
                assert 0 < client.pttl(key) <= 300  # nothing lives longer than its session
    finally:
        client.close()


async def test_redis_down_is_503_unavailable_not_a_logout(default_config: HallConfig) -> None:
    server = PrivateRedis().start()
    sessions = Sessions(store=RedisSessions(server.url, _tag(unique_prefix()), timeout=0.5))
    try:
        token = await sessions.issue(LINA)
        server.stop(remove=False)
        for attempt in (
            sessions.lookup(token_hash(token)),
            sessions.issue(LINA),
            sessions.revoke_user("demo-county", "lina"),
            sessions.verify_password(default_config, "lina", "hall-demo"),
        ):
            with pytest.raises(SessionsUnavailable) as refused:
                await attempt
            status, body = to_response(refused.value)
            assert (status, body["error"]) == (503, "unavailable")
        assert sessions.limiter.sizes() == (0, 0)  # refused logins count against nobody
        server.start()  # its AOF kept the session
        assert await sessions.lookup(token_hash(token)) == LINA
    finally:
        await sessions.store.close()
        server.stop()
