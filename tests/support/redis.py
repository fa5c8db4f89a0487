"""Real Redis servers for tests: find one, or start a private one.

- :func:`redis_url` (session fixture): ``$REDIS_URL``, else the machine's Redis at 127.0.0.1:6379
  if it answers PING, else a private ``redis-server`` started for the session. With none of these,
  every test that asks for it is skipped, loudly.
- :func:`redis_prefix` (fixture): a fresh key prefix per test, whose keys are deleted afterwards:
  the machine's Redis is shared with CI and other runs, so tests must never touch others' keys.
- :class:`PrivateRedis`: a server of one's own, with AOF ``appendfsync always``, that a crash test
  can ``kill9()`` and ``restart()`` (same directory, so the AOF is replayed).

To use the fixtures in a test folder, import them into its ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest
import redis

MISSING = "redis-server not installed: apt-get install redis-server"


def free_port() -> int:
    """A TCP port that was free a moment ago (the usual small race applies)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a Redis at ``host:port`` answers PING with PONG (not LOADING, not an error)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """A ``redis-server`` subprocess on a free port, persisting to ``directory`` with AOF.

    ``appendfsync always``: the server replies only after the AOF is fsynced, as in production.
    RDB snapshots are off, so the AOF is the only copy. Use as a context manager, or call
    :meth:`start` and :meth:`stop`. A temporary directory made here is removed at :meth:`stop`.
    """

    def __init__(self, directory: Path | None = None, *extra_args: str) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.skip(MISSING)
        self._own_dir = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="hall-redis-")) if directory is None else directory
        )
        self.port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        """Start the server and wait until it answers PING (after replaying its AOF)."""
        assert self.binary is not None and not self.running
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child keeps it open
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        args += ["--daemonize", "no", *self.extra_args]
        with log:
            self.process = subprocess.Popen([self.binary, *args], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not ping("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{tail}")
            time.sleep(0.02)
        return self

    def kill9(self) -> None:
        """SIGKILL the server: no shutdown, no final AOF rewrite, as in a crash."""
        if self.process is not None and self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        """Start again on the same port and directory; a running server is stopped first."""
        self.stop(remove=False)
        self.start()

    def stop(self, remove: bool = True) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); remove a directory made here."""
        if self.process is not None and self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.process = None
        if remove and self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def usable_redis() -> Iterator[str]:
    """A URL of a Redis to test against, for the duration of the block (see the module doc)."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    if ping("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    with PrivateRedis() as server:  # skips the caller if there is no redis-server
        yield server.url


def delete_keys(url: str, prefix: str) -> int:
    """Delete every key containing ``prefix`` (which must look unique); returns how many."""
    if len(prefix) < 8:
        raise ValueError(f"refusing to delete by a short, maybe shared prefix: {prefix!r}")
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a Redis for this test session; skips the test if there is none."""
    with usable_redis() as url:
        yield url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted when the test ends."""
    prefix = unique_prefix()
    yield prefix
    delete_keys(redis_url, prefix)
