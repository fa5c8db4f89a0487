"""The printer and speaker agents as processes (``hall printer-agent``, ``hall speaker-agent``),
from a settings file: for the tests that need a real agent beside a real ``hall serve``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tests.support.server import ROOT


class Agent:
    """``hall printer-agent`` or ``hall speaker-agent`` in its own process, from a settings file."""

    def __init__(self, kind: str, settings: dict[str, object], directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.config = directory / f"{kind}-agent.toml"
        self.config.write_text(
            "".join(f"{key} = {_toml(value)}\n" for key, value in settings.items()),
            encoding="utf-8",
        )
        self.log = directory / f"{kind}-agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Agent:
        command = [sys.executable, "-m", "hall.cli", f"{self.kind}-agent", "--config"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*command, str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.process.returncode

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.stop() == 0, self.log.read_text()


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
