"""Real printers over real connections: escpos's Network to a fake 9100 printer on 127.0.0.1, a
serial printer on a pseudo-terminal, a file printer to a file."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.printing.printers import Printer, PrinterUnavailable
from devices.printing.ticket import PrintTicket, ticket_bytes
from tests.support.fake_printer import FakePrinter, split_tickets, ticket_number


def ticket(number: str) -> bytes:
    return ticket_bytes(
        PrintTicket(
            hall_name="示范县政务服务中心",
            hall_name_en="Demo County Government Service Center",
            number=number,
            category_name="社保业务",
            category_name_en="Social insurance",
            priority_name=None,
            ahead=2,
            wait_minutes=6.0,
            issued_at="2026-11-30 09:12",
            url=f"https://hall.example.gov.cn/visit/demo-county#20261130-{number}.secret",
            notice="请留意叫号。",
            notice_en="Please listen for your number.",
        ),
        58,
    )


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    with FakePrinter() as printer:
        yield printer


@pytest.fixture
def printer(fake: FakePrinter) -> Iterator[Printer]:
    printer = Printer(fake.address, timeout=1, answer_timeout=0.3)
    yield printer
    printer.close()


def test_tickets_arrive_whole_and_in_order_on_one_connection(
    fake: FakePrinter, printer: Printer
) -> None:
    sent = [ticket(f"A00{n}") for n in range(1, 4)]
    for data in sent:
        printer.send(data)

    assert fake.wait_for_tickets(3) == sent
    assert fake.numbers() == ["A001", "A002", "A003"]
    assert len(fake.connections) == 1  # kept open between tickets
    # What came besides the tickets: the status query after each, nothing else.
    assert fake.received.replace(b"\x10\x04\x04", b"") == b"".join(sent)


@pytest.mark.parametrize(
    ("paper", "status"), [("ok", "ok"), ("low", "paper_low"), ("out", "paper_out")]
)
def test_the_paper_state_is_read_from_the_printer(
    fake: FakePrinter, printer: Printer, paper: str, status: str
) -> None:
    fake.paper = paper  # type: ignore[assignment]
    assert printer.status() == status
    assert fake.received == b"\x10\x04\x04"  # DLE EOT 4, and only that


def test_a_printer_that_never_answers_is_ok_and_is_not_waited_on_for_every_ticket(
    fake: FakePrinter, printer: Printer
) -> None:
    fake.answers = False
    fake.paper = "out"  # it would say so if it answered
    started = time.monotonic()
    assert printer.status() == "ok"  # unknown, not an error
    assert time.monotonic() - started >= 0.3  # it was given the time to answer

    for n in range(1, 6):
        printer.send(ticket(f"B00{n}"))
    took = time.monotonic() - started
    assert fake.wait_for_tickets(5) and fake.numbers() == [f"B00{n}" for n in range(1, 6)]
    assert took < 0.3 * 3  # once learnt, a silent printer costs no wait per ticket


def test_a_printer_gone_is_unavailable_and_prints_again_once_back(
    fake: FakePrinter, printer: Printer
) -> None:
    printer.send(ticket("C001"))
    fake.wait_for_tickets(1)
    fake.stop()  # switched off: its connection closes, nothing listens

    with pytest.raises(PrinterUnavailable, match=f"cannot open tcp://127.0.0.1:{fake.port}"):
        printer.send(ticket("C002"))
    assert printer.status() == "printer_offline"
    with pytest.raises(PrinterUnavailable):
        printer.send(ticket("C002"))  # still gone: a retry fails the same way

    fake.start()  # back, on the same port
    printer.send(ticket("C002"))
    printer.send(ticket("C003"))
    assert printer.status() == "ok"

    fake.wait_for_tickets(3)
    assert fake.numbers() == ["C001", "C002", "C003"]  # each exactly once
    assert len(fake.connections) == 2  # one before, one after


def test_a_printer_restarted_between_tickets_loses_none(
    fake: FakePrinter, printer: Printer
) -> None:
    """A write into a connection the printer has closed succeeds once over TCP; that ticket must
    not vanish: the send notices the closed connection and connects again."""
    printer.send(ticket("D001"))
    fake.wait_for_tickets(1)
    fake.stop()
    fake.start()
    printer.send(ticket("D002"))
    fake.wait_for_tickets(2)
    assert fake.numbers() == ["D001", "D002"]


def test_a_printer_that_falls_silent_after_taking_a_ticket_is_not_sent_it_again(
    fake: FakePrinter, printer: Printer
) -> None:
    """Its TCP stack acknowledged the whole ticket, so it holds it: the ticket counts as printed
    (at most once), and the silent connection is dropped for a fresh one."""
    printer.send(ticket("E001"))  # it answered the query after this one
    fake.answers = False  # hung: takes bytes, says nothing
    started = time.monotonic()
    printer.send(ticket("E002"))
    assert time.monotonic() - started >= 1  # waited as long as for a write, not 0.3 s
    fake.answers = True
    printer.send(ticket("E003"))  # a fresh connection, and it answers again
    assert len(fake.connections) == 2
    assert fake.numbers() == ["E001", "E002", "E003"]


def test_a_ticket_sent_to_a_printer_switched_off_is_unavailable(fake: FakePrinter) -> None:
    """Nothing acknowledged the ticket: not printed, so the send fails and the job is retried."""
    printer = Printer(fake.address, timeout=0.5)
    printer.send(ticket("G001"))
    fake.stop()
    with pytest.raises(PrinterUnavailable):
        printer.send(ticket("G002"))
    printer.close()


def test_a_file_printer_writes_the_bytes_to_its_file(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    path.touch()
    printer = Printer(f"file://{path}")
    printer.send(ticket("F001"))
    printer.send(ticket("F002"))
    assert printer.status() == "ok"  # a file cannot tell: unknown is not an error
    printer.close()

    data = path.read_bytes()
    assert data == ticket("F001") + ticket("F002")
    assert [ticket_number(t) for t in split_tickets(data)] == ["F001", "F002"]


def test_a_file_printer_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    printer = Printer(f"file://{tmp_path}/no-such-dir/lp0")
    with pytest.raises(PrinterUnavailable, match="No such file or directory"):
        printer.send(ticket("G001"))
    assert printer.status() == "printer_offline"
    (tmp_path / "no-such-dir").mkdir()  # the device appears (a USB printer plugged in)
    printer.send(ticket("G001"))
    printer.close()
    assert ticket_number((tmp_path / "no-such-dir" / "lp0").read_bytes()) == "G001"


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_serial_printer_on_a_pseudo_terminal_prints_and_tells_its_paper(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    received = bytearray()

    def serial_printer() -> None:  # the far end of the line: records, answers DLE EOT 4
        with contextlib.suppress(OSError):  # EIO once the computer's end is closed
            while chunk := os.read(master, 4096):
                received.extend(chunk)
                if chunk.endswith(b"\x10\x04\x04"):
                    os.write(master, b"\x1e")  # paper near its end

    listener = threading.Thread(target=serial_printer, daemon=True)
    listener.start()
    printer = Printer(f"serial://{os.ttyname(slave)}?baudrate=19200", answer_timeout=0.5)
    try:
        printer.send(ticket("H001"))
        assert printer.status() == "paper_low"
    finally:
        printer.close()
        os.close(slave)
        listener.join(5)
        os.close(master)
    assert split_tickets(bytes(received)) == [ticket("H001")]


def test_a_printer_known_to_answer_that_falls_silent_gets_the_ticket_again(
    fake: FakePrinter,
) -> None:
    """With ``answers=True`` (the agent's ``status_answers = "yes"``) a query left unanswered is
    a printer gone or hung, even one that still acknowledges bytes: the ticket is not counted
    printed, and a printer silent from the start is offline, not "does not answer"."""
    fake.answers = False
    printer = Printer(fake.address, timeout=0.5, answers=True)
    assert printer.status() == "printer_offline"
    with pytest.raises(PrinterUnavailable):
        printer.send(ticket("H001"))
    fake.answers = True
    printer.send(ticket("H001"))
    assert printer.status() == "ok"
    printer.close()
