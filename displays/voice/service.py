"""Announcements of one server: every hall's segments ready in memory, a call's WAV joined from
them, and the speech worker that renders what the disk cache lacks.

Start-up renders, in the background, every segment any call can need (plan.segments): a segment
found in the cache is read, one that is not is rendered by the worker. A request for a call needs
only those segments, so it never causes any other synthesis; one whose segments are not ready yet
waits for them (asked of the worker at once, behind at most the segment it is rendering). The
worker is started only when something is missing and closed once the set is complete: after that
nothing can ever be asked of it (a segment that failed stays missing until a restart). A cache
directory that cannot be written is replaced, for this run, by a private temporary one: one line
says so, and the hall still speaks. A hall whose voice or engine is missing still runs: the call's
WAV leaves out the languages it cannot speak, and is the chime alone when none is left.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from array import array
from collections.abc import Iterable
from pathlib import Path

from displays.voice.cache import SegmentCache
from displays.voice.chime import chime
from displays.voice.joiner import Joined, JoinedCache, join, prepare
from displays.voice.plan import Segment, is_number, plan, segments
from displays.voice.renderer import Renderer, RenderError
from displays.voice.wav import encode
from hall.config import HallConfig
from hall.domain.errors import ECHO_CHARS, NotFound, UnknownHall, UnknownWindow, shown

log = logging.getLogger(__name__)

INSTALL = "apt-get install espeak-ng"
JOINED_BYTES = 32 * 2**20  # about 65 announcements of two languages (~500 KiB each)
MAX_STARTS = 3  # a worker that keeps dying (a broken voice crashing espeak-ng) is given up on


class UnknownNumber(NotFound):
    code = "unknown_number"


class VoiceService:
    def __init__(
        self,
        configs: Iterable[HallConfig],
        cache_dir: Path,
        speech: bool = True,
        joined_bytes: int = JOINED_BYTES,
    ) -> None:
        self.configs = {config.hall.id: config for config in configs}
        self.cache_dir = cache_dir
        self.cache = SegmentCache(cache_dir)
        self._private: Path | None = None  # the temporary cache used instead, removed at stop
        self.speech = speech
        self.renderer = Renderer()
        self.ready = asyncio.Event()  # every segment tried, the worker closed (tests, bench)
        self._segments: dict[Segment, array[int]] = {}  # prepared (trimmed, faded)
        self._pending: dict[Segment, asyncio.Task[array[int] | None]] = {}
        self._joining: dict[tuple[str, str, str], asyncio.Task[Joined]] = {}
        self._joined = JoinedCache(joined_bytes)
        self._starting = asyncio.Lock()
        self._starts = 0
        self._failures = 0  # segments that did not render (a retry may)
        self._no_engine: str | None = None  # why there is no speech at all
        self._missing: set[str] = set()  # configured voices espeak-ng does not have
        self._warming: asyncio.Task[None] | None = None
        self._over = False  # the pre-render is done: the worker is never started again

    async def start(self) -> None:
        """Begin rendering every hall's segments in the background; returns at once."""
        # Made in the running loop: an app may be started again, in another loop (tests).
        self.ready = asyncio.Event()
        self._starting = asyncio.Lock()
        self._over = False
        if not self.speech:
            log.info("voice: speech is off; announcements are the chime alone")
            self.ready.set()
            return
        self.cache = SegmentCache(self._writable_cache())
        self._warming = asyncio.create_task(self._warm(), name="voice-prerender")

    async def stop(self) -> None:
        tasks = [*self._pending.values(), *self._joining.values()]
        if self._warming is not None:
            tasks.append(self._warming)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.renderer.close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    def _writable_cache(self) -> Path:
        """The cache directory, made if need be, if a file can be written and removed there;
        else a private temporary directory (one line says why). Without this check, every
        segment failed on its own, some only after the worker's timeout, for minutes."""
        probe = self.cache_dir / f".probe-{os.getpid()}"
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            self._private = Path(tempfile.mkdtemp(prefix="hall-voice-"))
            log.warning(
                "voice: cannot write the segment cache %s (%s: %s); rendering into %s for this "
                "run instead (removed at stop): fix the directory or pass --voice-cache DIR",
                self.cache_dir,
                type(exc).__name__,
                exc.strerror or exc,
                self._private,
            )
            return self._private
        return self.cache_dir

    def check(self, hall: str, number: str, window: str | None) -> HallConfig:
        """The hall's config if ``number`` could be called to ``window`` there; else NotFound."""
        config = self.configs.get(hall)
        if config is None:
            raise UnknownHall(f"no hall {shown(hall)} on this server", hall=hall[:ECHO_CHARS])
        if window is None or config.window(window) is None:
            window = window or ""
            raise UnknownWindow(
                f"hall {hall} has no window {shown(window)}", window=window[:ECHO_CHARS]
            )
        if not is_number(config, number):
            digits = config.hall.number_digits
            message = (
                f"{shown(number)} is not a number of hall {hall}: a prefix and {digits} digits"
            )
            raise UnknownNumber(message, number=number[:ECHO_CHARS])
        return config

    async def announcement(self, hall: str, number: str, window: str | None) -> Joined:
        """The call's WAV: the chime, then each language's sentence, ``repeat`` times."""
        self.check(hall, number, window)
        assert window is not None  # check() refused it otherwise
        key = (hall, number, window)
        found = self._joined.get(key)
        if found is not None:
            return found
        task = self._joining.get(key)
        if task is None:  # screens ask for a call all at once: join it once
            task = asyncio.create_task(self._join(*key))
            self._joining[key] = task
            task.add_done_callback(lambda _: self._joining.pop(key, None))
        return await asyncio.shield(task)

    async def _join(self, hall: str, number: str, window: str) -> Joined:
        config = self.configs[hall]
        planned = plan(config, number, window) if self.speech else ()
        # All asked at once: a call made during the pre-render gets its segments ahead of it.
        needed = list(dict.fromkeys(s for sentence in planned for s in sentence))
        found = dict(zip(needed, await asyncio.gather(*map(self._segment, needed)), strict=True))
        sentences: list[list[array[int]]] = []
        final = True
        for sentence in planned:
            spoken = [found[segment] for segment in sentence]
            if all(pcm is not None for pcm in spoken):
                sentences.append([pcm for pcm in spoken if pcm is not None])
            elif not self._lost_for_good(sentence):
                final = False
        # With nothing to say the chime is played anyway: a silent WAV would tell no one.
        ring = chime() if config.voice.chime or not sentences else None
        pcm, _ = join(sentences, config.voice.repeat, ring)
        joined = Joined(wav=encode(pcm), final=final)
        if final:
            self._joined.put((hall, number, window), joined)
        return joined

    def _lost_for_good(self, sentence: Iterable[Segment]) -> bool:
        """A language that will never be spoken here (no engine, no such voice, or a segment
        that failed and the pre-render is over: nothing renders it until a restart)."""
        if self._over or self._no_engine is not None:
            return True
        return any(s.voice in self._missing for s in sentence)

    async def _segment(self, segment: Segment) -> array[int] | None:
        """The prepared segment, rendered first if need be; None if it cannot be spoken."""
        ready = self._segments.get(segment)
        if ready is not None:
            return ready
        task = self._pending.get(segment)
        if task is None:
            task = asyncio.create_task(self._fetch(segment))
            self._pending[segment] = task
            task.add_done_callback(lambda _: self._pending.pop(segment, None))
        # Shielded: a request that goes away must not cancel a render others wait for.
        return await asyncio.shield(task)

    async def _fetch(self, segment: Segment) -> array[int] | None:
        pcm = self.cache.load(segment)
        if pcm is None:
            if not await self._worker() or segment.voice in self._missing:
                return None
            path = self.cache.path(segment)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                await self.renderer.render(segment, path)
            except (OSError, RenderError) as exc:
                self._failures += 1
                if self._failures == 1:  # the same cause fails every segment: say it once
                    log.warning(
                        "voice: %r (%s) did not render: %s (later failures: only counted)",
                        segment.text,
                        segment.voice,
                        exc,
                    )
                return None
            pcm = self.cache.load(segment)
            if pcm is None:
                return None
        prepared = prepare(pcm)
        self._segments[segment] = prepared
        return prepared

    async def _worker(self) -> bool:
        """Whether the speech worker runs, starting it on first need (and after it died)."""
        async with self._starting:
            if self.renderer.running:
                return True
            # After the pre-render, only a public request could ask: it must not start a process.
            if self._over or self._no_engine is not None or self._starts >= MAX_STARTS:
                return False
            self._starts += 1
            hello = await self.renderer.start()
            if hello.voices is None:
                self._no_engine = hello.error or "no voices"
                log.warning(
                    "voice: announcements are the chime alone: no speech engine (%s); "
                    "install espeak-ng (%s) and restart",
                    self._no_engine,
                    INSTALL,
                )
                return False
            if self._starts == 1:
                self._check_voices(set(hello.voices))
            return True

    def _check_voices(self, available: set[str]) -> None:
        places = [
            f"{language.voice!r} (hall {hall}, voice.languages[{i}])"
            for hall, config in self.configs.items()
            for i, language in enumerate(config.voice.languages)
            if language.voice not in available
        ]
        self._missing = {
            language.voice
            for config in self.configs.values()
            for language in config.voice.languages
            if language.voice not in available
        }
        if places:
            log.warning(
                "voice: espeak-ng has no voice %s; announcements leave those languages out (the "
                "chime alone if none is left): choose a voice `espeak-ng --voices` lists (e.g. "
                "sit/cmn-latn-pinyin, gmw/en), or install espeak-ng (%s)",
                "; ".join(places),
                INSTALL,
            )

    async def _warm(self) -> None:
        started = time.perf_counter()
        wanted = list(dict.fromkeys(s for c in self.configs.values() for s in segments(c)))
        results = [await self._segment(segment) for segment in wanted]
        async with self._starting:  # every segment any call can need is in memory now
            self._over = True
            await self.renderer.close()
        self.ready.set()
        spoken = sum(pcm is not None for pcm in results)
        log.info(
            "voice: %d of %d segments ready (%d rendered, %d failed, cache %s) in %.1f s",
            spoken,
            len(wanted),
            self.renderer.renders,
            self._failures,
            self.cache.directory,
            time.perf_counter() - started,
        )
