"""The chime before each announcement: a two-tone "ding-dong" (E5 then C5, a falling major third,
the interval of a door bell), made here so that it needs no file and no speech engine.

Each tone is a sine with a quieter octave above it (a softer, bell-like colour than a bare sine),
a raised-cosine attack (an instant start clicks) and an exponential decay; the second tone starts
while the first rings. The whole ends with a fade to exact zero, so it joins without a click.
"""

from __future__ import annotations

import math
from array import array
from functools import cache

from displays.voice.wav import FULL_SCALE, RATE, samples

DING = 659.26  # E5, Hz
DONG = 523.25  # C5
OCTAVE = 0.25  # the octave's amplitude relative to the fundamental
ATTACK = 0.012  # s
DECAY = 0.32  # s, time constant of the ring
TONE = 0.9  # s, how long each tone sounds
DONG_AT = 0.42  # s, when the second tone starts
END_FADE = 0.06  # s
PEAK = 0.42  # of full scale: a chime louder than the voice (volume 0.8) startles


def _tone(frequency: float, length: int) -> list[float]:
    attack = samples(ATTACK)
    out = []
    for n in range(length):
        t = n / RATE
        envelope = math.exp(-t / DECAY)
        if n < attack:
            envelope *= 0.5 - 0.5 * math.cos(math.pi * n / attack)
        phase = 2 * math.pi * frequency * t
        out.append(envelope * (math.sin(phase) + OCTAVE * math.sin(2 * phase)))
    return out


@cache
def chime() -> array[int]:
    """The chime's samples (about 1.3 s); computed once per process."""
    length = samples(TONE)
    start = samples(DONG_AT)
    mix = [0.0] * (start + length)
    for n, value in enumerate(_tone(DING, length)):
        mix[n] += value
    for n, value in enumerate(_tone(DONG, length)):
        mix[start + n] += value
    fade = samples(END_FADE)
    for k in range(fade):  # raised cosine down to exact zero at the last sample
        mix[-fade + k] *= 0.5 + 0.5 * math.cos(math.pi * (k + 1) / fade)
    scale = PEAK * FULL_SCALE / max(abs(v) for v in mix)
    return array("h", (round(v * scale) for v in mix))
