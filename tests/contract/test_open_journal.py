"""``open_journal``: which backend a configuration string names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall.domain.events import WindowOpened
from hall.journal import open_journal
from hall.journal.memory import MemoryJournal
from hall.journal.redis import RedisJournal
from hall.journal.sqlite import SqliteJournal

OPENED = WindowOpened(at=datetime(2025, 3, 3, 8, 30, tzinfo=UTC), window="1", staff="s1")


async def test_memory() -> None:
    journal = open_journal("memory:")
    assert isinstance(journal, MemoryJournal)
    assert await journal.append("h", [OPENED], 0) == 1
    assert await open_journal("memory:").version("h") == 0  # each one is fresh


@pytest.mark.parametrize("relative", ["hall.db", "var/journal/hall.sqlite3"])
async def test_anything_else_is_a_sqlite_path(tmp_path: Path, relative: str) -> None:
    journal = open_journal(str(tmp_path / relative))
    try:
        assert isinstance(journal, SqliteJournal)
        assert await journal.append("h", [OPENED], 0) == 1
    finally:
        await journal.close()
    assert (tmp_path / relative).is_file()


@pytest.mark.redis
async def test_redis_urls(redis_url: str) -> None:
    for url in (redis_url, "rediss://127.0.0.1:1/0"):
        journal = open_journal(url)
        assert isinstance(journal, RedisJournal)
        await journal.close()
    journal = open_journal(redis_url)
    try:
        assert await journal.version("no-such-hall-in-any-test-run") == 0  # it is connected
    finally:
        await journal.close()
