"""For the operator's tools: ``/health`` (the process answers), ``/ready`` (every hall replayed and
its journal answering now: 200, else 503 naming each hall that is not and why) and ``/metrics``
(Prometheus text, hall/metrics.py). All three are cheap and need no token.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hall.api.errors import error_body

# A journal that takes longer than this to say its version is as good as stopped for a screen.
READY_TIMEOUT = 1.0


@get("/health", tags=["operating"])
async def health() -> dict[str, str]:
    """Alive: 200 whenever the process answers (restart it when this fails)."""
    return {"status": "alive"}


@get("/ready", tags=["operating"])
async def ready(state: State) -> Response[dict[str, Any]]:
    """200 when every hall is replayed and its journal answers within a second; else 503 with
    ``detail.halls``: each hall's problem (send no traffic here meanwhile)."""
    service = state.service
    halls = [config.hall.id for config in service.configs]
    problems = await asyncio.gather(*(_problem(service, hall) for hall in halls))
    report = {hall: problem or "ready" for hall, problem in zip(halls, problems, strict=True)}
    if not any(problems):
        return Response({"status": "ready", "halls": report})
    bad = ", ".join(hall for hall, problem in zip(halls, problems, strict=True) if problem)
    body = error_body("not_ready", f"not ready: {bad}", {"halls": report})
    return Response(body, status_code=503)


async def _problem(service: Any, hall: str) -> str | None:
    engine = service.engines.get(hall)
    if engine is None or service.journal is None:
        return "not started: its journal has not been replayed yet"
    if engine._stale:  # an append failed and so did the replay after it
        return "its state is being rebuilt from the journal"
    if service.cluster is not None:
        cut: str | None = service.cluster.cut_off_from(hall)
        if cut is not None:
            return cut
    try:
        await asyncio.wait_for(service.journal.version(hall), READY_TIMEOUT)
    except TimeoutError:
        return f"the journal did not answer within {READY_TIMEOUT:g} s"
    except Exception as exc:  # any failure of the store, said without its internals
        return f"the journal failed ({type(exc).__name__})"
    return None


@get("/metrics", media_type=MediaType.TEXT, include_in_schema=False)
async def metrics(state: State) -> Response[bytes]:
    """Prometheus text format; computed in the event loop, between two writer steps."""
    body = generate_latest(state.service.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@get("/api/cluster", tags=["operating"])
async def cluster(state: State) -> dict[str, Any]:
    """Which process writes each hall (over Redis: the lease holder; else this one), and the
    live processes of the region. No personal data."""
    service = state.service
    if service.cluster is not None:
        found: dict[str, Any] = service.cluster.status()
        return found
    return {
        "node": None,
        "connected": True,
        "nodes": [],
        "halls": {
            hall: {"writer": None, "leading": engine.leading, "version": engine.state.version}
            for hall, engine in service.engines.items()
        },
    }


ROUTES = [health, ready, metrics, cluster]
