"""A thermal printer named by a connection string, taking ticket bytes and telling its paper state.

Connection strings (chosen in the printer agent's config):

    tcp://HOST[:PORT]                  a network printer's raw port (9100 unless given)
    usb://VID:PID[?in_ep=0x82&out_ep=0x01]   hex ids, as ``lsusb`` shows them
    serial:///dev/ttyUSB0[?baudrate=9600]
    file:///dev/usb/lp0                a device file (or any file: tests, spooling)

:class:`Printer` connects lazily and keeps the connection. :meth:`Printer.send` raises
:class:`PrinterUnavailable` when the bytes cannot be handed over, and drops the connection so the
next call connects again: the caller retries the job later, printing is not given up.

Status comes from the printer itself where the connection can answer: the real-time query
``DLE EOT 4`` (roll paper sensor). A printer that cannot be reached is ``printer_offline``. A
printer that takes the query but does not answer it (many cheap ones; a file printer never can)
is reported ``ok``: its state is unknown, and unknown is not an error.

Over TCP a write into a connection the printer has already closed still succeeds once, and the
ticket is lost. So :meth:`Printer.send` first checks the connection is still open (reconnecting if
the printer closed it), then waits until the printer's TCP stack has acknowledged every byte of
the ticket (Linux: SIOCOUTQ): from then on the printer holds the ticket, and it counts as printed
even if the printer goes away before the next step. Where the printer answers status queries it
sends one after the ticket and waits for the answer (bytes arrive in order, so an answer means
the ticket arrived; this is the proof where the send queue cannot be read). A printer that has
answered before and then falls silent without having acknowledged the ticket is taken as gone
(switched off, hung): the send fails and the job is retried, whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from escpos.exceptions import Error as EscposError
from escpos.printer import File, Network, Serial, Usb

Scheme = Literal["tcp", "usb", "serial", "file"]
Status = Literal["ok", "paper_low", "paper_out", "printer_offline"]

PAPER_QUERY = b"\x10\x04\x04"  # DLE EOT 4: roll paper sensor status
_NEAR_END = 0x0C  # bits 2-3 of the answer: paper near its end
_PAPER_OUT = 0x60  # bits 5-6: no paper
_FIXED = 0x12  # bits 1 and 4 are always set, bits 0 and 7 clear: tells a status byte from noise
DEFAULT_PORT = 9100


class BadPrinterAddress(ValueError):
    """A printer connection string that cannot be used; the message says what is expected."""


class PrinterUnavailable(Exception):
    """The printer cannot be reached or written to now. Nothing is known to be printed."""


class _Silent(PrinterUnavailable):
    """A printer known to answer status queries did not answer one."""


@dataclass(frozen=True)
class PrinterAddress:
    scheme: Scheme
    host: str = ""  # tcp
    port: int = DEFAULT_PORT  # tcp
    vendor: int = 0  # usb
    product: int = 0  # usb
    in_ep: int = 0x82  # usb
    out_ep: int = 0x01  # usb
    path: str = ""  # serial, file
    baudrate: int = 9600  # serial

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        if self.scheme == "usb":
            eps = "" if (self.in_ep, self.out_ep) == (0x82, 0x01) else "?in_ep={:#x}&out_ep={:#x}"
            return f"usb://{self.vendor:04x}:{self.product:04x}" + eps.format(
                self.in_ep, self.out_ep
            )
        if self.scheme == "serial":
            return f"serial://{self.path}?baudrate={self.baudrate}"
        return f"file://{self.path}"


_FORMS = (
    "tcp://HOST:PORT, usb://VID:PID (hex), serial:///dev/ttyUSB0?baudrate=9600 "
    "or file:///dev/usb/lp0"
)


def _bad(address: str, why: str) -> BadPrinterAddress:
    return BadPrinterAddress(f"printer {address!r}: {why} (expected {_FORMS})")


def _number(address: str, name: str, value: str, base: int, low: int, high: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        span = f"a hex number from {low:x} to {high:x}" if base == 16 else f"{low} to {high}"
        raise _bad(address, f"{name} must be {span}, not {value!r}")
    return number


def _options(address: str, query: str, allowed: set[str]) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _bad(address, f"unreadable options {query!r}") from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise _bad(address, f"unknown option {name!r} (known: {known})")
        if name in options:
            raise _bad(address, f"option {name!r} given twice")
        options[name] = value
    return options


def parse_printer(address: str) -> PrinterAddress:
    """The printer a connection string names; :class:`BadPrinterAddress` says what is wrong."""
    parts = urlsplit(address.strip())
    if "://" not in address or parts.scheme not in ("tcp", "usb", "serial", "file"):
        raise _bad(address, f"unknown kind {parts.scheme!r}" if parts.scheme else "no kind://")
    if parts.fragment:
        raise _bad(address, "a '#' has no meaning here")
    if parts.scheme == "tcp":
        _options(address, parts.query, set())
        if parts.path not in ("", "/") or not parts.hostname or parts.username:
            raise _bad(address, "a network printer is tcp://HOST or tcp://HOST:PORT")
        try:
            port = parts.port
        except ValueError:  # not a number, or out of range
            port = 0
        if port == 0 or parts.netloc.endswith(":"):
            raise _bad(address, "the port must be a number from 1 to 65535")
        return PrinterAddress("tcp", host=parts.hostname, port=port or DEFAULT_PORT)
    if parts.scheme == "usb":
        options = _options(address, parts.query, {"in_ep", "out_ep"})
        vendor, colon, product = parts.netloc.partition(":")
        if not colon or parts.path:
            raise _bad(address, "a USB printer is usb://VID:PID, e.g. usb://0416:5011")
        return PrinterAddress(
            "usb",
            vendor=_number(address, "the vendor id", vendor, 16, 1, 0xFFFF),
            product=_number(address, "the product id", product, 16, 1, 0xFFFF),
            in_ep=_number(address, "in_ep", options.get("in_ep", "0x82"), 16, 0x81, 0x8F),
            out_ep=_number(address, "out_ep", options.get("out_ep", "0x01"), 16, 0x01, 0x0F),
        )
    # serial and file name a local path: three slashes, nothing between the second and third
    scheme: Scheme = "serial" if parts.scheme == "serial" else "file"
    options = _options(address, parts.query, {"baudrate"} if scheme == "serial" else set())
    if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise _bad(address, f"a {scheme} printer is {scheme}:///absolute/path")
    baudrate = _number(address, "baudrate", options.get("baudrate", "9600"), 10, 50, 4_000_000)
    return PrinterAddress(scheme, path=parts.path, baudrate=baudrate)


def escpos_printer(address: PrinterAddress, timeout: float = 5.0) -> Any:
    """The python-escpos printer for an address, not yet connected (it connects on first use)."""
    if address.scheme == "tcp":
        return Network(address.host, address.port, timeout=timeout)
    if address.scheme == "usb":
        return Usb(
            address.vendor,
            address.product,
            timeout=int(timeout * 1000),  # milliseconds, for each write
            in_ep=address.in_ep,
            out_ep=address.out_ep,
        )
    if address.scheme == "serial":
        return Serial(address.path, baudrate=address.baudrate, timeout=timeout)
    return File(address.path)


class Printer:
    """One printer, used from one thread at a time (a lock keeps it so); blocking I/O."""

    def __init__(
        self,
        address: str | PrinterAddress,
        *,
        timeout: float = 5.0,
        answer_timeout: float = 0.5,
        answers: bool | None = None,
    ) -> None:
        self.address = parse_printer(address) if isinstance(address, str) else address
        self.timeout = timeout  # connect and write
        self.answer_timeout = answer_timeout  # how long a printer has to answer a status query
        self._escpos: Any = None
        # True: the printer is known to answer status queries (the agent's settings say so): a
        # query without an answer is then always a printer gone, never learned as "it does not
        # answer". None: learned per connection, from the first query.
        self._known = answers
        # None until the printer first answers or ignores a query; then whether it answers.
        self._answers: bool | None = answers
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Printer({str(self.address)!r})"

    @property
    def answers(self) -> bool | None:
        """Whether the printer answers status queries; None until it has been asked one."""
        return self._answers

    def send(self, data: bytes) -> None:
        """Hand the bytes to the printer, or raise :class:`PrinterUnavailable`."""
        with self._lock:
            printer = self._open()
            tcp = self.address.scheme == "tcp"
            try:
                printer._raw(data)
                if self._answers is not False:
                    # Once it has answered, a slow answer is waited for as long as a write.
                    answer = self._query(printer, self.timeout if self._answers else None)
                    if answer is not None:
                        return  # answers come in order: the ticket arrived before it
                    if self._answers:
                        # It answered before and now falls silent: hung, or gone without a word.
                        raise PrinterUnavailable(f"{self.address} stopped answering")
                if tcp and not _acknowledged(printer.device, self.timeout):
                    raise PrinterUnavailable(f"{self.address} did not take the ticket")
            except (EscposError, OSError, PrinterUnavailable) as error:
                # A printer that acknowledged the whole ticket before it went away holds it; one
                # known to answer that fell silent instead may be hung: its ticket is sent again.
                delivered = (
                    tcp and not isinstance(error, _Silent) and _acknowledged(printer.device, 0)
                )
                self._close()
                if delivered:
                    return
                if isinstance(error, PrinterUnavailable):
                    raise
                raise PrinterUnavailable(
                    f"cannot write to {self.address}: {_flat(error)}"
                ) from error

    def status(self) -> Status:
        """The printer's paper state, as far as it tells; ``printer_offline`` when unreachable."""
        with self._lock:
            try:
                printer = self._open()
                answer = self._query(printer)
            except (PrinterUnavailable, EscposError, OSError):
                self._close()
                return "printer_offline"
        if answer is None or answer & 0x93 != _FIXED:
            return "ok"  # no answer, or not a status byte: unknown, not an error
        if answer & _PAPER_OUT:
            return "paper_out"
        return "paper_low" if answer & _NEAR_END else "ok"

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._escpos is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                self._escpos.close()
        self._escpos = None

    def _open(self) -> Any:
        tcp = self.address.scheme == "tcp"
        if self._escpos is not None and tcp and _peer_closed(self._escpos.device):
            self._close()  # the printer restarted or dropped us: connect afresh
        if self._escpos is None:
            printer = escpos_printer(self.address, self.timeout)
            try:
                if tcp:
                    # escpos's Network.open() leaks the socket when the connection is refused
                    where = (self.address.host, self.address.port)
                    printer.device = socket.create_connection(where, self.timeout)
                    # A status query is three bytes after a ticket: with Nagle's algorithm it
                    # waits for the ticket's ACK, which the printer delays (40 ms on Linux).
                    printer.device.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                else:
                    printer.open()
            except (EscposError, OSError, ValueError) as error:  # pyusb: ValueError, no backend
                with contextlib.suppress(Exception):
                    printer.close()
                raise PrinterUnavailable(f"cannot open {self.address}: {_flat(error)}") from error
            self._escpos = printer
            # A printer that did not answer on the last connection may have been hung and
            # switched off and on since: learn again whether it answers.
            self._answers = self._known
        return self._escpos

    def _query(self, printer: Any, timeout: float | None = None) -> int | None:
        """Ask ``DLE EOT 4``; the answer byte, or None when none comes (in ``answer_timeout``)."""
        if self.address.scheme == "file":
            return None  # a file is write-only here
        if self.address.scheme == "serial":
            printer.device.reset_input_buffer()  # a late answer to an earlier query
        printer._raw(PAPER_QUERY)
        answer = _read(self.address, printer.device, timeout or self.answer_timeout)
        if answer is None and self._known:
            raise _Silent(f"{self.address} did not answer its status query")
        self._answers = bool(self._answers) or answer is not None
        return answer


def _read(address: PrinterAddress, device: Any, timeout: float) -> int | None:
    """One status byte within ``timeout`` seconds, or None."""
    if address.scheme == "tcp":
        previous = device.gettimeout()
        device.settimeout(timeout)
        try:
            data = device.recv(16)
        except TimeoutError:
            return None
        finally:
            device.settimeout(previous)
        if not data:
            raise PrinterUnavailable("the printer closed the connection")
        return int(data[-1])
    if address.scheme == "serial":
        previous = device.timeout
        device.timeout = timeout
        try:
            data = device.read(1)  # read(16) would wait out the timeout for 16 bytes
        finally:
            device.timeout = previous
        return int(data[0]) if data else None
    import usb.core

    try:
        data = device.read(address.in_ep, 16, int(timeout * 1000))
    except usb.core.USBError:  # a timeout, or a printer with no way back: the write went out
        return None
    return int(data[-1]) if len(data) else None


def _acknowledged(sock: socket.socket, timeout: float) -> bool:
    """Whether the printer's TCP stack acknowledged every byte written, waiting up to
    ``timeout``: the connection is established (or the printer closed it in order, after taking
    everything) and its send queue holds nothing unacknowledged (Linux: TCP_INFO, SIOCOUTQ).
    A connection reset purges the queue, so an empty queue alone proves nothing. False where
    this cannot be read (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    deadline = time.monotonic() + timeout
    pause = 0.0002
    while True:
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
            queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return False
        if state not in _OPEN_STATES:
            return False
        if queued == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


_SIOCOUTQ = 0x5411  # = TIOCOUTQ on Linux: bytes in a TCP socket's send queue not yet acknowledged
_OPEN_STATES = (1, 8)  # TCP_ESTABLISHED, TCP_CLOSE_WAIT (the peer closed after reading all)


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the printer has closed this connection; late status answers are drained."""
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(1024):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)


def _flat(error: BaseException) -> str:
    return " ".join(str(error).split())  # escpos's messages span lines; a log line should not
