"""The screens of bench/screens.py: many WebSocket clients in one process of their own.

    python bench/screen_clients.py        (driven by bench/screens.py over stdin/stdout)

One JSON command per line on stdin, one JSON answer per line on stdout. Between answers it also
writes ``{"done": MARKER}`` once every open screen of a group has received the frame that
carries MARKER (a call's ticket number, or ticket id on the raw event feed), so the driver sends
the next call only when the last one has reached everyone.

Each screen is the ``websockets`` client protocol (its sans-I/O ``ClientProtocol``) on a plain
asyncio transport: it offers no permessage-deflate (the hall server has it off) and sends no
keepalive pings of its own (a browser sends none). The clock is read as each chunk of bytes
arrives (``time.monotonic()``, CLOCK_MONOTONIC, the same clock in every process on the machine),
then only what names the calls is decoded. The library's asyncio ``connect()`` would wake one task
per screen per frame: with a thousand screens in one process that costs the bench more than the
broadcast it measures, and the last screen's time would be mostly the first 999's.

Screens are spread over several loopback source addresses (127.0.0.x), as a hall's screens each
have their own, so the server's per-address cap applies to each address, not to the whole bench.

A *stalled* screen is a raw socket with a small receive buffer that does the opening handshake
and then never reads again, so that the server's send buffers fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any

import msgspec
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri


class _Call(msgspec.Struct):
    number: str = ""


class _Calls(msgspec.Struct):
    calls: list[_Call] = []


class _Event(msgspec.Struct):
    type: str = ""
    ticket: str = ""


class _Frame(msgspec.Struct):
    type: str = ""
    changes: _Calls | None = None  # screen feed: delta
    view: _Calls | None = None  # screen feed: full view (newest call first)
    event: _Event | None = None  # raw event feed


_decode = msgspec.json.Decoder(_Frame).decode


def markers(frame: _Frame) -> list[str]:
    """What a frame says was called: ticket numbers (screen feed) or ticket ids (event feed)."""
    if frame.changes is not None:
        return [c.number for c in frame.changes.calls]
    if frame.view is not None:
        return [c.number for c in frame.view.calls]
    if frame.event is not None and frame.event.type == "ticket_called":
        return [frame.event.ticket]
    return []


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Group:
    """The screens connected to one server."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.screens: list[Screen] = []
        self.counts: dict[str, int] = {}
        self.done: set[str] = set()
        self.last_frame = 0.0

    def open_screens(self) -> int:
        return sum(1 for s in self.screens if s.open)

    def seen(self, marker: str) -> None:
        count = self.counts.get(marker, 0) + 1
        self.counts[marker] = count
        if count >= self.open_screens() and marker not in self.done:
            self.done.add(marker)
            emit({"done": marker, "group": self.name, "at": time.monotonic()})


class Screen(asyncio.Protocol):
    """One screen: the ``websockets`` client protocol (sans-I/O) on an asyncio transport. The
    clock is read as the bytes arrive, before anything else is done with them, as a browser's
    socket would; pings are answered by the protocol."""

    def __init__(self, group: Group, url: str) -> None:
        self.group = group
        self.protocol = ClientProtocol(parse_uri(url), max_size=1 << 22)
        self.open = False
        self.seen: dict[str, float] = {}
        self.types: dict[str, int] = {}
        self.close_code: int | None = None
        self.kept: dict[str, str] | None = {} if not group.screens else None  # frames, 1st screen
        loop = asyncio.get_running_loop()
        self.accepted: asyncio.Future[None] = loop.create_future()  # the handshake's answer
        self.opened: asyncio.Future[None] = loop.create_future()  # the first frame
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self.flush()

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif not self.transport.is_closing():
                self.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self.fail(self.protocol.handshake_exc)
                    return
                self.open = True
                self.accepted.set_result(None)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.frame(event.data, at)
        self.flush()
        if self.protocol.close_code is not None:
            self.close_code = self.protocol.close_code

    def frame(self, data: bytes, at: float) -> None:
        frame = _decode(data)
        self.types[frame.type] = self.types.get(frame.type, 0) + 1
        for marker in markers(frame):
            if marker not in self.seen:
                self.seen[marker] = at
                self.group.seen(marker)
                if self.kept is not None:
                    self.kept[marker] = data.decode()
        self.group.last_frame = at
        if not self.opened.done():
            self.opened.set_result(None)

    def fail(self, exc: BaseException) -> None:
        for future in (self.accepted, self.opened):
            if not future.done():
                future.set_exception(exc)
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.close_code = self.protocol.close_code
        self.fail(ConnectionError(f"closed before a frame: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        if self.open:
            self.protocol.send_close(1000)
            self.flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 5)
        except TimeoutError:
            self.transport.abort()


class Stalled:
    """A screen that opens, then never reads: its receive buffer fills, then the server's."""

    def __init__(self, url: str, host: str, rcvbuf: int) -> None:
        rest = url.removeprefix("ws://")
        address, _, path = rest.partition("/")
        server_host, _, port = address.partition(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        # An Ethernet-sized segment: with loopback's 64 KiB one the kernel grows a server's send
        # buffer to ~1 MB for this socket (unless the server bounds it, as the hall server does),
        # which a screen on a LAN would not get.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
        self.sock.bind((host, 0))
        self.sock.settimeout(10)
        self.sock.connect((server_host, int(port)))
        self.server_port = int(port)
        self.port = self.sock.getsockname()[1]
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:  # the 101 response (and maybe a frame after it); no more
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("the server closed the stalled screen's connection")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"stalled screen refused: {head[:80]!r}")

    def info(self) -> dict[str, Any]:
        """Bytes waiting unread at the screen, and at the server's end of the connection."""
        unread = struct.unpack("i", fcntl.ioctl(self.sock, termios.FIONREAD, b"\0\0\0\0"))[0]
        server = tcp_queues(self.server_port, self.port)
        return {"client_unread": unread, "server_send_q": server}

    def close(self) -> None:
        self.sock.close()


def tcp_queues(local_port: int, remote_port: int) -> int | None:
    """The send queue (bytes not yet acknowledged by the peer) of the socket local_port ->
    remote_port on this machine, from /proc/net/tcp; None when there is no such socket."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return int(fields[4].split(":")[0], 16)
    return None


class Clients:
    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.stalled: dict[str, Stalled] = {}

    async def connect(
        self, group: str, url: str, count: int, hosts: list[str], first: bool = True
    ) -> Any:
        target = self.groups.setdefault(group, Group(group))
        gate = asyncio.Semaphore(50)
        started = time.monotonic()
        failures: list[str] = []

        host, _, port = url.removeprefix("ws://").partition("/")[0].partition(":")
        loop = asyncio.get_running_loop()

        async def one(i: int) -> None:
            async with gate:
                screen = Screen(target, url)
                try:
                    await loop.create_connection(
                        lambda: screen, host, int(port), local_addr=(hosts[i % len(hosts)], 0)
                    )
                    await asyncio.wait_for(asyncio.shield(screen.accepted), 30)
                    target.screens.append(screen)
                    if first:
                        await asyncio.wait_for(asyncio.shield(screen.opened), 30)
                except Exception as exc:
                    failures.append(repr(exc))

        await asyncio.gather(*(one(i) for i in range(count)))
        return {
            "connected": target.open_screens(),
            "failures": failures[:3],
            "failed": len(failures),
            "seconds": time.monotonic() - started,
        }

    async def quiet(self, ms: float) -> Any:
        """Wait until no screen has received anything for ``ms`` milliseconds."""
        while True:
            last = max((g.last_frame for g in self.groups.values()), default=0.0)
            idle = time.monotonic() - last
            if idle * 1000 >= ms:
                return {"idle": idle}
            await asyncio.sleep(ms / 1000 - idle)

    async def close(self, group: str) -> Any:
        target = self.groups.pop(group)
        await asyncio.gather(*(s.close() for s in target.screens), return_exceptions=True)
        return {"closed": len(target.screens)}

    def results(self, group: str) -> Any:
        """Per marker, when each screen first saw it; then forgets them (the next condition)."""
        target = self.groups[group]
        seen: dict[str, list[float]] = {}
        for screen in target.screens:
            for marker, at in screen.seen.items():
                seen.setdefault(marker, []).append(at)
            screen.seen.clear()
        types: dict[str, int] = {}
        codes: dict[str, int] = {}
        for screen in target.screens:
            for kind, n in screen.types.items():
                types[kind] = types.get(kind, 0) + n
            screen.types.clear()
            if not screen.open:
                codes[str(screen.close_code)] = codes.get(str(screen.close_code), 0) + 1
        target.counts.clear()
        target.done.clear()
        return {"seen": seen, "types": types, "closed": codes, "open": target.open_screens()}

    def sample(self, group: str, marker: str) -> Any:
        """The frame that carried ``marker`` to the group's first screen, as text."""
        return {"frame": self.groups[group].screens[0].kept.get(marker)}


async def serve() -> None:
    clients = Clients()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        op = command.pop("op")
        try:
            if op == "connect":
                answer = await clients.connect(**command)
            elif op == "quiet":
                answer = await clients.quiet(**command)
            elif op == "close":
                answer = await clients.close(**command)
            elif op == "sample":
                answer = clients.sample(**command)
            elif op == "results":
                answer = clients.results(**command)
            elif op == "stall":
                stalled = Stalled(command["url"], command["host"], command.get("rcvbuf", 4096))
                clients.stalled[command["name"]] = stalled
                answer = stalled.info()
            elif op == "stall_info":
                answer = clients.stalled[command["name"]].info()
            elif op == "unstall":
                clients.stalled.pop(command["name"]).close()
                answer = {}
            elif op == "exit":
                break
            else:
                answer = {"error": f"unknown op {op}"}
        except Exception as exc:
            answer = {"error": repr(exc)}
        emit({"answer": op, **answer})
    for name in list(clients.groups):
        with contextlib.suppress(Exception):
            await clients.close(name)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
