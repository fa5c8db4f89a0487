"""What only the Redis journal promises: its keys, its errors, and surviving a server crash."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from hall.api.service import HallService, VolatileJournal
from hall.config import HallConfig
from hall.domain.events import TicketCalled, encode
from hall.journal.base import JournalUnavailable, LeaseLost, WrongVersion
from hall.journal.redis import RedisJournal
from hall.settings import Settings
from tests.contract.test_sqlite import check_whole_batches
from tests.support.redis import PrivateRedis, unique_prefix

pytestmark = pytest.mark.redis


def called(ticket: str, window: str) -> TicketCalled:
    return TicketCalled(at=datetime(2025, 3, 3, 9, tzinfo=UTC), ticket=ticket, window=window)


def batch(version: int) -> list[TicketCalled]:
    """The batch appended at ``version``, in the shape ``check_whole_batches`` verifies."""
    size = 1 + version % 7
    return [called(f"b{version}", f"{i}/{size}") for i in range(size)]


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with PrivateRedis() as private:
        yield private


async def test_all_keys_share_one_hash_slot(redis_url: str, redis_prefix: str) -> None:
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    try:
        await journal.append("a", [called("t1", "1")], 0)
        await journal.append("b:with:colons", [called("t2", "2")], 0)
    finally:
        await journal.close()
    client = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match=f"*{redis_prefix}*"))
    finally:
        client.close()
    tag = "{" + redis_prefix + "}"
    assert keys == sorted(
        f"{tag}:{name}"
        for name in ["all", "position", "versions", "tokens", "hall:a", "hall:b:with:colons"]
    )


def test_a_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisJournal("redis://127.0.0.1:1", prefix="a{b}")


async def test_a_retried_append_is_recognised_not_refused(
    redis_url: str, redis_prefix: str
) -> None:
    """The reply of an append is lost and redis-py sends the same script call again."""
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    try:
        keys = [*journal._keys, journal._hall_key("h"), journal.lease_key("h")]
        args = ["h", 0, "token-1", 1, "", "ticket_called", encode(called("t1", "1"))]
        assert await journal._append_script(keys=keys, args=args) == [1, 1]
        assert await journal._append_script(keys=keys, args=args) == [1, 1]  # the retry
        assert [r.event for r in await journal.read_all()] == [called("t1", "1")]
        other = ["h", 0, "token-2", *args[3:]]  # a different writer at the same version
        assert await journal._append_script(keys=keys, args=other) == [0, 1]
    finally:
        await journal.close()


async def test_an_append_with_a_fence_goes_through_only_under_that_lease(
    redis_url: str, redis_prefix: str
) -> None:
    """The fence is checked inside the append script: a writer whose lease expired (paused past
    it) or was taken by another process appends nothing, and learns it (LeaseLost)."""
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        with pytest.raises(LeaseLost):  # no lease at all
            await journal.append("h", [called("t1", "1")], 0, fence="1|a")
        client.set(journal.lease_key("h"), "1|a", px=60_000)
        assert await journal.append("h", [called("t1", "1")], 0, fence="1|a") == 1
        client.set(journal.lease_key("h"), "2|b", px=60_000)  # b took the hall over
        with pytest.raises(LeaseLost):
            await journal.append("h", [called("t2", "1")], 1, fence="1|a")
        assert await journal.append("h", [called("t2", "1")], 1, fence="2|b") == 2
        assert [r.event for r in await journal.read("h")] == [called("t1", "1"), called("t2", "1")]
    finally:
        client.close()
        await journal.close()


async def test_wrong_type_keys_are_journal_unavailable(redis_url: str, redis_prefix: str) -> None:
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("{" + redis_prefix + "}:versions", "not a hash")
        with pytest.raises(JournalUnavailable, match="WRONGTYPE"):
            await journal.append("h", [called("t1", "1")], 0)
        with pytest.raises(JournalUnavailable, match="WRONGTYPE"):
            await journal.halls()
    finally:
        client.close()
        await journal.close()


async def test_private_server_fsyncs_every_write(server: PrivateRedis) -> None:
    journal = RedisJournal(server.url, prefix=unique_prefix())
    try:
        settings = await journal.diagnostics()
    finally:
        await journal.close()
    assert settings["appendonly"] == "yes" and settings["appendfsync"] == "always"


async def test_a_dead_server_is_journal_unavailable_then_recovers(server: PrivateRedis) -> None:
    journal = RedisJournal(server.url, prefix=unique_prefix(), retries=1)
    try:
        await journal.append("h", batch(0), 0)
        server.kill9()
        started = time.monotonic()
        for call in (
            journal.append("h", batch(1), 1),
            journal.read("h"),
            journal.read_all(),
            journal.version("h"),
            journal.halls(),
        ):
            with pytest.raises(JournalUnavailable):
                await call
        assert time.monotonic() - started < 5  # fails fast, does not hang
        await asyncio.to_thread(server.restart)
        assert await journal.version("h") == 1  # same object reconnects; the AOF kept it
        assert await journal.append("h", batch(1), 1) == 3
    finally:
        await journal.close()


async def test_a_follower_hears_at_once_that_the_server_died(server: PrivateRedis) -> None:
    journal = RedisJournal(server.url, prefix=unique_prefix())
    try:
        await journal.append("h", batch(0), 0)
        events = journal.follow("h")
        assert (await anext(events)).version == 1
        waiting = asyncio.create_task(anext(events))
        await asyncio.sleep(0.1)
        server.kill9()
        async with asyncio.timeout(2):
            with pytest.raises(JournalUnavailable):
                await waiting
    finally:
        await journal.close()


@pytest.mark.slow
async def test_a_crash_while_appending_keeps_whole_acknowledged_appends(
    server: PrivateRedis,
) -> None:
    prefix = unique_prefix()
    journal = RedisJournal(server.url, prefix=prefix, retries=0)
    acknowledged = 0

    async def append_forever() -> None:
        nonlocal acknowledged
        while True:
            acknowledged = await journal.append("h", batch(acknowledged), acknowledged)

    try:
        writer = asyncio.create_task(append_forever())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.kill9)
        with pytest.raises(JournalUnavailable):
            await writer
        assert acknowledged > 20
        await asyncio.to_thread(server.restart)
        stored = await journal.read("h")
        check_whole_batches(stored)
        # every acknowledged append survived; the one in flight may or may not have
        assert len(stored) >= acknowledged
        assert await journal.version("h") == len(stored)
        assert [r.position for r in await journal.read_all()] == [r.position for r in stored]
    finally:
        await journal.close()


async def test_an_append_after_a_lost_position_counter_writes_all_or_nothing(
    redis_url: str, redis_prefix: str
) -> None:
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        await journal.append("a", [called("t1", "1"), called("t2", "1")], 0)
        client.delete("{" + redis_prefix + "}:position")
        # Positions 1 and 2 are taken in the `all` stream: the next ones must follow them.
        assert await journal.append("b", [called("t3", "2")], 0) == 1
        assert await journal.append("a", [called("t4", "1")], 2) == 3
        found = await journal.read_all()
        assert [(r.hall, r.version, r.position) for r in found] == [
            ("a", 1, 1),
            ("a", 2, 2),
            ("b", 1, 3),
            ("a", 3, 4),
        ]
        assert [r.position for r in await journal.read("a")] == [1, 2, 4]
    finally:
        client.close()
        await journal.close()


async def test_the_hall_stream_not_the_versions_hash_decides_the_version(
    redis_url: str, redis_prefix: str
) -> None:
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        await journal.append("a", [called("t1", "1")], 0)
        client.delete("{" + redis_prefix + "}:versions")
        with pytest.raises(WrongVersion):  # the stream holds version 1: nothing is overwritten
            await journal.append("a", [called("t2", "1")], 0)
        assert await journal.append("a", [called("t2", "1")], 1) == 2
        assert [r.version for r in await journal.read("a")] == [1, 2]
    finally:
        client.close()
        await journal.close()


async def test_persistence_settings_are_checked(server: PrivateRedis, redis_url: str) -> None:
    durable = RedisJournal(server.url)
    try:
        assert await durable.durability_problems() == []
    finally:
        await durable.close()
    client = redis.Redis.from_url(server.url)
    try:
        client.config_set("appendfsync", "everysec")
        client.config_set("maxmemory-policy", "allkeys-lru")
    finally:
        client.close()
    volatile = RedisJournal(server.url)
    try:
        problems = await volatile.durability_problems()
    finally:
        await volatile.close()
    assert problems == [
        "appendfsync is everysec, not always",
        "maxmemory-policy is allkeys-lru, not noeviction",
    ]


async def test_a_server_refuses_a_volatile_redis_unless_told(
    tmp_path: Path, default_config: HallConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with PrivateRedis(None, "--appendonly", "no") as volatile:
        refused = HallService([default_config], volatile.url, settings=Settings(data_dir=tmp_path))
        with pytest.raises(VolatileJournal, match=r"appendonly is no, not yes.*allow-volatile"):
            await refused.start()
        assert refused.journal is None and not refused.engines
        allowed = HallService(
            [default_config],
            volatile.url,
            settings=Settings(data_dir=tmp_path, allow_volatile_redis=True),
        )
        await allowed.start()
        try:
            assert list(allowed.engines) == [default_config.hall.id]
        finally:
            await allowed.stop()
    assert "VOLATILE JOURNAL: appendonly is no" in caplog.text
