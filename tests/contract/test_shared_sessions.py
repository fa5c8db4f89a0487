"""Sessions and deployment secrets shared through a real Redis, as the processes of one region
share them: each ``Sessions`` here has its own Redis client, as each process would."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from hall.api.auth import Sessions, token_hash
from hall.api.errors import Unauthorized, to_response
from hall.api.session_store import Principal, RedisSessions, SessionsUnavailable
from hall.config import HallConfig
from hall.journal.base import JournalError
from hall.journal.redis import RedisJournal
from hall.shared_keys import cluster_secret, deployment_key, person_key, redis_location
from tests.support.redis import PrivateRedis, free_port, unique_prefix

LINA = Principal("demo-county", "staff", "lina")


@pytest.fixture
async def region(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Sessions]]:
    """Makes ``Sessions`` on the test's Redis prefix, one client each, closed at the end."""
    made: list[Sessions] = []

    def make(seconds: float = 3600) -> Sessions:
        made.append(Sessions(store=RedisSessions(redis_url, redis_prefix), seconds=seconds))
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
        tag = "{" + redis_prefix + "}"
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
    sessions = Sessions(store=RedisSessions(server.url, unique_prefix(), timeout=0.5))
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


async def test_every_process_gets_the_same_person_key_and_cluster_secret(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    keys = await asyncio.gather(*(person_key(redis_url, redis_prefix) for _ in range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    secrets = await asyncio.gather(*(cluster_secret(redis_url, redis_prefix) for _ in range(8)))
    assert len(set(secrets)) == 1 and secrets[0] != keys[0]
    # A process that kept the key in its data directory before does not replace it...
    kept = deployment_key(tmp_path / "person.key")
    assert kept != keys[0]
    assert await person_key(redis_url, redis_prefix, tmp_path / "person.key") == keys[0]
    # ...but the first one to start offers it, so earlier tickets' hashes still match.
    fresh = unique_prefix()
    try:
        assert await person_key(redis_url, fresh, tmp_path / "person.key") == kept
        assert await person_key(redis_url, fresh) == kept
    finally:
        redis.Redis.from_url(redis_url).delete("{" + fresh + "}:person-key")


async def test_a_damaged_shared_key_stops_the_start(redis_url: str, redis_prefix: str) -> None:
    redis.Redis.from_url(redis_url).set("{" + redis_prefix + "}:person-key", b"short")
    with pytest.raises(JournalError, match="not 32 bytes"):
        await person_key(redis_url, redis_prefix)


async def test_shared_keys_unreachable_is_journal_unavailable() -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(JournalError, match="cluster-secret"):
        await cluster_secret(nowhere, unique_prefix())


def test_the_shared_keys_sit_under_the_journals_prefix() -> None:
    default = inspect.signature(RedisJournal).parameters["prefix"].default
    assert redis_location("redis://127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", default)
    assert redis_location("rediss://h:1/2") == ("rediss://h:1/2", default)
    assert redis_location("/var/hall/journal.sqlite3") is None
    assert redis_location("memory:") is None
