"""What every WebSocket feed shares (the raw event feed here, the screens in displays/): the
connection caps, reading a client that has nothing to say, and sending to one that may be gone.

One :class:`Connections` counts both kinds together: they cost the same (a socket, a task or two,
a queue) out of one process, and separate counts would give one address twice the cap. The caps
are ``hall serve --max-screens`` and ``--max-screens-per-address``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from hall.api.errors import TooManyAttempts

CLOSE_SECONDS = 1.0  # how long a refusal may wait on a client that does not read

_SPOKE = msgspec.json.encode(
    {
        "type": "error",
        "error": "client_message",
        "message": "a feed's client sends nothing (WebSocket pings are fine): closing (1008)",
    }
).decode()


class TooManyConnections(TooManyAttempts):
    code = "too_many_connections"


class Connections:
    """Live feed connections, capped in all and per client address."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total, self.max_per_address = max_total, max_per_address
        self.total = 0
        self.per_address: dict[str, int] = {}

    def admit(self, address: str) -> None:
        """Count one more from ``address``, or raise TooManyConnections (429: close 4429)."""
        if self.total >= self.max_total:
            raise TooManyConnections(
                f"this server takes at most {self.max_total} feeds (screens and event feeds)"
            )
        if self.per_address.get(address, 0) >= self.max_per_address:
            raise TooManyConnections(
                f"this server takes at most {self.max_per_address} feeds "
                "(screens and event feeds) from one address"
            )
        self.total += 1
        self.per_address[address] = self.per_address.get(address, 0) + 1

    def release(self, address: str) -> None:
        self.total -= 1
        left = self.per_address[address] - 1
        if left:
            self.per_address[address] = left
        else:
            del self.per_address[address]


def address(socket: WebSocket[Any, Any, Any]) -> str:
    return socket.client.host if socket.client else ""


async def send(socket: WebSocket[Any, Any, Any], text: str) -> None:
    """Send a text frame; a client the server already closed is a disconnect.

    uvicorn closes a connection itself (a keepalive ping not answered) without telling the app
    until the socket is gone: a send in between raises RuntimeError ("Unexpected ASGI message
    'websocket.send', after sending 'websocket.close'"). That is a client gone, not a bug."""
    try:
        await socket.send_text(text)
    except RuntimeError as exc:
        if "after sending 'websocket.close'" not in str(exc):
            raise
        raise WebSocketDisconnect(detail="closed by the server") from exc


async def drain(socket: WebSocket[Any, Any, Any]) -> None:
    """Wait until the client goes away. A feed's client has nothing to say: its first text or
    binary message closes the connection with 1008 (policy violation), after an error frame
    saying why (90 screens once sent 694,000 small frames in 15 s, each read and ignored, and
    slowed every command). WebSocket ping and pong frames never reach here: the protocol layer
    answers them. Frames over 4 KiB are refused before (uvicorn's ws_max_size, 1009)."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message["type"] == "websocket.receive":
            break
    # Bounded: a client that floods and does not read must not hold this task.
    with contextlib.suppress(WebSocketDisconnect, OSError, TimeoutError):
        async with asyncio.timeout(CLOSE_SECONDS):
            await send(socket, _SPOKE)
            with contextlib.suppress(RuntimeError):  # uvicorn closed it already
                await socket.close(code=1008, reason="clients send nothing")
