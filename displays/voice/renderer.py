"""The server's side of the speech worker (displays/voice/worker.py): starts it, asks it for one
segment at a time, and kills it. Nothing here blocks the event loop: the worker is a subprocess
spoken to through asyncio pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import msgspec

from displays.voice.plan import Segment
from displays.voice.worker import Done, Hello, Render

START_TIMEOUT = 20.0  # s: a Python start and pyttsx3.init() take ~0.2 s on a quiet machine
RENDER_TIMEOUT = 15.0  # s: the worker's own limit is 10 s


class RenderError(Exception):
    """The worker could not render a segment, or is gone."""


class Renderer:
    """One worker process. :meth:`start` answers its :class:`Hello` (voices, or why not);
    :meth:`render` is serialised by a lock, so callers may call it concurrently."""

    def __init__(self) -> None:
        self.renders = 0  # segments synthesised by this renderer (tests count cache misses)
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._done = msgspec.json.Decoder(Done)

    async def start(self) -> Hello:
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "displays.voice.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:  # no such interpreter any more, too many processes...
            return Hello(error=f"the speech worker did not start ({exc})")
        try:
            line = await asyncio.wait_for(self._read(), START_TIMEOUT)
            return msgspec.json.decode(line, type=Hello)
        except (TimeoutError, RenderError, msgspec.DecodeError) as exc:
            await self.close()
            return Hello(error=f"the speech worker did not start ({exc or type(exc).__name__})")

    async def render(self, segment: Segment, path: Path) -> None:
        request = Render(text=segment.text, voice=segment.voice, rate=segment.rate, path=str(path))
        async with self._lock:
            process = self._process
            if process is None or process.stdin is None:
                raise RenderError("the speech worker is not running")
            try:
                process.stdin.write(msgspec.json.encode(request) + b"\n")
                await process.stdin.drain()
                done = self._done.decode(await asyncio.wait_for(self._read(), RENDER_TIMEOUT))
            except (OSError, TimeoutError, RenderError, msgspec.DecodeError) as exc:
                await self.close()  # its answers can no longer be matched to requests
                raise RenderError(f"the speech worker failed: {exc or type(exc).__name__}") from exc
        if done.error is not None:
            raise RenderError(done.error)
        self.renders += 1

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def close(self) -> None:
        """Kill the worker (it holds nothing worth a graceful stop) and reap it. Forgotten only
        once reaped: a close cancelled half-way (the server stopping) is finished by the next."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.communicate()  # reads its pipes to the end and closes them (wait() leaks)
        if self._process is process:
            self._process = None

    async def _read(self) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        line = await self._process.stdout.readline()
        if not line:
            raise RenderError("the speech worker exited")
        return line
