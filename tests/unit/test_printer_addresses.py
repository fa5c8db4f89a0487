"""Printer connection strings: what each names, which escpos class serves it, and clear refusals."""

from __future__ import annotations

import pytest
from escpos.printer import File, Network, Serial, Usb

from devices.printing.printers import (
    BadPrinterAddress,
    PrinterAddress,
    escpos_printer,
    parse_printer,
)


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("tcp://192.168.1.87", PrinterAddress("tcp", host="192.168.1.87", port=9100)),
        (
            "tcp://printer-3.hall.lan:9101",
            PrinterAddress("tcp", host="printer-3.hall.lan", port=9101),
        ),
        ("tcp://[fd00::5]:9100", PrinterAddress("tcp", host="fd00::5", port=9100)),
        ("usb://0416:5011", PrinterAddress("usb", vendor=0x0416, product=0x5011)),
        (
            "usb://04b8:0E15?in_ep=0x81&out_ep=0x02",
            PrinterAddress("usb", vendor=0x04B8, product=0x0E15, in_ep=0x81, out_ep=0x02),
        ),
        ("serial:///dev/ttyUSB0", PrinterAddress("serial", path="/dev/ttyUSB0", baudrate=9600)),
        (
            "serial:///dev/ttyS1?baudrate=115200",
            PrinterAddress("serial", path="/dev/ttyS1", baudrate=115200),
        ),
        ("file:///dev/usb/lp0", PrinterAddress("file", path="/dev/usb/lp0")),
        (" TCP://10.0.0.9:9100 ", PrinterAddress("tcp", host="10.0.0.9", port=9100)),
    ],
)
def test_each_kind_of_connection_string_is_read(address: str, parsed: PrinterAddress) -> None:
    assert parse_printer(address) == parsed
    assert parse_printer(str(parsed)) == parsed  # str() gives a string that names it again


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("", "no kind://"),
        ("192.168.1.87:9100", "no kind://"),
        ("lpt://1", "unknown kind 'lpt'"),
        ("http://printer", "unknown kind 'http'"),
        ("tcp://", "tcp://HOST or tcp://HOST:PORT"),
        ("tcp://printer/raw", "tcp://HOST or tcp://HOST:PORT"),
        ("tcp://admin@printer", "tcp://HOST or tcp://HOST:PORT"),
        ("tcp://printer:", "port must be a number from 1 to 65535"),
        ("tcp://printer:0", "port must be a number from 1 to 65535"),
        ("tcp://printer:70000", "port must be a number from 1 to 65535"),
        ("tcp://printer:raw", "port must be a number from 1 to 65535"),
        ("tcp://printer:9100?timeout=5", "unknown option 'timeout' \\(known: none\\)"),
        ("tcp://printer#1", "'#' has no meaning"),
        ("usb://0416", "usb://VID:PID"),
        ("usb://0416:5011/1", "usb://VID:PID"),
        ("usb://winbond:5011", "vendor id must be a hex number from 1 to ffff, not 'winbond'"),
        ("usb://0416:10000", "product id must be a hex number"),
        ("usb://0416:5011?in_ep=0x01", "in_ep must be a hex number from 81 to 8f"),
        ("usb://0416:5011?out_ep=2&out_ep=3", "option 'out_ep' given twice"),
        ("serial://dev/ttyUSB0", "serial:///absolute/path"),
        ("serial:///", "serial:///absolute/path"),
        ("serial:///dev/ttyUSB0?baudrate=fast", "baudrate must be 50 to 4000000, not 'fast'"),
        ("serial:///dev/ttyUSB0?speed=9600", "unknown option 'speed' \\(known: baudrate\\)"),
        ("serial:///dev/ttyUSB0?baudrate", "unreadable options"),
        ("file://lp0", "file:///absolute/path"),
        ("file:///dev/usb/lp0?baudrate=9600", "unknown option 'baudrate'"),
    ],
)
def test_a_bad_connection_string_is_refused_saying_why_and_what_is_expected(
    address: str, says: str
) -> None:
    with pytest.raises(BadPrinterAddress, match=says) as refused:
        parse_printer(address)
    assert isinstance(refused.value, ValueError)
    assert repr(address) in str(refused.value)
    assert "expected tcp://HOST:PORT, usb://VID:PID" in str(refused.value)


def test_each_kind_gets_its_escpos_printer_without_connecting() -> None:
    network = escpos_printer(parse_printer("tcp://192.0.2.1:9101"), timeout=2.5)
    assert type(network) is Network
    assert (network.host, network.port, network.timeout) == ("192.0.2.1", 9101, 2.5)

    usb = escpos_printer(parse_printer("usb://0416:5011?in_ep=0x81&out_ep=0x03"), timeout=2)
    assert type(usb) is Usb
    assert usb.usb_args == {"idVendor": 0x0416, "idProduct": 0x5011}
    assert (usb.in_ep, usb.out_ep, usb.timeout) == (0x81, 0x03, 2000)

    serial = escpos_printer(parse_printer("serial:///dev/ttyUSB3?baudrate=19200"))
    assert type(serial) is Serial
    assert (serial.devfile, serial.baudrate) == ("/dev/ttyUSB3", 19200)

    file = escpos_printer(parse_printer("file:///dev/usb/lp0"))
    assert type(file) is File
    assert file.devfile == "/dev/usb/lp0"

    for printer in (network, usb, serial, file):
        assert printer._device is False  # not opened: escpos opens on first use
