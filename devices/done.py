"""The ids of the jobs an agent has done, kept in a small append-only file so that an agent that
restarts (or loses its ack on the way to the hall) acks a job again instead of doing it twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO

KEEP = 10_000  # more than a busy hall's day of tickets on one printer


def _earlier_day(job_id: str, today: str) -> bool:
    """A print job's id is its ticket's, "YYYYMMDD-A001"; the hall never sends an earlier day's."""
    day = job_id[:8]
    return day.isdigit() and job_id[8:9] == "-" and day < today


class DoneStore:
    """A set of job ids that survives the process. ``add`` returns once the id is on disk.

    At start the file is read and rewritten without the ids of earlier days and without all but
    the last ``keep``, so it stays small; a torn last line (a crash mid-append) is dropped: that
    job's ack was never sent, so the hall sends it again.
    """

    def __init__(self, path: str | Path, *, today: date | None = None, keep: int = KEEP) -> None:
        self.path = Path(path)
        day = (today or date.today()).strftime("%Y%m%d")
        kept = [i for i in self._read() if not _earlier_day(i, day)][-keep:]
        self._ids: set[str] = set(kept)
        self._rewrite(kept)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, job_id: str) -> None:
        if job_id in self._ids:
            return
        if not job_id or not job_id.isprintable() or " " in job_id:
            raise ValueError(f"not a job id: {job_id!r}")
        self._file.write(job_id + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._ids.add(job_id)

    def close(self) -> None:
        self._file.close()

    def _read(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        lines = text.split("\n")[:-1]  # the part after the last newline is torn or empty
        return list(dict.fromkeys(line for line in lines if line))

    def _rewrite(self, ids: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            file.write("".join(i + "\n" for i in ids))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        if os.name == "nt":
            return  # Windows cannot open a directory to sync it; NTFS journals the rename
        # The rename itself is durable only once the directory is synced.
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
