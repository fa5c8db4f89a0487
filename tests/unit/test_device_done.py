"""The agent's done file: what survives a restart, and what is dropped when it is rewritten."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from devices.done import DoneStore

TODAY = date(2026, 11, 30)


def test_ids_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "agent" / "done.txt"
    store = DoneStore(path, today=TODAY)
    store.add("20261130-A001")
    store.add("call-17")
    store.add("20261130-A001")
    store.close()
    assert path.read_text() == "20261130-A001\ncall-17\n"  # on disk before add returned, once
    again = DoneStore(path, today=TODAY)
    assert "20261130-A001" in again and "call-17" in again and "20261130-A002" not in again
    assert len(again) == 2
    again.close()


def test_earlier_days_are_dropped_at_start_but_not_other_ids(tmp_path: Path) -> None:
    path = tmp_path / "done.txt"
    path.write_text("20261129-A001\n20261130-A001\n20261201-A001\ncall-5\n")
    store = DoneStore(path, today=TODAY)
    assert set(store) == {"20261130-A001", "20261201-A001", "call-5"}
    store.close()
    assert path.read_text() == "20261130-A001\n20261201-A001\ncall-5\n"


def test_only_the_last_ids_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "done.txt"
    path.write_text("".join(f"20261130-A{n:04d}\n" for n in range(30)))
    store = DoneStore(path, today=TODAY, keep=10)
    assert set(store) == {f"20261130-A{n:04d}" for n in range(20, 30)}
    store.close()
    assert len(path.read_text().splitlines()) == 10


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "done.txt"
    path.write_text("20261130-A001\n20261130-A00")  # a crash in the middle of an append
    store = DoneStore(path, today=TODAY)
    assert set(store) == {"20261130-A001"}
    store.add("20261130-A002")
    store.close()
    assert path.read_text() == "20261130-A001\n20261130-A002\n"


@pytest.mark.parametrize("bad", ["", "a\nb", "a b"])
def test_an_id_that_would_corrupt_the_file_is_refused(tmp_path: Path, bad: str) -> None:
    store = DoneStore(tmp_path / "done.txt", today=TODAY)
    with pytest.raises(ValueError):
        store.add(bad)
    store.close()
    assert (tmp_path / "done.txt").read_text() == ""
