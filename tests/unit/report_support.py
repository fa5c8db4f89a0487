"""What the report tests share: the small hall with a second manager, and a journal and read
model in a temp dir filled with a driver's events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hall.config import HallConfig, loads
from hall.domain.events import AnyEvent
from hall.journal.sqlite import SqliteJournal
from hall.reports.store import ReadModel
from tests.unit.conftest import PASSWORD_HASH, small_hall_toml

HALL = "unit-hall"


def report_hall() -> HallConfig:
    """The small hall, and a second manager (a case found not valid needs another to confirm)."""
    extra = f"""
[[staff]]
username = "boss2"
name = "Boss Two"
role = "manager"
password_hash = "{PASSWORD_HASH}"
"""
    return loads(small_hall_toml() + extra, "<report hall>")


def journal_of(path: Path, events: list[AnyEvent], chunk: int = 5000) -> Path:
    """A real SQLite journal at ``path`` holding ``events`` for the hall."""

    async def write() -> None:
        journal = SqliteJournal(path)
        try:
            for i in range(0, len(events), chunk):
                await journal.append(HALL, events[i : i + chunk], i)
        finally:
            await journal.close()

    asyncio.run(write())
    return path


def caught_up(journal_path: Path, model_path: Path, page: int = 5000) -> ReadModel:
    model = ReadModel(model_path)

    async def run() -> None:
        journal = SqliteJournal(journal_path)
        try:
            await model.catch_up(journal, HALL, page=page)
        finally:
            await journal.close()

    asyncio.run(run())
    return model
