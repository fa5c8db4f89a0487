"""What every WebSocket feed shares (the raw event feed here, the screens in displays/): the
connection caps, reading a client that has nothing to say, and sending to one that may be gone.

One :class:`Connections` counts both kinds together: they cost the same (a socket, a task or two,
a queue) out of one process, and separate counts would give one address twice the cap. The caps
are ``hall serve --max-screens`` and ``--max-screens-per-address``.
"""

from __future__ import annotations

from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from hall.api.errors import TooManyAttempts


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
