"""Print jobs always fit one frame of the device link, whatever the hall file's names say."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.jobs import fit
from devices.printing.ticket import PrintTicket
from devices.protocol import MAX_FRAME, Print, decode, encode

# Any text at all: CJK (3 bytes each), emoji (4), control characters (6 bytes as JSON escapes).
texts = st.text(
    alphabet=st.sampled_from(["很", "A", "\x00", "\n", '"', "\\", "😀", "é", " "]), max_size=3000
)


def job(**texts: str) -> Print:
    fields = dict.fromkeys(
        ("hall_name", "hall_name_en", "category_name", "category_name_en", "notice", "notice_en"),
        "",
    )
    return Print(
        id="20261130-A001",
        ticket=PrintTicket(
            **{**fields, **texts},
            number="A001",
            priority_name=texts.get("priority_name"),
            ahead=3,
            wait_minutes=12.5,
            issued_at="2026-11-30 09:12",
            url="http://192.168.1.10:8000/phone/demo-county/20261130-A001#s=" + "s" * 43,
        ),
    )


@settings(max_examples=60, deadline=None)
@given(hall=texts, hall_en=texts, category=texts, category_en=texts, notice=texts, notice_en=texts)
def test_any_job_is_cut_to_fit_a_frame_and_reads_back(
    hall: str, hall_en: str, category: str, category_en: str, notice: str, notice_en: str
) -> None:
    original = job(
        hall_name=hall,
        hall_name_en=hall_en,
        category_name=category,
        category_name_en=category_en,
        notice=notice,
        notice_en=notice_en,
    )
    fitted = fit(original)
    frame = encode(fitted)
    assert len(frame.encode()) <= MAX_FRAME
    assert decode(frame) == fitted  # an agent reads it whole
    ticket, before = fitted.ticket, original.ticket
    assert (ticket.number, ticket.url, ticket.ahead) == (before.number, before.url, before.ahead)
    if len(encode(original).encode()) <= MAX_FRAME:
        assert fitted == original  # nothing cut that fitted
    for name in ("hall_name", "notice", "notice_en", "category_name_en"):
        value, was = getattr(ticket, name), getattr(before, name)
        assert value == was or was.startswith(value.removesuffix("…"))  # cut, never changed


def test_the_longest_text_is_cut_first() -> None:
    fitted = fit(job(hall_name="示范县政务服务中心", notice="请" * 2000))
    assert fitted.ticket.hall_name == "示范县政务服务中心"
    assert fitted.ticket.notice.endswith("…") and len(encode(fitted).encode()) <= MAX_FRAME
