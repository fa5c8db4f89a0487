"""Announcements spoken by the real espeak-ng (through pyttsx3, in the worker process): the cache
files and their format, loudness, Chinese against English, joins without clicks, cache hits that
synthesise nothing, and the chime alone where a voice is missing or speech is off.

One module-wide run renders the demo hall's segments once (about a second); the tests read it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from displays.voice.cache import SegmentCache
from displays.voice.chime import chime
from displays.voice.joiner import CHIME_GAP, join, prepare
from displays.voice.plan import plan, segments
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


def test_a_cache_it_cannot_write_leaves_the_hall_the_chime_and_one_warning(
    default_config: HallConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")

    async def scenario() -> tuple[bytes, bool]:
        service = VoiceService([default_config], blocked / "voice")
        await service.start()
        joined = await service.announcement(default_config.hall.id, *CALL)
        await asyncio.wait_for(service.ready.wait(), 60)
        await service.stop()
        return joined.wav, joined.final

    with caplog.at_level(logging.INFO, logger="displays.voice"):
        wav, final = asyncio.run(scenario())
    assert wav == encode(chime())
    assert not final  # not kept: a later request tries again
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "did not render" in warnings[0], warnings
    assert any("0 of 72 segments ready" in r.getMessage() for r in caplog.records)
