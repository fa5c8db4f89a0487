"""A TCP proxy in front of a real Redis that can lose replies, as a network does.

:class:`ReplyDroppingProxy` forwards every connection to Redis. When ``drop`` is ``"appends"``,
a client chunk holding our append script (``EVALSHA`` of its SHA1, or ``EVAL`` of its text; not
the read script) is forwarded to Redis, which
runs it, and then the client side is closed before the reply comes back: the append lands but
its writer cannot know. With ``"all"`` every command's reply is lost that way. The proxy runs its
own event loop in a thread, so that sync tests and server processes can use it alike.

:meth:`ReplyDroppingProxy.cut` partitions the link as a network does, without a reset: nothing
passes either way and new connections hang, until :meth:`~ReplyDroppingProxy.heal`, when what
was held back is delivered (TCP would have retransmitted it), late. ``sent`` keeps every byte
each connection sent upstream, for telling which commands went through.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from types import TracebackType
from typing import Literal

from hall.journal.redis import _APPEND
from tests.support.redis import free_port

APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest().encode()

Drop = Literal["appends", "all"] | None


class ReplyDroppingProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.drop: Drop = None
        self.dropped = 0  # replies lost so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._open = asyncio.Event()
        self._open.set()
        # (time.time() when forwarded, connection number, bytes)
        self.sent: list[tuple[float, int, bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _drops(self, chunk: bytes) -> bool:
        if self.drop == "all":
            return True
        return self.drop == "appends" and (APPEND_SHA in chunk or b"XADD" in chunk)

    async def _pipe_up(
        self,
        reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        connection = id(reader)
        while chunk := await reader.read(65536):
            await self._open.wait()
            self.sent.append((time.time(), connection, chunk))
            upstream.write(chunk)
            await upstream.drain()
            if self._drops(chunk):
                self.dropped += 1
                client.close()  # the reply, and anything after it, never reaches the client
                await asyncio.sleep(0.1)  # Redis keeps the connection until it has run it
                break
        upstream.close()

    async def _pipe_down(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            await self._open.wait()
            if client.is_closing():
                continue  # drain what Redis answers so that it finishes the command
            client.write(chunk)
            await client.drain()
        client.close()

    async def _serve(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        await self._open.wait()
        try:
            up_reader, upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            client.close()
            return
        self._writers += [client, upstream]
        with contextlib.suppress(Exception):
            await asyncio.gather(
                self._pipe_up(reader, client, upstream), self._pipe_down(up_reader, client)
            )
        client.close()
        upstream.close()

    def start(self) -> ReplyDroppingProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop
        )
        self._server = started.result(timeout=5)
        return self

    def cut(self) -> None:
        """Let nothing through, either way, from now until :meth:`heal`."""
        self._loop.call_soon_threadsafe(self._open.clear)

    def heal(self) -> None:
        self._loop.call_soon_threadsafe(self._open.set)

    def sent_since(self, since: float) -> list[bytes]:
        """What each connection sent upstream from ``since`` (time.time()) on."""
        streams: dict[int, bytes] = {}
        for at, connection, chunk in list(self.sent):
            if at >= since:
                streams[connection] = streams.get(connection, b"") + chunk
        return list(streams.values())

    async def _shutdown(self) -> None:
        self._open.set()
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.sleep(0.05)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> ReplyDroppingProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
