"""The chime and the joiner on synthetic samples (pure): trimmed, faded to zero, joined without
clicks, and a bounded cache of joined WAVs."""

from __future__ import annotations

import math
from array import array
from itertools import pairwise

from displays.voice.chime import DING, DONG, PEAK, chime
from displays.voice.joiner import (
    SENTENCE_GAP,
    WORD_GAP,
    Joined,
    JoinedCache,
    join,
    prepare,
)
from displays.voice.wav import FULL_SCALE, RATE, decode, encode, samples, silence
from tests.support.voice import CLICK, jumps_at, rms


def tone(seconds: float, frequency: float = 440.0, amplitude: int = 20_000) -> array[int]:
    return array(
        "h",
        (
            round(amplitude * math.sin(2 * math.pi * frequency * n / RATE))
            for n in range(samples(seconds))
        ),
    )


def square(seconds: float, amplitude: int = 20_000) -> array[int]:
    """The worst case for a join: full amplitude from its first sample to its last."""
    return array("h", [amplitude, -amplitude] * (samples(seconds) // 2))


def crossings(pcm: array[int]) -> int:
    return sum(1 for a, b in pairwise(pcm) if (a < 0) != (b < 0))


def test_the_chime_is_two_falling_tones_that_start_and_end_at_zero() -> None:
    ring = chime()
    assert 1.0 < len(ring) / RATE < 2.0
    assert ring[0] == 0 and ring[-1] == 0
    assert max(map(abs, ring)) == round(PEAK * FULL_SCALE)
    # The first tone alone, then (after the second tone's start) mostly the lower one: the
    # zero-crossing rate gives the pitch of each stretch (two per period).
    first = ring[samples(0.05) : samples(0.35)]
    last = ring[samples(1.0) : samples(1.25)]
    assert abs(crossings(first) / (2 * 0.30) - DING) < 15
    assert abs(crossings(last) / (2 * 0.25) - DONG) < 15
    assert max(jumps_at(ring, range(1, len(ring)))) < 2 * math.pi * DING / RATE * FULL_SCALE


def test_a_segment_is_trimmed_to_its_sound_and_faded_to_zero_at_both_ends() -> None:
    padded = silence(0.3) + square(0.2) + silence(0.5)
    out = prepare(padded)
    assert out[0] == 0 and out[-1] == 0
    assert samples(0.2) < len(out) < samples(0.2 + 0.1)  # the margins, not the padding
    assert rms(out[len(out) // 4 : -len(out) // 4]) > 19_000  # the middle untouched
    assert prepare(silence(0.5)) == array("h")


def test_joins_have_no_clicks_even_between_loud_edges() -> None:
    parts = [prepare(square(0.1)), prepare(tone(0.15)), prepare(square(0.2))]
    pcm, joins = join([parts, parts[:2]], repeat=2, chime=chime())
    # chime, gap; then 3 parts with 2 gaps, gap, 2 parts with 1 gap; then again after a gap
    pieces = 2 + (5 + 1 + 3) + (1 + 5 + 1 + 3)
    assert len(joins) == pieces - 1
    assert max(jumps_at(pcm, joins)) <= CLICK
    # The same pieces joined as they came (no trim, no fade) click: the bound can fail.
    raw = [square(0.1), tone(0.15), square(0.2)]
    naive, naive_joins = join([raw])
    assert max(jumps_at(naive, naive_joins)) > CLICK
    expected = (
        len(chime())
        + samples(0.3)
        + 2 * (sum(map(len, parts)) + 2 * samples(WORD_GAP))
        + 2 * (len(parts[0]) + len(parts[1]) + samples(WORD_GAP))
        + 3 * samples(SENTENCE_GAP)
    )
    assert len(pcm) == expected


def test_the_wav_round_trip_keeps_every_sample() -> None:
    pcm = tone(0.1)
    assert decode(encode(pcm)) == pcm


def test_the_joined_cache_drops_the_least_recently_used_past_its_size() -> None:
    def wav(n: int) -> Joined:
        return Joined(wav=bytes(n), final=True)

    cache = JoinedCache(max_bytes=1000)
    cache.put("a", wav(400))
    cache.put("b", wav(400))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", wav(400))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.size == 800 and len(cache) == 2
    cache.put("huge", wav(1001))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2
    cache.put("a", wav(100))  # replacing counts the new size only
    assert cache.size == 500
