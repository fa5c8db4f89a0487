"""The journal port: one append-only stream of events per hall; the only source of truth.

Every backend (``memory``, ``sqlite``, ``redis``) implements :class:`Journal` and passes the same
contract suite (``tests/contract``). Backends translate their driver's errors into the errors below.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence

import msgspec

from hall.domain.events import SCHEMA_VERSION, AnyEvent


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored: its hall, its place in that hall's stream and in the whole journal."""

    hall: str
    version: int  # 1, 2, 3... within the hall: the state after it has seen ``version`` events
    position: int  # strictly increasing across all halls of this journal (not gapless)
    event: AnyEvent
    schema: int = SCHEMA_VERSION


class JournalError(Exception):
    """Root of the journal's errors."""


class WrongVersion(JournalError):
    """The hall's stream is not at the version the writer expected: another writer appended."""

    def __init__(self, hall: str, expected: int, actual: int) -> None:
        super().__init__(f"hall {hall}: expected version {expected}, journal is at {actual}")
        self.hall, self.expected, self.actual = hall, expected, actual


class JournalUnavailable(JournalError):
    """The store cannot be reached or refused the write.

    Usually nothing was appended; but when a connection drops after a networked store applied
    the append and before it answered, the append may stand. Re-read the version to know (the
    engine does: it rebuilds its state from the journal after any failed append).
    """


class NotWriter(JournalError):
    """This process does not write the hall (another holds its lease, or none does right now):
    nothing was done; try again, here or at the hall's writer."""


class LeaseLost(NotWriter):
    """The append carried a fence that is no longer the hall's lease: a writer that lost its
    lease (paused, cut off) never appends, and nothing was written."""

    def __init__(self, hall: str) -> None:
        super().__init__(f"hall {hall}: this process no longer holds the hall's writer lease")
        self.hall = hall


class Journal(abc.ABC):
    @abc.abstractmethod
    async def append(
        self,
        hall: str,
        events: Sequence[AnyEvent],
        expected_version: int,
        *,
        fence: str | None = None,
    ) -> int:
        """Append ``events`` to ``hall``'s stream, all or none, durably, before returning.

        Succeeds only if the stream is at ``expected_version`` (else :class:`WrongVersion`, and
        nothing is written). Returns the new version (``expected_version + len(events)``).
        Appending no events checks the version and returns it.

        ``fence``: the writer's lease token (hall/cluster). A shared journal appends only while
        it is the hall's current lease (else :class:`LeaseLost`); a journal that one process
        owns (SQLite under its file lock, memory) has no leases and ignores it.
        """

    @abc.abstractmethod
    async def read(self, hall: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        """Events of ``hall`` with ``version > after``, oldest first, at most ``limit``."""

    @abc.abstractmethod
    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        """Events of every hall with ``position > after``, in position order, at most ``limit``."""

    @abc.abstractmethod
    async def version(self, hall: str) -> int:
        """The hall's current version (0 for a hall with no events)."""

    @abc.abstractmethod
    async def halls(self) -> list[str]:
        """Every hall with at least one event, sorted."""

    @abc.abstractmethod
    def follow(self, hall: str, after: int = 0) -> AsyncIterator[Recorded]:
        """Events of ``hall`` after ``after``: first those stored, then each new one as appended.

        Never ends by itself; the consumer stops by breaking out or cancelling.
        """

    async def durability_problems(self) -> list[str]:
        """Why an append this journal acknowledges could still be lost (empty: none known).

        A server refuses to start on any unless its operator accepts a volatile journal.
        """
        return []

    async def close(self) -> None:  # noqa: B027 - a backend with nothing to release keeps this
        """Release connections and files; the journal is unusable afterwards."""

    async def save_checkpoint(self, hall: str, version: int, blob: bytes) -> None:  # noqa: B027
        """Keep ``blob``, an encoded state of ``hall`` at ``version`` (hall/checkpoint.py), in
        place of the one kept before. A cache beside the events, never part of them: a backend
        may keep nothing (this default), and a caller must survive any error here."""

    async def load_checkpoint(self, hall: str) -> tuple[int, bytes] | None:
        """The last checkpoint kept for ``hall`` as ``(version, blob)``, or None."""
        return None
