"""Commands that may or may not have happened: lost replies, idempotency keys, a journal that
went backwards. Real Redis behind a real TCP proxy, real SQLite files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import CancelTicket, IssueTicket
from hall.domain.errors import KeyReused
from hall.domain.events import TicketIssued
from hall.engine import HallEngine
from hall.journal.base import Journal, JournalError, JournalUnavailable
from hall.journal.mark import DurableMark, JournalBehind
from hall.journal.redis import RedisJournal
from hall.journal.sqlite import SqliteJournal
from tests.support.proxy import ReplyDroppingProxy
from tests.support.redis import delete_keys

ISSUE = IssueTicket(category="general")


async def _issued(journal: Journal, hall: str) -> list[str]:
    return [r.event.number for r in await journal.read(hall) if isinstance(r.event, TicketIssued)]


@pytest.fixture
async def proxied(
    default_config: HallConfig, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[HallEngine, ReplyDroppingProxy, RedisJournal]]:
    """An engine whose journal reaches Redis through the proxy, and a direct journal to check."""
    with ReplyDroppingProxy(urlsplit(redis_url).port or 6379) as proxy:
        journal = RedisJournal(proxy.url, prefix=redis_prefix)
        direct = RedisJournal(redis_url, prefix=redis_prefix)
        engine = HallEngine(default_config, journal, Bus(), store_timeout=2.0)
        await engine.start()
        await engine.execute(ISSUE)  # loads the script; A001
        try:
            yield engine, proxy, direct
        finally:
            await engine.stop()
            await journal.close()
            await direct.close()


@pytest.mark.redis
async def test_an_append_whose_reply_is_lost_but_landed_succeeds(
    default_config: HallConfig, proxied: tuple[HallEngine, ReplyDroppingProxy, RedisJournal]
) -> None:
    engine, proxy, direct = proxied
    proxy.drop = "appends"  # every try of the append lands, and every reply is lost
    done = await engine.execute(ISSUE)
    assert proxy.dropped >= 1
    assert done.records[-1].event.number == "A002"  # type: ignore[union-attr]
    proxy.drop = None
    assert await _issued(direct, default_config.hall.id) == ["A001", "A002"]
    assert (await engine.execute(ISSUE)).records[-1].event.number == "A003"  # type: ignore[union-attr]


@pytest.mark.redis
async def test_a_retry_with_the_same_key_gets_the_first_answer(
    default_config: HallConfig, proxied: tuple[HallEngine, ReplyDroppingProxy, RedisJournal]
) -> None:
    engine, proxy, direct = proxied
    proxy.drop = "all"  # the append lands; no reply, and the journal cannot be read to know
    with pytest.raises(JournalUnavailable):
        await engine.execute(ISSUE, key="kiosk-1/retry-0001")
    proxy.drop = None
    again = await engine.execute(ISSUE, key="kiosk-1/retry-0001")
    assert again.records[-1].event.number == "A002"  # type: ignore[union-attr]
    assert await _issued(direct, default_config.hall.id) == ["A001", "A002"]


async def test_keys_answer_again_across_restarts_and_refuse_another_command(
    default_config: HallConfig, tmp_path: Path
) -> None:
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    engine = HallEngine(default_config, journal, Bus())
    await engine.start()
    try:
        first = await engine.execute(ISSUE, lambda s, events: events[-1].number, key="k/one-123")
        assert first.reply == "A001"
        again = await engine.execute(ISSUE, lambda s, events: events[-1].number, key="k/one-123")
        assert again.reply == "A001" and again.records == first.records
        ticket = first.records[-1].event.ticket  # type: ignore[union-attr]
        with pytest.raises(KeyReused):
            await engine.execute(CancelTicket(ticket=ticket), key="k/one-123")
        await engine.stop()
        engine = HallEngine(default_config, journal, Bus())
        await engine.start()  # the key is in the journal, not only in memory
        after = await engine.execute(ISSUE, lambda s, events: events[-1].number, key="k/one-123")
        assert after.reply == "A001"
        assert await _issued(journal, default_config.hall.id) == ["A001"]
    finally:
        await engine.stop()
        await journal.close()


@pytest.mark.redis
async def test_a_journal_that_went_backwards_is_refused(
    default_config: HallConfig, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    hall = default_config.hall.id
    mark = DurableMark(tmp_path / "marks" / "hall.version")
    journal = RedisJournal(redis_url, prefix=redis_prefix)
    engine = HallEngine(default_config, journal, Bus(), mark=mark)
    await engine.start()
    try:
        for _ in range(3):
            await engine.execute(ISSUE)
        delete_keys(redis_url, redis_prefix)  # the store lost its data under a running server
        with pytest.raises(JournalError):
            await engine.execute(ISSUE)
        with pytest.raises(JournalBehind):
            await engine.execute(ISSUE)
        assert await journal.version(hall) == 0, "A001 must not be issued again"
    finally:
        await engine.stop()
    assert mark.read() == 4

    restarted = HallEngine(default_config, journal, Bus(), mark=mark)
    with pytest.raises(JournalBehind, match=f"hall {hall}: the journal is at version 0 .* 4"):
        await restarted.start()
    await journal.close()


def test_a_mark_is_never_lowered(tmp_path: Path) -> None:
    DurableMark(tmp_path / "hall.version").update(10, force=True)
    unchecked = DurableMark(tmp_path / "hall.version")  # e.g. an engine that failed to start
    unchecked.update(3, force=True)
    assert unchecked.read() == 10
    unchecked.update(11)
    assert DurableMark(tmp_path / "hall.version").read() == 11
