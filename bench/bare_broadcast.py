"""The baseline of bench/screens.py: the least a WebSocket broadcast server can do.

    python bench/bare_broadcast.py PORT

Every connection except ``/publish`` is a screen: it gets nothing on connect and every frame
published afterwards. A text message on ``/publish`` is sent as is to every screen with
``websockets.broadcast`` (encoded once, written to each connection's transport at once, no
queue, no task per screen, no backpressure). No compression, like the hall server. Same event
loop as ``hall serve`` (uvloop where installed), so the two differ only in what they do.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

SCREENS: set[ServerConnection] = set()


async def handler(connection: ServerConnection) -> None:
    if connection.request is not None and connection.request.path == "/publish":
        async for message in connection:
            broadcast(SCREENS, message)
        return
    SCREENS.add(connection)
    try:
        await connection.wait_closed()
    finally:
        SCREENS.discard(connection)


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=1 << 20, backlog=2048):
        print("ready", flush=True)
        await stop


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(int(sys.argv[1])))
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
