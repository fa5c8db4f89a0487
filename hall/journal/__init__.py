"""Journals: the port (``base``) and its backends, one module each."""

from __future__ import annotations

from pathlib import Path

from hall.journal.base import Journal, JournalError, JournalUnavailable, Recorded, WrongVersion

__all__ = [
    "Journal",
    "JournalError",
    "JournalUnavailable",
    "Recorded",
    "WrongVersion",
    "open_journal",
]


def open_journal(url_or_path: str | Path) -> Journal:
    """The journal a configuration string names.

    ``redis://...`` or ``rediss://...`` -> :class:`~hall.journal.redis.RedisJournal` (keys under
    the default prefix); ``memory:`` -> a fresh :class:`~hall.journal.memory.MemoryJournal`;
    anything else is the path of a :class:`~hall.journal.sqlite.SqliteJournal` file. Backends are
    imported here, on demand, so that an embedded deployment never imports redis.
    """
    target = str(url_or_path)
    if target.startswith(("redis://", "rediss://")):
        from hall.journal.redis import RedisJournal

        return RedisJournal(target)
    if target == "memory:":
        from hall.journal.memory import MemoryJournal

        return MemoryJournal()
    from hall.journal.sqlite import SqliteJournal

    return SqliteJournal(Path(target))
