"""The speaker agent (``hall speaker-agent``): plays the hall's call announcements aloud, for a
hall whose screen PC has no speakers.

It serves the hall's device link with a speaker device's token (devices/link.py). For each play
job it fetches the call's WAV from the hall server (the HTTP address of the link's host), writes
it to a temporary file, runs the configured player on it (``aplay -q {file}``: split like a shell
line, ``{file}`` replaced, no shell), waits for the player to end, and acks. The hall sends calls
one at a time in call order, each after the one before was acked, so they are heard in order and
never over each other. A fetch or a player that fails (or outlasts ``play_seconds``) fails the job
as "error"; the hall sends it again. Played ids go to the done file as printed tickets do, so a
call is not announced twice after a lost ack or a quick restart of the agent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from devices import agent_cli
from devices.agent_cli import AgentSettings, Seconds
from devices.done import DoneStore
from devices.link import JobFailed, run_agent
from devices.protocol import Job, Play

log = logging.getLogger(__name__)

AGENT = "speaker-agent/1"
FORGET_SECONDS = 600  # a done file not written for this long is dropped at start
MAX_WAV = 16 * 1024 * 1024  # an announcement is about 0.5 MB; more is not one


class Settings(AgentSettings, frozen=True, kw_only=True):
    # The command that plays a WAV file and exits when done; {file} is the file's path.
    player: str = "aplay -q {file}"
    play_seconds: Seconds = 60.0  # a player still running after this is stopped: the job fails
    fetch_seconds: Seconds = 10.0  # to fetch one announcement
    state: str = "var/speaker-agent"

    def problems(self) -> Iterable[tuple[str, str]]:
        yield from super().problems()
        try:
            words = shlex.split(self.player)
        except ValueError as exc:
            yield "player", f"cannot split {self.player!r} into words: {exc}"
            return
        if not words or not any("{file}" in word for word in words[1:]):
            yield "player", "a command and its arguments, one of which holds {file}"


def main(args: argparse.Namespace) -> int:
    return agent_cli.main("speaker-agent", args, Settings, serve)


class Speaker:
    """Perform play jobs: the ``perform`` of ``run_agent``."""

    def __init__(self, base: str, settings: Settings) -> None:
        self.base = base  # http://HOST:PORT of the hall server
        self.player = shlex.split(settings.player)
        self.play_seconds = settings.play_seconds
        self.fetch_seconds = settings.fetch_seconds

    async def perform(self, job: Job) -> None:
        if not isinstance(job, Play):
            raise JobFailed("error", f"a speaker agent does not do {type(job).__name__} jobs")
        if not job.url.startswith("/") or job.url.startswith("//"):
            raise JobFailed("error", "a play job's url is a path on the hall server")
        path = await asyncio.to_thread(self._fetch, self.base + job.url)
        try:
            await self._play(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        log.info("played %s to window %s (%s)", job.number, job.window, job.id)

    def _fetch(self, url: str) -> str:
        """The announcement at ``url``, in a temporary file (its path)."""
        request = urllib.request.Request(url, headers={"Accept": "audio/wav"})
        try:
            with urllib.request.urlopen(request, timeout=self.fetch_seconds) as response:
                wav: bytes = response.read(MAX_WAV + 1)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response, and so the connection
            raise JobFailed("error", f"the announcement: HTTP {exc.code}") from None
        except (OSError, urllib.error.URLError) as exc:
            raise JobFailed("error", f"cannot fetch the announcement: {exc}") from None
        if len(wav) > MAX_WAV or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
            raise JobFailed("error", "the announcement is not a WAV file")
        descriptor, path = tempfile.mkstemp(prefix="hall-call-", suffix=".wav")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(wav)
        except OSError as exc:
            os.unlink(path)
            raise JobFailed("error", f"cannot keep the announcement: {exc.strerror}") from None
        return path

    async def _play(self, path: str) -> None:
        command = [word.replace("{file}", path) for word in self.player]
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: a timeout stops all of it
            )
        except OSError as exc:
            raise JobFailed("error", f"cannot run the player {command[0]}: {exc}") from None
        try:
            async with asyncio.timeout(self.play_seconds):
                _, errors = await process.communicate()
        except TimeoutError:
            raise JobFailed("error", f"the player ran over {self.play_seconds:g} s") from None
        finally:
            if process.returncode is None:  # timed out, or the agent is stopping
                # A wrapper script's children would play on, and hold the pipe open.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if process.returncode != 0:
            said = errors.decode(errors="replace").strip().splitlines()
            last = f": {said[-1]}" if said else ""
            raise JobFailed("error", f"the player exited with {process.returncode}{last}")


async def serve(settings: Settings, token: str, stop: asyncio.Event) -> None:
    """Play the hall's calls until ``stop`` is set."""
    done = Path(settings.state) / "done.txt"
    # Play ids ("call-<version>") carry no date, and a hall sends again only the calls of the last
    # minute: older ids guard against nothing, and a journal started afresh would reuse them.
    with contextlib.suppress(FileNotFoundError):
        if time.time() - done.stat().st_mtime > FORGET_SECONDS:
            done.unlink()
    store = DoneStore(done)
    speaker = Speaker(agent_cli.http_base(settings.hall_url), settings)
    log.info("playing with %s", speaker.player[0])
    try:
        await run_agent(
            settings.hall_url,
            token=token,
            agent_name=AGENT,
            perform=speaker.perform,
            done_store=store,
            stop=stop,
        )
    finally:
        store.close()
