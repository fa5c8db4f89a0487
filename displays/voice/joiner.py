"""Joining segments into one announcement without clicks (pure: samples in, samples out).

espeak-ng pads each utterance with silence, so a segment is first trimmed to its sound (with a
short margin, so a soft consonant is not cut), then given a raised-cosine fade in and out down to
exact zero. Joined with gaps of silence, every join then goes from zero to zero: no sample jump at
a join, whatever the segments are. Gaps are short inside a sentence (the digits of a number, the
phrases around them) and longer between languages and repeats.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence

import msgspec

from displays.voice.wav import samples, silence

THRESHOLD = 300  # |sample| above this is sound (about -40 dBFS); espeak's padding is near zero
LEAD = 0.02  # s of margin kept before the first sound
TAIL = 0.04  # s kept after the last (a syllable's decay is quieter than its start)
FADE_IN = 0.01  # s
FADE_OUT = 0.03  # s
WORD_GAP = 0.06  # s between segments of one sentence
SENTENCE_GAP = 0.5  # s between languages and between repeats
CHIME_GAP = 0.3  # s after the chime


def prepare(pcm: array[int]) -> array[int]:
    """A segment trimmed to its sound and faded to zero at both ends (empty if silent)."""
    loud = [n for n in (_first(pcm), _last(pcm)) if n is not None]
    if not loud:
        return array("h")
    start = max(0, loud[0] - samples(LEAD))
    end = min(len(pcm), loud[1] + 1 + samples(TAIL))
    out = pcm[start:end]
    _fade(out, samples(FADE_IN), rising=True)
    _fade(out, samples(FADE_OUT), rising=False)
    return out


def join(
    sentences: Sequence[Sequence[array[int]]],
    repeat: int = 1,
    chime: array[int] | None = None,
) -> tuple[array[int], list[int]]:
    """The chime (if any), then each sentence (its prepared segments) in order, ``repeat``
    times. Also returns the sample offsets where two pieces meet (for tests of the joins)."""
    pieces: list[array[int]] = [] if chime is None else [chime]
    for turn in range(repeat):
        for index, sentence in enumerate(sentences):
            if pieces:
                pieces.append(silence(SENTENCE_GAP if turn or index else CHIME_GAP))
            for position, segment in enumerate(sentence):
                if position:
                    pieces.append(silence(WORD_GAP))
                pieces.append(segment)
    out = array("h")
    joins = []
    for piece in pieces:
        if out:
            joins.append(len(out))
        out.extend(piece)
    return out, joins


class Joined(msgspec.Struct, frozen=True):
    """A call's announcement as served. ``final``: the same call gets the same bytes for as long
    as the server runs (false when a segment failed to render and may work on a retry)."""

    wav: bytes
    final: bool


class JoinedCache:
    """Joined announcements by key, least recently used first out, bounded by the total size of
    their WAVs: a busy hall calls the same few hundred numbers all day, and a recall replays."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[object, Joined] = OrderedDict()

    def get(self, key: object) -> Joined | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: object, value: Joined) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old.wav)
        if len(value.wav) > self.max_bytes:
            return
        self._items[key] = value
        self.size += len(value.wav)
        while self.size > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped.wav)

    def __len__(self) -> int:
        return len(self._items)


def _first(pcm: array[int]) -> int | None:
    return next((n for n, v in enumerate(pcm) if abs(v) > THRESHOLD), None)


def _last(pcm: array[int]) -> int | None:
    return next(
        (n for n in range(len(pcm) - 1, -1, -1) if abs(pcm[n]) > THRESHOLD),
        None,
    )


def _fade(pcm: array[int], length: int, rising: bool) -> None:
    """Raised-cosine gain from 0 (at the very edge sample) to 1, in place."""
    length = min(length, len(pcm))
    for k in range(length):
        gain = 0.5 - 0.5 * math.cos(math.pi * k / length)
        n = k if rising else len(pcm) - 1 - k
        pcm[n] = round(pcm[n] * gain)
