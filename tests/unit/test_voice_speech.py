"""Announcements spoken by the real espeak-ng (through pyttsx3, in the worker process): the cache
files and their format, loudness, Chinese against English, joins without clicks, cache hits that
synthesise nothing, and the chime alone where a voice is missing or speech is off.

One module-wide run renders the demo hall's segments once (about a second); the tests read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import subprocess
import sys
import time
import wave
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from displays.voice.cache import SegmentCache
from displays.voice.chime import chime
from displays.voice.joiner import CHIME_GAP, join, prepare
from displays.voice.plan import Segment, plan, segments
from displays.voice.renderer import Renderer, RenderError
from displays.voice.service import VoiceService
from displays.voice.wav import CHANNELS, RATE, WIDTH, decode, encode, samples
from hall.config import HallConfig, Voice
from tests.support.voice import CLICK, jumps_at, needs_espeak, rms

pytestmark = needs_espeak

CALL = ("A012", "5")
LOUD = 1000  # RMS of speech at volume 0.8 is several thousand; silence is 0


@dataclass
class Run:
    cache_dir: Path
    configs: dict[str, HallConfig]
    wavs: dict[str, bytes]  # hall id -> the announcement of CALL
    renders: int
    again_renders: int
    again_wav: bytes
    again_worker_started: bool


def variant(config: HallConfig, hall: str, **changes: object) -> HallConfig:
    info = msgspec.structs.replace(config.hall, id=hall)
    return msgspec.structs.replace(config, hall=info, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run(default_config: HallConfig, tmp_path_factory: pytest.TempPathFactory) -> Run:
    zh, en = default_config.voice.languages
    configs = {
        "both": variant(default_config, "both"),
        "zh": variant(default_config, "zh", voice=Voice(languages=(zh,))),
        "en": variant(default_config, "en", voice=Voice(languages=(en,))),
        "twice": variant(default_config, "twice", voice=Voice(repeat=2)),
    }
    cache_dir = tmp_path_factory.mktemp("voice")

    async def scenario() -> Run:
        first = VoiceService(configs.values(), cache_dir)
        await first.start()
        wavs = {hall: (await first.announcement(hall, *CALL)).wav for hall in configs}
        await asyncio.wait_for(first.ready.wait(), 60)
        await first.stop()
        # A second server on the same cache: every segment is a hit.
        again = VoiceService([configs["both"]], cache_dir)
        await again.start()
        await asyncio.wait_for(again.ready.wait(), 60)
        again_wav = (await again.announcement("both", *CALL)).wav
        started = again.renderer.running or again._starts > 0
        await again.stop()
        return Run(
            cache_dir,
            configs,
            wavs,
            first.renderer.renders,
            again.renderer.renders,
            again_wav,
            started,
        )

    return asyncio.run(scenario())


def speech(wav: bytes) -> array[int]:
    """The samples after the chime and its gap."""
    return decode(wav)[len(chime()) + samples(CHIME_GAP) :]


def test_each_segment_is_rendered_once_into_a_wav_file_of_the_format(run: Run) -> None:
    wanted = segments(run.configs["both"])
    files = sorted(run.cache_dir.glob("*.wav"))
    assert run.renders == len(wanted) == len(files)
    assert not list(run.cache_dir.glob(".*"))  # no partial file left behind
    for segment in wanted:
        path = SegmentCache(run.cache_dir).path(segment)
        with wave.open(str(path)) as reader:  # read by the standard library, not by our code
            assert (reader.getnchannels(), reader.getsampwidth()) == (CHANNELS, WIDTH)
            assert reader.getframerate() == RATE == 22_050
            pcm = array("h", reader.readframes(reader.getnframes()))
        assert rms(pcm) > LOUD / 4, segment  # a lone digit is short, its padding long


def test_an_announcement_is_a_wav_of_the_format_and_not_silent(run: Run) -> None:
    with wave.open(io.BytesIO(run.wavs["both"])) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (
            1,
            2,
            22_050,
        )
        seconds = reader.getnframes() / RATE
    assert 5 < seconds < 20, seconds
    assert rms(speech(run.wavs["both"])) > LOUD


def test_chinese_and_english_differ_and_both_make_the_whole(run: Run) -> None:
    zh, en, both = speech(run.wavs["zh"]), speech(run.wavs["en"]), speech(run.wavs["both"])
    assert zh != en and rms(zh) > LOUD and rms(en) > LOUD
    assert len(both) > len(zh) + len(en)  # and the gap between them
    assert both[: len(zh)] == zh  # Chinese first, as configured
    # Read twice: longer by one more of each sentence and the gaps.
    assert len(speech(run.wavs["twice"])) > 2 * len(both)


def test_the_joins_of_a_real_announcement_do_not_click(run: Run) -> None:
    config = run.configs["both"]
    cache = SegmentCache(run.cache_dir)
    sentences = []
    for sentence in plan(config, *CALL):
        loaded = [cache.load(s) for s in sentence]
        sentences.append([prepare(pcm) for pcm in loaded if pcm is not None])
    pcm, joins = join(sentences, config.voice.repeat, chime())
    assert encode(pcm) == run.wavs["both"]  # exactly what was served
    assert len(joins) > 20
    assert max(jumps_at(pcm, joins)) <= CLICK
    # Cut at the first and last loud sample without a fade, the same segments do click.
    cut = []
    for sentence in sentences:
        loud = [n for n, v in enumerate(sentence[0]) if abs(v) > 1000]
        cut.append([sentence[0][loud[0] : loud[-1]], *sentence[1:]])
    naive, naive_joins = join(cut)
    assert max(jumps_at(naive, naive_joins)) > CLICK


def test_a_server_whose_cache_has_every_segment_synthesises_nothing(run: Run) -> None:
    assert run.again_renders == 0
    assert not run.again_worker_started  # not even a worker process
    assert run.again_wav == run.wavs["both"]


def test_a_missing_voice_or_speech_off_gives_the_chime_alone(
    default_config: HallConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Voice(
        languages=tuple(
            msgspec.structs.replace(language, voice=f"nowhere/{language.lang}")
            for language in default_config.voice.languages
        )
    )
    mute = variant(default_config, "mute", voice=broken)
    alone = encode(chime())

    async def scenario() -> tuple[bytes, bytes, int]:
        service = VoiceService([mute], tmp_path / "voice")
        await service.start()
        served = (await service.announcement("mute", *CALL)).wav
        await asyncio.wait_for(service.ready.wait(), 60)
        await service.stop()
        off = VoiceService([default_config], tmp_path / "off", speech=False)
        await off.start()
        silent = (await off.announcement(default_config.hall.id, *CALL)).wav
        await off.stop()
        return served, silent, service.renderer.renders + off.renderer.renders

    with caplog.at_level(logging.INFO, logger="displays.voice"):
        served, off, renders = asyncio.run(scenario())
    assert served == alone and off == alone and renders == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "nowhere/zh-CN" in warnings[0] and "nowhere/en" in warnings[0]
    assert "apt-get install espeak-ng" in warnings[0]
    assert not list((tmp_path / "voice").glob("*.wav"))


@contextlib.contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """``directory`` made immutable (chattr +i) while inside: nothing can be created in it, not
    even by root (whom a mode of 0o500 does not stop, and the tests run as root)."""
    if shutil.which("chattr") is None:
        pytest.skip("SKIPPED: no chattr on this machine (apt-get install e2fsprogs)")
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"SKIPPED: chattr +i does not work here ({made.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


@pytest.mark.parametrize("kind", ["parent-is-a-file", "immutable"])
def test_a_cache_it_cannot_write_is_replaced_by_a_temporary_one_said_in_one_line(
    default_config: HallConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    if kind == "parent-is-a-file":
        blocked = tmp_path / "a-file"
        blocked.write_bytes(b"")
        directory = blocked / "voice"
        cause = "Not a directory"
    else:
        directory = tmp_path / "voice"
        directory.mkdir()
        cause = "Operation not permitted"

    async def scenario() -> tuple[bytes, bool, float, Path]:
        service = VoiceService([default_config], directory)
        began = time.perf_counter()
        await service.start()
        await asyncio.wait_for(service.ready.wait(), 30)
        took = time.perf_counter() - began
        joined = await service.announcement(default_config.hall.id, *CALL)
        private = service.cache.directory
        assert private != directory and len(list(private.glob("*.wav"))) == 72
        await service.stop()
        return joined.wav, joined.final, took, private

    with caplog.at_level(logging.INFO, logger="displays.voice"):
        if kind == "immutable":
            with immutable(directory):
                wav, final, took, private = asyncio.run(scenario())
        else:
            wav, final, took, private = asyncio.run(scenario())
    assert rms(speech(wav)) > LOUD and final  # the hall still speaks
    assert took < 15  # rendered (~1 s here); not 72 segments each waiting for a timeout
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert str(directory) in warnings[0] and cause in warnings[0], warnings
    assert not private.exists()  # removed at stop
    assert any("72 of 72 segments ready" in r.getMessage() for r in caplog.records)


def test_a_render_that_cannot_write_fails_at_once_and_no_request_restarts_the_worker(
    default_config: HallConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache could be written at start (the check passed) and no longer can be when the
    segments are rendered: each fails at once with its cause, not after the worker's timeout;
    pyttsx3's tracebacks stay out of the server's stderr; and once the pre-render is over, a
    call does not start a worker again (nothing can be asked of it after start-up)."""
    directory = tmp_path / "voice"
    directory.mkdir()

    async def scenario() -> tuple[bytes, bool, float, int | None, int]:
        service = VoiceService([default_config], directory)
        began = time.perf_counter()
        await service.start()  # checks the directory; the pre-render has not begun yet
        with immutable(directory):
            await asyncio.wait_for(service.ready.wait(), 30)
            took = time.perf_counter() - began
            joined = await service.announcement(default_config.hall.id, "B321", "7")
            pid = service.renderer.pid
        await service.stop()
        return joined.wav, joined.final, took, pid, service._starts

    with caplog.at_level(logging.INFO, logger="displays.voice"):
        wav, final, took, pid, starts = asyncio.run(scenario())
    assert took < 10  # 72 segments failing, each at once
    assert wav == encode(chime()) and final  # nothing will render it before a restart
    assert pid is None and starts == 1  # the call started no worker
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "did not render" in warnings[0], warnings
    assert "PermissionError" in warnings[0] and str(directory) in warnings[0], warnings
    assert any("0 of 72 segments ready" in r.getMessage() for r in caplog.records)


def test_the_worker_answers_a_path_it_cannot_write_at_once_and_keeps_stderr_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")

    async def scenario() -> tuple[str, float, bool]:
        renderer = Renderer()
        assert (await renderer.start()).voices
        began = time.perf_counter()
        with pytest.raises(RenderError) as failed:
            await renderer.render(Segment("五", "sit/cmn-latn-pinyin", 150), blocked / "x.wav")
        took = time.perf_counter() - began
        # The worker is still good for the next segment.
        await renderer.render(Segment("五", "sit/cmn-latn-pinyin", 150), tmp_path / "x.wav")
        running = renderer.running
        await renderer.close()
        return str(failed.value), took, running

    message, took, running = asyncio.run(scenario())
    assert "NotADirectoryError" in message and took < 2 and running
    assert (tmp_path / "x.wav").stat().st_size > 1000
    assert "Traceback" not in capfd.readouterr().err


def test_what_the_worker_prints_on_stderr_becomes_one_line_of_its_answer() -> None:
    """pyttsx3's threads print tracebacks on the worker's stderr, which is the server's: the
    worker keeps them, and a failure's answer carries the last line."""
    script = (
        "import sys\n"
        "from displays.voice.worker import _Stderr\n"
        "stderr = _Stderr()\n"
        "print('Traceback (most recent call last):', file=sys.stderr)\n"
        "print('RuntimeError: Error saving WAV file: disk full', file=sys.stderr)\n"
        "print(stderr.explain(TimeoutError('no finished-utterance within 10 s')))\n"
        "print(stderr.explain(ValueError('later')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        "TimeoutError: no finished-utterance within 10 s "
        "(RuntimeError: Error saving WAV file: disk full)",
        "ValueError: later",  # what was printed before is not told twice
    ]
