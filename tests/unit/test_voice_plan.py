"""What a call says, as segments: numbers spelled, the template cut around its fields, a finite
set of segments per hall that covers every call (pure, no audio)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from displays.voice.plan import Segment, is_number, plan, segments, sentence
from hall.config import Announcement, HallConfig, Voice

ZH = Announcement(
    lang="zh-CN", voice="sit/cmn-latn-pinyin", template="请{number}号到{window}号窗口办理"
)
EN = Announcement(
    lang="en", voice="gmw/en", template="Number {number}, please go to window {window}"
)


def texts(segs: tuple[Segment, ...]) -> list[str]:
    return [s.text for s in segs]


def test_a_number_is_spelled_one_character_at_a_time_with_chinese_digits_in_chinese() -> None:
    assert texts(sentence(ZH, "A012", "5")) == [
        "请",
        "A",
        "零",
        "一",
        "二",
        "号到",
        "5",
        "号窗口办理",
    ]
    assert texts(sentence(EN, "A012", "12")) == [
        "Number",
        "A",
        "0",
        "1",
        "2",
        ", please go to window",
        "12",
    ]
    assert {s.voice for s in sentence(ZH, "B907", "1")} == {"sit/cmn-latn-pinyin"}
    assert {s.rate for s in sentence(EN, "B907", "1")} == {150}


def test_fields_in_any_order_and_parts_that_say_nothing_are_left_out() -> None:
    spoken = Announcement(lang="en", voice="gmw/en", template="{window}: {number}!", rate=120)
    assert texts(sentence(spoken, "AB05", "Desk 3")) == ["Desk 3", "A", "B", "0", "5"]


def test_the_window_says_its_spoken_label_or_its_id(default_config: HallConfig) -> None:
    labelled = msgspec.structs.replace(default_config.windows[0], spoken="十二")
    config = msgspec.structs.replace(
        default_config, windows=(labelled, *default_config.windows[1:])
    )
    zh, en = plan(config, "A001", labelled.id)
    assert "十二" in texts(zh) and "十二" in texts(en)
    second = default_config.windows[1]
    assert second.spoken is None
    assert second.id in texts(plan(config, "A001", second.id)[0])


def test_one_sentence_per_configured_language_in_order(default_config: HallConfig) -> None:
    config = msgspec.structs.replace(default_config, voice=Voice(languages=(EN, ZH, EN)))
    sentences = plan(config, "A012", "5")
    assert [s[0].voice for s in sentences] == ["gmw/en", "sit/cmn-latn-pinyin", "gmw/en"]


def test_numbers_of_the_hall_only(default_config: HallConfig) -> None:
    digits = default_config.hall.number_digits
    assert digits == 3
    prefixes = [c.prefix for c in default_config.categories]
    for prefix in prefixes:
        assert is_number(default_config, f"{prefix}007")
    assert "Z" not in prefixes and "I" not in prefixes
    for bad in ["Z012", "I012", "A01", "A0123", "a012", "A01²", "A０12", "A-12", "", "012", "A"]:
        assert not is_number(default_config, bad), bad


@given(data=st.data())
def test_every_call_needs_only_the_halls_finite_segment_set(
    default_config: HallConfig, data: st.DataObject
) -> None:
    """What a request can make the server say is within what start-up renders."""
    category = data.draw(st.sampled_from(default_config.categories))
    digits = data.draw(st.text("0123456789", min_size=3, max_size=3))
    window = data.draw(st.sampled_from(default_config.windows))
    number = category.prefix + digits
    assert is_number(default_config, number)
    known = set(segments(default_config))
    for spoken in plan(default_config, number, window.id):
        assert spoken and set(spoken) <= known


def test_the_segment_set_is_small_and_has_no_duplicates(default_config: HallConfig) -> None:
    found = segments(default_config)
    assert len(found) == len(set(found))
    letters = {ch for c in default_config.categories for ch in c.prefix}
    assert len(letters) == 12 and [w.id for w in default_config.windows] == [
        str(n) for n in range(1, 17)
    ]
    # zh: 请 号到 号窗口办理, 12 letters, 零..九, windows "1".."16": 41. en: Number and ", please
    # go to window", 12 letters, and "0".."16" (window "5" and digit 5 are one text): 31.
    assert len(found) == 41 + 31
