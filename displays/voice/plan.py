"""What a call says, as segments of speech (pure: no I/O).

A call is never synthesised as a whole: each language's template is cut around ``{number}`` and
``{window}``, the number is spelled one character at a time (a letter or a digit per segment), and
the window's spoken label is one segment. So a hall has a small, finite set of segments (its fixed
phrases, the letters of its prefixes, ten digits and its windows' labels, per language), rendered
once and joined for every call.

Numbers are spelled because a voice reads "A012" as a quantity (espeak-ng's Mandarin voice says
"A 零 十二"); a lone digit is read as the digit. For Chinese the digits are written as characters
(零一二...): espeak-ng's ``sit/cmn-latn-pinyin`` says a lone "0" and "零" alike (líng), and the
characters say so to anyone reading the cache, whatever voice a hall configures.
"""

from __future__ import annotations

import re

import msgspec

from hall.config import Announcement, HallConfig

CHINESE_DIGITS = "零一二三四五六七八九"
_FIELD = re.compile(r"(\{number\}|\{window\})")


class Segment(msgspec.Struct, frozen=True):
    """One piece of speech: rendered once per (text, voice, rate), cached, joined per call."""

    text: str
    voice: str
    rate: int


def is_number(config: HallConfig, number: str) -> bool:
    """A ticket number this hall can issue: a category prefix and exactly ``number_digits``
    ASCII digits (``str.isdigit`` also accepts '²' and other scripts' digits)."""
    digits = config.hall.number_digits
    return any(
        number.startswith(c.prefix)
        and re.fullmatch(f"[0-9]{{{digits}}}", number[len(c.prefix) :]) is not None
        for c in config.categories
    )


def spoken_window(config: HallConfig, window: str) -> str:
    found = config.window(window)
    return found.spoken if found is not None and found.spoken else window


def sentence(language: Announcement, number: str, window_label: str) -> tuple[Segment, ...]:
    """One language's sentence for a call, in the order it is spoken."""
    out: list[Segment] = []
    for part in _FIELD.split(language.template):
        if part == "{number}":
            texts = [_spell(ch, language.lang) for ch in number]
        elif part == "{window}":
            texts = [window_label]
        else:
            texts = [part.strip()]
        out.extend(_segment(language, text) for text in texts if _speakable(text))
    return tuple(out)


def plan(config: HallConfig, number: str, window: str) -> tuple[tuple[Segment, ...], ...]:
    """Each configured language's sentence for calling ``number`` to ``window``, in order
    (once: the joiner repeats them)."""
    label = spoken_window(config, window)
    return tuple(sentence(language, number, label) for language in config.voice.languages)


def segments(config: HallConfig) -> tuple[Segment, ...]:
    """Every segment any call of this hall can need, each once, in a stable order: what start-up
    renders ahead, and the only texts a request can ever cause to be spoken."""
    letters = sorted({ch for c in config.categories for ch in c.prefix})
    labels = [spoken_window(config, w.id) for w in config.windows]
    found: dict[Segment, None] = {}
    for language in config.voice.languages:
        for part in _FIELD.split(language.template):
            if part not in ("{number}", "{window}") and _speakable(part.strip()):
                found[_segment(language, part.strip())] = None
        for text in [*letters, *(_spell(d, language.lang) for d in "0123456789"), *labels]:
            found[_segment(language, text)] = None
    return tuple(found)


def _segment(language: Announcement, text: str) -> Segment:
    return Segment(text=text, voice=language.voice, rate=language.rate)


def _spell(char: str, lang: str) -> str:
    if char.isascii() and char.isdigit() and lang.lower().startswith(("zh", "cmn")):
        return CHINESE_DIGITS[int(char)]
    return char


def _speakable(text: str) -> bool:
    """Punctuation or spaces alone (a template with "{number}, {window}") say nothing."""
    return any(ch.isalnum() for ch in text)
