"""A network receipt printer on 127.0.0.1 for tests: it records bytes and answers status queries.

:class:`FakePrinter` listens like a printer's raw port 9100 (on any free port, or a given one), in
threads of its own, so sync and async tests alike can use it. It keeps the bytes of every
connection apart, answers the real-time status query ``DLE EOT n`` with one byte as the ESC/POS
manual describes (bits 1 and 4 always set; for n=4, bits 2-3 paper near its end, bits 5-6 paper
out) from a paper state the test sets, and can be stopped and started again on the same port: a
printer switched off and on. :meth:`FakePrinter.tickets` splits what it got into tickets at each
cut; :func:`printed_lines` reads one as a printer would (and refuses bytes a printer would
garble), :func:`ticket_number` finds its number.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

Paper = Literal["ok", "low", "out"]

_CUT = re.compile(rb"\x1dV(?:[\x00\x01\x30\x31]|[\x41\x42][\x00-\xff])")  # GS V, every form
_QUERY = re.compile(rb"\x10\x04[\x01-\x04]")  # DLE EOT n
_QR_STORE = re.compile(rb"\x1d\(k(..)1P0", re.DOTALL)  # GS ( k pL pH cn=49 fn=80 m=48 data
# Commands a ticket may hold, by their first bytes, and how many bytes each takes in all.
_FIXED_LENGTH = {
    b"\x1b@": 2,  # ESC @ initialise
    b"\x1ba": 3,  # ESC a n justification
    b"\x1bE": 3,  # ESC E n bold
    b"\x1bd": 3,  # ESC d n print and feed n lines
    b"\x1bt": 3,  # ESC t n code page
    b"\x1d!": 3,  # GS ! n character size
    b"\x1c&": 2,  # FS & Chinese mode on
    b"\x1c.": 2,  # FS . Chinese mode off
    b"\x10\x04": 3,  # DLE EOT n status query
}


@dataclass(frozen=True)
class Line:
    """One printed line of text as a printer would show it."""

    text: str
    width: int  # character width magnification (GS !)
    height: int
    chinese: bool  # sent in Chinese mode

    @property
    def columns(self) -> int:
        """Font A columns taken: a multibyte character prints two wide in Chinese mode."""
        return self.width * sum(1 if ord(ch) < 0x80 else 2 for ch in self.text)


def printed_lines(ticket: bytes) -> list[Line]:
    """The text lines a printer prints from these bytes; ValueError on a byte it would garble:
    an unknown command, or a non-ASCII byte outside Chinese mode."""
    lines: list[Line] = []
    width = height = 1
    chinese = in_line = False
    text = bytearray()
    at = 0
    while at < len(ticket):
        byte = ticket[at]
        if byte == 0x0A:
            lines.append(Line(text.decode("gb18030"), width, height, in_line))
            text.clear()
            in_line, at = chinese, at + 1
            continue
        if byte >= 0x20:
            if byte >= 0x80 and not chinese:
                raise ValueError(f"byte {byte:#x} at {at} outside Chinese mode")
            text.append(byte)
            at += 1
            continue
        head = ticket[at : at + 2]
        if head == b"\x1d(":  # GS ( k pL pH ...: a 2D code, its data counted by pL pH
            at += 5 + int.from_bytes(ticket[at + 3 : at + 5], "little")
        elif head == b"\x1dV":
            at += 4 if ticket[at + 2] in (0x41, 0x42) else 3
        elif head in _FIXED_LENGTH:
            if head == b"\x1b@":
                width = height = 1
                chinese = False
            elif head == b"\x1d!":
                width, height = (ticket[at + 2] >> 4) + 1, (ticket[at + 2] & 0x0F) + 1
            elif head in (b"\x1c&", b"\x1c."):
                chinese = head == b"\x1c&"
                in_line = in_line or chinese
            at += _FIXED_LENGTH[head]
        else:
            raise ValueError(f"unknown command {ticket[at : at + 3]!r} at {at}")
    if text:
        lines.append(Line(text.decode("gb18030"), width, height, in_line))
    return lines


def qr_codes(ticket: bytes) -> list[str]:
    """What the QR codes stored with ``GS ( k`` (function 180) hold."""
    found = []
    for store in _QR_STORE.finditer(ticket):
        size = int.from_bytes(store[1], "little") - 3
        found.append(ticket[store.end() : store.end() + size].decode("utf-8"))
    return found


def status_byte(n: int, paper: Paper) -> int | None:
    """The answer to ``DLE EOT n``; None for an n the printer ignores."""
    out = paper == "out"
    if n == 1:  # printer: bit 3 offline (a printer out of paper stops)
        return 0x12 | (0x08 if out else 0)
    if n == 2:  # offline cause: bit 5, stopped at paper end
        return 0x12 | (0x20 if out else 0)
    if n == 3:  # errors: none here
        return 0x12
    if n == 4:  # roll paper sensor: near end bits 2-3; out bits 5-6 (and the near-end ones too)
        return 0x12 | {"ok": 0, "low": 0x0C, "out": 0x6C}[paper]
    return None


def split_tickets(stream: bytes) -> list[bytes]:
    """The tickets in one connection's bytes, each ending with its cut; status queries dropped.
    Bytes after the last cut are no ticket (a printer would not cut them off)."""
    stream = _QUERY.sub(b"", stream)
    ends = [m.end() for m in _CUT.finditer(stream)]
    return [stream[start:end] for start, end in zip([0, *ends], ends, strict=False)]


def ticket_number(ticket: bytes) -> str | None:
    """The number on a ticket: the one text printed wider than normal."""
    return next((line.text for line in printed_lines(ticket) if line.width > 1), None)


class FakePrinter:
    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: any free port, fixed at the first start
        self.paper: Paper = "ok"
        self.answers = True  # False: a printer that ignores status queries
        self.connections: list[bytearray] = []  # every connection's bytes, in order of accept
        self._changed = threading.Condition()
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._running = False

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> FakePrinter:
        assert not self._running, "already started"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        listener.settimeout(0.05)  # the accept loop looks at _running this often
        self.port = listener.getsockname()[1]
        self._listener, self._running = listener, True
        self._spawn(self._accept, listener)
        return self

    def stop(self) -> None:
        """Switch the printer off: no more connections, and the open ones are closed."""
        self._running = False
        with self._changed:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        self._threads = []
        for client in clients:
            client.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> FakePrinter:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def received(self) -> bytes:
        with self._changed:
            return b"".join(self.connections)

    def tickets(self) -> list[bytes]:
        """Every whole ticket received, in order; a ticket cut short by a dropped connection is
        not one (its job is sent again whole)."""
        with self._changed:
            streams = [bytes(c) for c in self.connections]
        return [ticket for stream in streams for ticket in split_tickets(stream)]

    def numbers(self) -> list[str | None]:
        return [ticket_number(ticket) for ticket in self.tickets()]

    def wait_for_tickets(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """The tickets once at least ``count`` have arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(tickets := self.tickets()) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(tickets)} tickets of {count} after {timeout} s"
                self._changed.wait(left)
        return tickets

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._running:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._changed:
                if not self._running:
                    client.close()
                    return
                self._clients.append(client)
                received = bytearray()
                self.connections.append(received)
            self._spawn(self._serve, client, received)

    def _serve(self, client: socket.socket, received: bytearray) -> None:
        scanned = 0  # queries before this offset are answered
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                chunk = b""
            with self._changed:
                received += chunk
                self._changed.notify_all()
            if not chunk:
                return
            # A query may straddle two chunks; it is answered once whole.
            for query in _QUERY.finditer(received, max(0, scanned - 2)):
                if query.end() > scanned:
                    answer = status_byte(query[0][2], self.paper)
                    if self.answers and answer is not None:
                        with contextlib.suppress(OSError):
                            client.sendall(bytes([answer]))
            scanned = len(received)
