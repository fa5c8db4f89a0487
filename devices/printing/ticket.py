"""The printed ticket: what it says (:class:`PrintTicket`) and its ESC/POS bytes.

The layout is built on python-escpos's ``Dummy`` printer, so the bytes can be made anywhere (the
hall, a test) and sent later to whichever printer the agent has. Text is encoded here, not by
escpos: its ``text()`` sends CJK as GB18030 without switching the printer into Chinese mode, and
full-width punctuation on its own comes out as ``?``. Every line holding a non-ASCII character
goes out as GB18030 between ``FS &`` and ``FS .``; in that mode each multibyte character prints
full width (two columns of Font A), each ASCII byte one column.

The ticket number is the only text printed wider than normal (``GS !`` with a width of two or
more): tests find it by that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
from escpos.constants import PAPER_FULL_CUT, QR_ECLEVEL_M
from escpos.printer import Dummy

CHINESE_ON = b"\x1c&"  # FS &
CHINESE_OFF = b"\x1c."  # FS .


class PrintTicket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a ticket says. Nothing personal: the ticket leaves the kiosk in a visitor's hand."""

    hall_name: str
    hall_name_en: str
    number: str
    category_name: str
    category_name_en: str
    priority_name: str | None
    ahead: int
    wait_minutes: float | None
    issued_at: str  # local time, "2026-11-30 09:12"
    url: str  # the visitor's phone page; the ticket's secret rides in the fragment
    notice: str
    notice_en: str


class _Paper(msgspec.Struct, frozen=True):
    profile: str  # a python-escpos profile with this paper width
    columns: int  # Font A (12 dots) characters per line
    number_size: int  # magnification of the number, at most
    qr_dots: int  # dots per QR module


PAPERS = {
    58: _Paper("POS-5890", 32, 3, 6),
    80: _Paper("NT-80-V-UL", 48, 4, 8),
}

# Control characters in a configured name could be read by the printer as commands.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A run of printable ASCII stays whole when wrapping; any other character can break anywhere.
_TOKEN = re.compile(r"[!-~]+| +|[^ !-~]")


def _width(text: str) -> int:
    return sum(1 if ord(ch) < 0x80 else 2 for ch in text)


def _cut_to(token: str, columns: int) -> Iterator[str]:
    """A token wider than a line, in line-sized pieces."""
    piece = ""
    for ch in token:
        if _width(piece + ch) > columns:
            yield piece
            piece = ""
        piece += ch
    if piece:
        yield piece


def wrap(text: str, columns: int) -> list[str]:
    """Lines of at most ``columns`` columns (a CJK character counts two); words kept whole."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _TOKEN.findall(_CONTROL.sub(" ", paragraph)):
            if _width(line + token) <= columns:
                line += token
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = ""
            if token.isspace():
                continue
            *full, line = _cut_to(token, columns)
            lines.extend(full)
        if line.strip():
            lines.append(line.rstrip())
    return lines


def _minutes(wait: float) -> int:
    return max(1, int(wait + 0.5)) if wait > 0 else 0


class _Ticket:
    """A Dummy printer with the paper's width and a text writer that gets Chinese right."""

    def __init__(self, paper: _Paper) -> None:
        self.paper = paper
        self.out = Dummy(profile=paper.profile)

    def style(self, *, size: int = 1, height: int = 1, bold: bool = False) -> None:
        # GS ! (not ESC !): it sizes CJK characters as well as ASCII.
        self.out.set(custom_size=True, width=size, height=max(size, height), bold=bold)

    def feed(self) -> None:
        self.out._raw(b"\n")  # escpos's ln() would also switch the code page

    def lines(self, text: str, *, height: int = 1, bold: bool = False) -> None:
        self.style(height=height, bold=bold)
        for line in wrap(text, self.paper.columns):
            if line.isascii():
                self.out._raw(line.encode("ascii") + b"\n")
            else:
                encoded = line.encode("gb18030", errors="replace")
                self.out._raw(CHINESE_ON + encoded + CHINESE_OFF + b"\n")

    def pair(self, zh: str, en: str) -> None:
        """One line "中文 / English" where it fits, else each on its own."""
        both = f"{zh} / {en}"
        self.lines(both if _width(both) <= self.paper.columns else f"{zh}\n{en}")

    def number(self, number: str) -> None:
        text = _CONTROL.sub("", number).encode("ascii", errors="replace")
        fits = self.paper.columns // max(1, len(text))
        self.style(size=max(2, min(self.paper.number_size, fits)), bold=True)
        self.out._raw(text + b"\n")


def ticket_bytes(ticket: PrintTicket, paper_mm: int = 80) -> bytes:
    """The ESC/POS bytes of one ticket on 58 or 80 mm paper, ending with a full cut."""
    if paper_mm not in PAPERS:
        raise ValueError(f"paper_mm must be one of {sorted(PAPERS)}, not {paper_mm!r}")
    t = _Ticket(PAPERS[paper_mm])
    t.out.hw("INIT")
    t.out.set(align="center")
    t.lines(ticket.hall_name, height=2, bold=True)
    t.lines(ticket.hall_name_en)
    t.feed()
    t.number(ticket.number)
    t.lines(ticket.category_name, height=2, bold=True)
    t.lines(ticket.category_name_en)
    if ticket.priority_name:
        t.lines(f"【{ticket.priority_name}】", bold=True)
    t.feed()
    t.pair(f"前面还有 {ticket.ahead} 人", f"{ticket.ahead} ahead")
    if ticket.wait_minutes is not None:
        minutes = _minutes(ticket.wait_minutes)
        if minutes < 1:  # as the kiosk and the phone page say it
            t.pair("预计等候不到 1 分钟", "under 1 min")
        else:
            t.pair(f"预计等候约 {minutes} 分钟", f"about {minutes} min")
    t.lines(ticket.issued_at)
    if ticket.url:
        t.feed()
        t.out.qr(ticket.url, native=True, size=t.paper.qr_dots, ec=QR_ECLEVEL_M)
    t.lines(ticket.notice)
    t.lines(ticket.notice_en)
    t.out.print_and_feed(4)
    # escpos's cut() sends nothing for a profile without a cutter (POS-5890); a printer without
    # one ignores GS V, so it always goes.
    t.out._raw(PAPER_FULL_CUT)
    output: bytes = t.out.output
    return output
