"""The ticket's ESC/POS bytes, made on escpos's Dummy printer and read back as a printer would."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import pytest

from devices.printing.ticket import PrintTicket, ticket_bytes, wrap
from tests.support.fake_printer import printed_lines, qr_codes, split_tickets, ticket_number

COLUMNS = {58: 32, 80: 48}
URL = "https://hall.example.gov.cn/visit/demo-county#20261130-A012.s3cr3t-Zx9"


def a_ticket(**changes: object) -> PrintTicket:
    ticket = PrintTicket(
        hall_name="示范县政务服务中心",
        hall_name_en="Demo County Government Service Center",
        number="A012",
        category_name="社保业务",
        category_name_en="Social insurance",
        priority_name="绿色通道",
        ahead=7,
        wait_minutes=18.4,
        issued_at="2026-11-30 09:12",
        url=URL,
        notice="请留意叫号，过号请重新取号。",
        notice_en="Please listen for your number; a missed number needs a new ticket.",
    )
    return msgspec.structs.replace(ticket, **changes)


def chinese_segments(data: bytes) -> list[bytes]:
    """The bytes between each FS & and the FS . after it."""
    return [part.partition(b"\x1c.")[0] for part in data.split(b"\x1c&")[1:]]


@pytest.mark.parametrize("paper", [58, 80])
def test_a_ticket_has_its_number_chinese_in_chinese_mode_a_qr_code_and_a_cut(paper: int) -> None:
    data = ticket_bytes(a_ticket(), paper)

    assert data.startswith(b"\x1b@")  # reset: nothing left over from the ticket before
    assert data.endswith(b"\x1dV\x00")  # full cut, last
    assert split_tickets(data) == [data]
    assert ticket_number(data) == "A012"

    chinese = [segment.decode("gb18030") for segment in chinese_segments(data)]
    assert "示范县政务服务中心" in chinese
    assert "社保业务" in chinese
    assert "【绿色通道】" in chinese
    assert "请留意叫号，过号请重新取号。" in chinese  # full-width punctuation, not "???"
    assert any(line.startswith("前面还有 7 人") for line in chinese)
    assert any(line.startswith("预计等候约 18 分钟") for line in chinese)

    lines = printed_lines(data)  # raises on a non-ASCII byte outside Chinese mode
    texts = [line.text for line in lines]
    assert "Demo County Government Service Center" in " ".join(texts)
    assert "Social insurance" in texts
    assert any("7 ahead" in text for text in texts)
    assert any("about 18 min" in text for text in texts)
    assert "2026-11-30 09:12" in texts
    for line in lines:
        assert line.columns <= COLUMNS[paper], line
        if line.text.isascii():
            assert not line.chinese, line  # English goes out in the normal code page

    store = b"1P0" + URL.encode()  # GS ( k, function 180: store the data
    assert b"\x1d(k" + (len(store)).to_bytes(2, "little") + store in data
    assert b"\x1d(k\x03\x001Q0" in data  # function 181: print it
    assert qr_codes(data) == [URL]


def test_the_number_is_printed_big_and_bigger_on_wide_paper() -> None:
    big = {
        paper: max(line.width for line in printed_lines(ticket_bytes(a_ticket(), paper)))
        for paper in (58, 80)
    }
    assert big == {58: 3, 80: 4}
    long_number = ticket_bytes(a_ticket(number="VIP-A00012"), 58)
    assert ticket_number(long_number) == "VIP-A00012"
    assert all(line.columns <= 32 for line in printed_lines(long_number))


def test_no_priority_no_wait_no_url_leave_their_lines_out() -> None:
    data = ticket_bytes(a_ticket(priority_name=None, wait_minutes=None, url=""), 80)
    texts = " ".join(line.text for line in printed_lines(data))
    assert "【" not in texts
    assert "预计" not in texts and "about" not in texts
    assert b"\x1d(k" not in data and qr_codes(data) == []
    assert ticket_number(data) == "A012"


@pytest.mark.parametrize(("minutes", "shown"), [(0.2, 1), (12.5, 13), (59.4, 59)])
def test_the_wait_is_shown_in_whole_minutes(minutes: float, shown: int) -> None:
    data = ticket_bytes(a_ticket(wait_minutes=minutes), 80)
    assert f"预计等候约 {shown} 分钟 / about {shown} min".encode("gb18030") in data


def test_no_wait_is_said_as_the_kiosk_says_it() -> None:
    data = ticket_bytes(a_ticket(wait_minutes=0.0), 80)
    assert "预计等候不到 1 分钟 / under 1 min".encode("gb18030") in data


@pytest.mark.parametrize("paper", [58, 80])
def test_long_names_wrap_within_the_paper_and_lose_nothing(paper: int) -> None:
    category = "不动产登记（含抵押登记、转移登记、变更登记、注销登记及查封登记等业务）"
    category_en = "Real estate registration, including mortgages, transfers and cancellations"
    data = ticket_bytes(a_ticket(category_name=category, category_name_en=category_en), paper)

    lines = printed_lines(data)
    assert all(line.columns <= COLUMNS[paper] for line in lines)
    chinese = [line.text for line in lines if line.height == 2 and not line.text.isascii()]
    assert "".join(chinese[1:]) == category  # [0] is the hall name
    assert len(chinese) > 2  # it did wrap
    words = [w for line in lines if line.text.isascii() for w in line.text.split()]
    assert " ".join(words).count(category_en) == 1  # words whole, in order


def test_wrap_counts_a_cjk_character_as_two_columns_and_breaks_overlong_words() -> None:
    assert wrap("一二三四五六七八九十", 8) == ["一二三四", "五六七八", "九十"]
    assert wrap("ab 一二三 cd", 7) == ["ab 一二", "三 cd"]
    assert wrap("x" * 20, 8) == ["x" * 8, "x" * 8, "x" * 4]
    assert wrap("two\nparagraphs", 32) == ["two", "paragraphs"]
    assert wrap("a\x1dVb", 32) == ["a Vb"]  # control bytes in a name never reach the printer


def test_control_characters_in_configured_text_are_not_sent() -> None:
    data = ticket_bytes(a_ticket(hall_name_en="Hall\x1dV\x00cut", number="A\x1b012"), 58)
    assert split_tickets(data) == [data]  # the only cut is the last one
    assert ticket_number(data) == "A012"


def test_paper_width_other_than_58_or_80_is_refused() -> None:
    with pytest.raises(ValueError, match="58, 80"):
        ticket_bytes(a_ticket(), 76)


def test_a_print_ticket_has_nothing_personal_and_rejects_extra_fields() -> None:
    assert set(PrintTicket.__struct_fields__) == {
        "hall_name", "hall_name_en", "number", "category_name", "category_name_en",
        "priority_name", "ahead", "wait_minutes", "issued_at", "url", "notice", "notice_en",
    }  # fmt: skip
    raw = msgspec.json.encode(a_ticket())
    assert msgspec.json.decode(raw, type=PrintTicket) == a_ticket()
    with_id = raw[:-1] + b',"id_number":"110101195001011234"}'
    with pytest.raises(msgspec.ValidationError, match="id_number"):
        msgspec.json.decode(with_id, type=PrintTicket)


def imports_escpos(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "escpos" for name in names):
            return True
    return False


def test_escpos_is_imported_only_under_devices_printing() -> None:
    root = Path(__file__).resolve().parents[2]
    importers = {
        path.relative_to(root).as_posix()
        for package in ("hall", "scheduling", "displays", "devices")
        for path in (root / package).rglob("*.py")
        if imports_escpos(path)
    }
    assert "devices/printing/ticket.py" in importers  # the check sees an import when there is one
    assert {path for path in importers if not path.startswith("devices/printing/")} == set()
