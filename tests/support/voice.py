"""Helpers of the voice tests: loudness, jumps at joins, and the skip where espeak-ng is absent."""

from __future__ import annotations

import ctypes.util
import math
from array import array
from collections.abc import Iterable

import pytest

# A click is a step between two samples; at a join of silences and fades none should exceed
# this (about 1 % of full scale: inaudible), where an unfaded cut in speech steps by thousands.
CLICK = 300

needs_espeak = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None,
    reason="SKIPPED: no libespeak-ng on this machine (apt-get install espeak-ng)",
)


def rms(pcm: array[int]) -> float:
    return math.sqrt(sum(v * v for v in pcm) / len(pcm)) if pcm else 0.0


def jumps_at(pcm: array[int], positions: Iterable[int]) -> list[int]:
    """|pcm[n] - pcm[n-1]| at each position n (a join: the first sample of the next piece)."""
    return [abs(pcm[n] - pcm[n - 1]) for n in positions]
