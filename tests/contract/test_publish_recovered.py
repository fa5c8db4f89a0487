"""A batch whose append seemed to fail (the store took it, then stopped answering) is found by
the next replay; it is then published like any batch, so screens and the event feed do not skip
it: nothing durable stays untold until the next command."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import IssueTicket
from hall.domain.events import AnyEvent, TicketIssued
from hall.engine import HallEngine
from hall.journal.base import JournalUnavailable, Recorded
from hall.journal.sqlite import SqliteJournal

MONDAY = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


class LostReply(SqliteJournal):
    """A real SQLite journal that, while ``down``, takes an append and then loses the reply,
    and answers nothing else (so the writer cannot tell that the append landed)."""

    down = False

    async def append(
        self, hall: str, events: Sequence[AnyEvent], expected_version: int, **fence: Any
    ) -> int:
        version = await super().append(hall, events, expected_version, **fence)
        if self.down:
            raise JournalUnavailable("the reply was lost (test)")
        return version

    async def version(self, hall: str) -> int:
        if self.down:
            raise JournalUnavailable("the store does not answer (test)")
        return await super().version(hall)


async def test_a_batch_that_landed_unseen_is_published_once_the_store_answers(
    tmp_path: Path, default_config: HallConfig
) -> None:
    journal = LostReply(tmp_path / "journal.sqlite3")
    bus = Bus()
    engine = HallEngine(default_config, journal, bus, clock=lambda: MONDAY)
    told: list[int] = []
    engine.after_batch.append(lambda _, records: told.extend(r.version for r in records))
    await engine.start()
    try:
        with bus.subscribe(default_config.hall.id) as feed:
            await engine.execute(IssueTicket(category="general"))
            journal.down = True
            with pytest.raises(JournalUnavailable):
                await engine.execute(IssueTicket(category="general"))
            journal.down = False
            waiting = await engine.read(lambda state: len(state.queues["general"]))
            assert waiting == 2  # the replay found the second ticket in the journal
            published: list[Recorded] = []
            while not feed.empty():
                published.append(feed.get_nowait())
        issued = [r.event.number for r in published if isinstance(r.event, TicketIssued)]
        assert issued == ["A001", "A002"]
        versions = [r.version for r in published]
        assert versions == sorted(set(versions)) == told  # each once, in order, to both
    finally:
        journal.down = False
        await engine.stop()
        await journal.close()
