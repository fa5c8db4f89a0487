"""Bounds on what a client may send, checked before routing work, auth or JSON decoding.

Hall requests are small JSON commands (a category, a reason): 16 KiB is hundreds of times the
largest, and no body is nested more than two levels. Decoding a body nested ~1,000 deep raises
``RecursionError`` inside the JSON decoder, so depth is checked on the raw bytes first.
"""

from __future__ import annotations

import contextlib
import re
import socket
from asyncio import BaseTransport
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from hall.api.errors import BodyTooDeep, BodyTooLarge, PathWithNul

MAX_BODY_BYTES = 16 * 1024
MAX_BODY_DEPTH = 16
# Clients of the feeds send nothing but WebSocket pings: uvicorn refuses a larger frame (1009);
# the app closes on any message (1008, hall/api/feeds.py).
MAX_FRAME_BYTES = 4 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def too_deep(body: bytes, limit: int = MAX_BODY_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects more than ``limit`` levels (strings ignored)."""
    if body.count(b"[") + body.count(b"{") <= limit:  # the usual case: no scan needed
        return False
    level = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", body)):
        level += 1 if bracket[0] in b"[{" else -1
        if level > limit:
            return True
    return False


class BodyLimits:
    """ASGI middleware: reads the HTTP body (at most ``MAX_BODY_BYTES``), refuses it when too
    large (413) or too deep (400), and hands the same bytes on to the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "\x00" in scope["path"]:  # %00: os.stat() of a static file raised, a 500
            raise PathWithNul("a path may not contain a NUL character")
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"a request body may have at most {MAX_BODY_BYTES} bytes")
        chunks: list[bytes] = []
        size, last = 0, None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                last = message  # a disconnect: let the route see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BodyTooLarge(f"a request body may have at most {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if too_deep(body):
            raise BodyTooDeep(f"a request body may nest at most {MAX_BODY_DEPTH} levels")
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return last if last is not None else await receive()

        await self.app(scope, replay, send)


def uvicorn_limits() -> dict[str, Any]:
    """Options for uvicorn that enforce the same bounds at the protocol level. And the client's
    address is the connection's: uvicorn would otherwise believe an X-Forwarded-For header from
    any local client, which then picks the address the login limits count."""
    return {"ws_max_size": MAX_FRAME_BYTES, "proxy_headers": False, "ws": _bounded_websocket()}


# The kernel's send buffer of a WebSocket connection (Linux doubles it). Left to autotuning it
# grows to 4 MiB here: a screen that stops reading then soaks up some 13,000 frames before the
# server notices (and holds that memory), instead of being resynced with the view after about
# a hundred. Screens get small frames; 64 KiB is hundreds of them.
WS_SEND_BUFFER = 64 * 1024


def _bounded_websocket() -> type[Any]:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class BoundedWebSocket(WebSocketsSansIOProtocol):
        """uvicorn's WebSocket protocol with a bounded kernel send buffer."""

        def connection_made(self, transport: BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WS_SEND_BUFFER)
            super().connection_made(transport)

    return BoundedWebSocket
