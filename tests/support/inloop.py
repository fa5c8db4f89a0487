"""A Litestar app behind a real uvicorn on a free port, in the test's own event loop: the test
clients hand requests to an app one at a time, so they cannot show a race, a real socket's
keepalive or a WebSocket ping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from litestar import Litestar

from hall.api.limits import uvicorn_limits
from tests.support.redis import free_port


@contextlib.asynccontextmanager
async def uvicorn_serving(app: Litestar, **options: Any) -> AsyncIterator[uvicorn.Server]:
    """The app served as ``hall serve`` configures uvicorn (plus ``options``) until the block
    ends; its address is ``http://127.0.0.1:{server.config.port}``."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_config=None, **{**uvicorn_limits(), **options}
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await task
