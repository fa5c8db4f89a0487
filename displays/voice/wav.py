"""The one audio format of announcements: mono, 16-bit signed PCM at 22,050 Hz, which is what
espeak-ng writes through pyttsx3 (checked on Debian 12 with espeak-ng 1.51). Segments, the chime
and the joined announcement all share it, so joining is copying samples, never resampling.
"""

from __future__ import annotations

import io
import sys
import wave
from array import array

RATE = 22_050
CHANNELS = 1
WIDTH = 2  # bytes per sample
FULL_SCALE = 32_767


class WavError(ValueError):
    """Bytes that are not a WAV file of our format."""


def samples(seconds: float) -> int:
    return round(seconds * RATE)


def silence(seconds: float) -> array[int]:
    return array("h", bytes(WIDTH * samples(seconds)))


def decode(data: bytes) -> array[int]:
    """The samples of a WAV file of our format; anything else raises :class:`WavError`."""
    try:
        with wave.open(io.BytesIO(data)) as reader:
            found = (reader.getnchannels(), reader.getsampwidth(), reader.getframerate())
            if found != (CHANNELS, WIDTH, RATE):
                raise WavError(f"channels, width, rate {found}, not {(CHANNELS, WIDTH, RATE)}")
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(str(exc)) from exc
    pcm = array("h", frames)
    if sys.byteorder == "big":  # WAV samples are little-endian
        pcm.byteswap()
    return pcm


def encode(pcm: array[int]) -> bytes:
    if sys.byteorder == "big":
        pcm = array("h", pcm)
        pcm.byteswap()
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(CHANNELS)
        writer.setsampwidth(WIDTH)
        writer.setframerate(RATE)
        writer.writeframes(pcm.tobytes())
    return out.getvalue()
