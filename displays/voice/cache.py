"""Rendered segments on disk: ``<dir>/<sha256>.wav``, one file per (text, voice, rate).

The key also holds :data:`FORMAT`, the version of how a segment is made (the engine's volume, the
WAV format): bump it when that changes and old files are simply never read again. A file that is
not a WAV of our format (cut short by a crash, say) counts as missing and is rendered again.
"""

from __future__ import annotations

import hashlib
from array import array
from pathlib import Path

import msgspec

from displays.voice.plan import Segment
from displays.voice.wav import WavError, decode

FORMAT = 1


def key(segment: Segment) -> str:
    identity = msgspec.json.encode([FORMAT, segment.text, segment.voice, segment.rate])
    return hashlib.sha256(identity).hexdigest()


class SegmentCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, segment: Segment) -> Path:
        return self.directory / f"{key(segment)}.wav"

    def load(self, segment: Segment) -> array[int] | None:
        """The segment's samples, or None when it is not (validly) on disk."""
        try:
            pcm = decode(self.path(segment).read_bytes())
        except (OSError, WavError):
            return None
        return pcm or None
