"""A burst of real clients against real servers, and the bookkeeping of what was acknowledged.

Kiosks (or staff) issue tickets, windows call, start and finish them. Every command carries an
Idempotency-Key, so the journal tells which request made which event. Under faults
(``patient``), a window retries a 503 or a lost answer with the same key until it gets one, as a
client should; an issuer records each request's outcome by its key and moves on with a new one:
acknowledged (201: must be in the journal once), refused (503 ``not_writer``: nothing was done)
or unsure (503 unavailable, or no answer: done at most once).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

HALL = "demo-county"
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}
CATEGORIES = ["general", "social", "medical", "collection"]
WINDOWS = {"1": "zhangwei", "2": "lina", "3": "manager"}


@dataclass
class Acked:
    issued: dict[str, str] = field(default_factory=dict)  # ticket id -> number
    called: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)  # key of an acknowledged issue -> ticket
    refused: set[str] = field(default_factory=set)  # keys answered 503 not_writer
    unsure: set[str] = field(default_factory=set)  # keys answered 503 unavailable, or nothing
    # (sent, answered, server URL, status; 0: no answer) of each issue request
    log: list[tuple[float, float, str, int]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.issued) + len(self.called) + len(self.started) + len(self.finished)

    def first_success_after(self, moment: float, hall_url: str | None = None) -> float | None:
        """When the first issue request sent after ``moment`` was acknowledged (None: none was);
        with ``hall_url``, through that server only."""
        times = [
            answered
            for sent, answered, url, status in self.log
            if sent > moment and status == 201 and hall_url in (None, url)
        ]
        return min(times, default=None)


def new_key(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:16]}"


async def issue(
    client: httpx.AsyncClient,
    acked: Acked,
    rng: random.Random,
    auth: dict[str, str],
    *,
    hall: str = HALL,
    patient: bool = False,
) -> bool:
    """Issue one ticket and record the outcome; False if the server refused the connection
    (nothing happened). Without ``patient`` anything but a 201 fails."""
    key = new_key("issue")
    body = {"category": rng.choice(CATEGORIES)}
    headers = {**auth, "Idempotency-Key": key}
    sent = time.time()
    acked.unsure.add(key)  # until answered: a request cancelled in flight may have landed
    try:
        response = await client.post(f"/api/halls/{hall}/tickets", json=body, headers=headers)
    except httpx.ConnectError:
        acked.unsure.discard(key)
        if not patient:
            raise
        return False
    except httpx.HTTPError:
        if not patient:
            raise
        acked.log.append((sent, time.time(), str(client.base_url), 0))
        return True
    acked.log.append((sent, time.time(), str(client.base_url), response.status_code))
    if response.status_code == 201:
        ticket = response.json()
        acked.unsure.discard(key)
        acked.issued[ticket["id"]] = ticket["number"]
        acked.keys[key] = ticket["id"]
    elif patient and response.status_code == 503:
        if response.json()["error"] == "not_writer":
            acked.unsure.discard(key)
            acked.refused.add(key)
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"{response.status_code} {response.text}")
    return True


async def issuer(
    clients: Sequence[httpx.AsyncClient],
    acked: Acked,
    rng: random.Random,
    auth: dict[str, str],
    *,
    hall: str = HALL,
    patient: bool = False,
    pause: float = 0.0,
) -> None:
    """Issue tickets through ``clients`` (one picked at random each time) until cancelled; with
    ``patient``, a server that refuses connections is left out from then on."""
    live = list(clients)
    while live:
        client = rng.choice(live)
        if not await issue(client, acked, rng, auth, hall=hall, patient=patient):
            live.remove(client)
        if pause:
            await asyncio.sleep(pause)


async def probe(
    client: httpx.AsyncClient, acked: Acked, every: float = 0.05, hall: str = HALL
) -> None:
    """Send a kiosk's ticket every ``every`` seconds, not waiting for the ones before (which
    may hang on a writer that is gone), until cancelled: when a hall is served again shows
    within ``every``."""
    rng, sent = random.Random(), []
    try:
        while True:
            sent.append(
                asyncio.create_task(issue(client, acked, rng, KIOSK, hall=hall, patient=True))
            )
            await asyncio.sleep(every)
    finally:
        await stop(sent)


async def command(
    client: httpx.AsyncClient, path: str, auth: dict[str, str], patience: float = 0.0
) -> httpx.Response:
    """POST a command; for ``patience`` seconds a 503 or a lost answer is retried under the
    same Idempotency-Key (the first answer comes back; nothing is done twice)."""
    headers = {**auth, "Idempotency-Key": new_key("window")}
    give_up = time.monotonic() + patience
    while True:
        try:
            response = await client.post(path, headers=headers, json={})
        except httpx.HTTPError:
            if time.monotonic() >= give_up:
                raise
        else:
            if response.status_code != 503 or time.monotonic() >= give_up:
                assert response.status_code == 200, response.text
                return response
        await asyncio.sleep(0.05)


async def window(
    client: httpx.AsyncClient,
    window_id: str,
    token: str,
    acked: Acked,
    *,
    hall: str = HALL,
    patience: float = 0.0,
) -> None:
    """Call, start and finish tickets at one window until cancelled."""
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/halls/{hall}/windows/{window_id}"
    while True:
        response = await command(client, f"{base}/call-next", auth, patience)
        ticket = response.json()["ticket"]
        if ticket is None:
            await asyncio.sleep(0.005)
            continue
        acked.called.add(ticket["id"])
        for action, done in (("start", acked.started), ("finish", acked.finished)):
            await command(client, f"{base}/{action}", auth, patience)
            done.add(ticket["id"])


async def login(client: httpx.AsyncClient, window_id: str, *, hall: str = HALL) -> str:
    """Log the demo hall's staff member of ``window_id`` in there; their bearer token."""
    response = await client.post(
        f"/api/halls/{hall}/windows/{window_id}/login",
        json={"username": WINDOWS[window_id], "password": "hall-demo"},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def check_tasks(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """A worker that failed fails the test now (not after the fault, hidden among others)."""
    for task in tasks:
        if task.done() and not task.cancelled():
            task.result()


async def stop(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
