"""Every journal backend behind one fixture, so that one contract suite runs against each.

``store`` names a place where events live (a MemoryStore, a SQLite file, a Redis key prefix) and
opens journals on it; ``journal`` is the first journal opened there. Opening a second journal on
the same store stands for a second process (concurrency) or for a restart (durability).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hall.journal.base import Journal
from hall.journal.memory import MemoryJournal, MemoryStore
from hall.journal.redis import RedisJournal
from hall.journal.sqlite import SqliteJournal


class Store:
    """Opens journals on one place; closes every one of them when the test ends."""

    def __init__(self, name: str, factory: Callable[[], Journal]) -> None:
        self.name = name
        self._factory = factory
        self.opened: list[Journal] = []

    def open(self) -> Journal:
        journal = self._factory()
        self.opened.append(journal)
        return journal

    async def close_all(self) -> None:
        for journal in self.opened:
            await journal.close()  # idempotent: tests may have closed some already


def sqlite_store(path: Path) -> Store:
    return Store("sqlite", lambda: SqliteJournal(path))


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)],
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        shared = MemoryStore()
        made = Store("memory", lambda: MemoryJournal(shared))
    elif request.param == "sqlite":
        made = sqlite_store(tmp_path / "journal" / "hall.db")
    else:
        # Requested here, not as parameters, so memory and SQLite runs never need a Redis. The
        # prefix fixture deletes this test's keys after our teardown has closed the journals.
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        made = Store("redis", lambda: RedisJournal(url, prefix=prefix))
    yield made
    await made.close_all()


@pytest.fixture
def journal(store: Store) -> Journal:
    return store.open()
