"""The durable mark: the last version of a hall this server knows its journal made durable, kept
in a small file of the server's own, away from the journal (a Redis restarted without its data
loses the journal but not this file).

A journal found behind its mark lost acknowledged events: replaying it would hand out ticket
numbers again and send screens versions they already showed. The engine refuses to start then.

The mark is a lower bound, written after appends at most every ``interval`` seconds and at stop,
so it costs no fsync per command; events acknowledged in the last interval before a crash are not
covered by it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

from hall.journal.base import JournalError


class JournalBehind(JournalError):
    """The journal holds fewer events of a hall than this server saw made durable."""

    def __init__(self, hall: str, version: int, mark: int, path: Path | None) -> None:
        where = f" (mark kept in {path})" if path is not None else ""
        super().__init__(
            f"hall {hall}: the journal is at version {version} but this server saw version "
            f"{mark} made durable{where}. The journal lost acknowledged events (a store "
            "restarted without its data?); refusing to go on rather than issue numbers again. "
            "Restore the journal, or remove the mark to accept the loss."
        )
        self.hall, self.version, self.mark, self.path = hall, version, mark, path


def mark_path(data_dir: Path, journal_url: str, hall: str) -> Path:
    """One file per journal and hall; the journal is named by a digest of its URL, which may hold
    a password."""
    digest = hashlib.sha256(journal_url.encode()).hexdigest()[:16]
    safe_hall = re.sub(r"[^A-Za-z0-9_.-]", "_", hall)
    return data_dir / "marks" / f"{digest}-{safe_hall}.version"


class DurableMark:
    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._written = -1
        self._at = 0.0

    def read(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def check(self, hall: str, version: int) -> None:
        """Raise :class:`JournalBehind` if ``version`` (the replayed journal's) is behind."""
        mark = self.read()
        if version < mark:
            raise JournalBehind(hall, version, mark, self.path)
        self._written = mark

    def update(self, version: int, *, force: bool = False, every: float | None = None) -> None:
        """Record ``version`` as durable, if the last write is ``every`` (default ``interval``)
        seconds old, or ``force``."""
        now = time.monotonic()
        if self._written < 0:  # never lower a mark that was not checked first
            self._written = self.read()
        interval = self.interval if every is None else every
        if version <= self._written or (not force and now - self._at < interval):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w") as file:
            file.write(f"{version}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        self._written, self._at = version, now
