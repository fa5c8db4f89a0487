"""The speech worker never outlives its server, even one killed with SIGKILL (nothing runs at its
stop then): it reads requests from a pipe only the server holds, and exits when that closes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.server import ServerProcess
from tests.support.voice import needs_espeak

pytestmark = [pytest.mark.slow, needs_espeak]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; its new parent reaps it


def test_the_worker_exits_when_its_server_is_killed(tmp_path: Path) -> None:
    # A cold cache of its own, so that the server has a worker rendering in the background.
    server = ServerProcess(
        "--data", str(tmp_path), "--voice-cache", str(tmp_path / "cold"), log=tmp_path / "log"
    )
    with server:
        assert server.process is not None
        deadline = time.monotonic() + 20
        while not (workers := children(server.process.pid)):
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.02)
        (worker,) = workers
        assert alive(worker)
        server.kill9()
        deadline = time.monotonic() + 10
        while alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its server"
            time.sleep(0.02)
        assert "Traceback" not in server.log.read_text()
