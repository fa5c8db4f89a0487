"""A real server on a Redis that loses replies or stops answering: clients get a 503 within a
bound, a retry with the same Idempotency-Key gets the first answer, and nothing is doubled."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from hall.domain.events import TicketIssued
from hall.journal.redis import RedisJournal
from tests.support.proxy import ReplyDroppingProxy
from tests.support.redis import PrivateRedis
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.redis]

BASE = "/api/halls/demo-county"
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}
GENERAL = {"category": "general"}


def numbers_in(url: str) -> list[str]:
    async def read() -> list[str]:
        journal = RedisJournal(url)
        try:
            records = await journal.read("demo-county")
        finally:
            await journal.close()
        return [r.event.number for r in records if isinstance(r.event, TicketIssued)]

    return asyncio.run(read())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    (tmp_path / "redis").mkdir()
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


def serve(tmp_path: Path, url: str) -> ServerProcess:
    args = [
        "--redis",
        url,
        "--data",
        str(tmp_path),
        "--store-timeout",
        "1",
        "--read-timeout",
        "0.5",
    ]
    return ServerProcess(*args, log=tmp_path / "server.log")


def test_a_retry_after_a_lost_reply_gets_the_same_ticket(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    with (
        ReplyDroppingProxy(redis_server.port) as proxy,
        serve(tmp_path, proxy.url) as server,
        httpx.Client(base_url=server.url, headers=KIOSK, timeout=10) as client,
    ):
        assert client.post(f"{BASE}/tickets", json=GENERAL).status_code == 201
        key = {"Idempotency-Key": "kiosk-retry-0001"}
        proxy.drop = "all"  # the append lands, and neither its reply nor a read comes back
        lost = client.post(f"{BASE}/tickets", json=GENERAL, headers=key)
        assert lost.status_code == 503, lost.text
        assert proxy.dropped >= 1
        proxy.drop = None
        first = client.post(f"{BASE}/tickets", json=GENERAL, headers=key)
        again = client.post(f"{BASE}/tickets", json=GENERAL, headers=key)
        assert first.status_code == again.status_code == 201, first.text
        assert first.json()["id"] == again.json()["id"]
        assert first.json()["number"] == "A002"
        other = client.post(f"{BASE}/tickets", json={"category": "social"}, headers=key)
        assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
        bad = client.post(f"{BASE}/tickets", json=GENERAL, headers={"Idempotency-Key": "a b"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_idempotency_key"
    assert numbers_in(redis_server.url) == ["A001", "A002"]


def test_a_stalled_redis_answers_503_in_bounded_time_and_the_hall_recovers(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    assert redis_server.process is not None
    pid = redis_server.process.pid
    with (
        serve(tmp_path, redis_server.url) as server,
        httpx.Client(base_url=server.url, headers=KIOSK, timeout=30) as client,
    ):
        assert client.post(f"{BASE}/tickets", json=GENERAL).status_code == 201
        key = {"Idempotency-Key": "kiosk-stalled-01"}
        os.kill(pid, signal.SIGSTOP)
        try:
            took: dict[str, float] = {}
            answers: dict[str, int] = {}

            def command() -> None:
                started = time.monotonic()
                answers["command"] = client.post(
                    f"{BASE}/tickets", json=GENERAL, headers=key
                ).status_code
                took["command"] = time.monotonic() - started

            writer = threading.Thread(target=command)
            writer.start()
            time.sleep(0.2)  # the writer is now stuck in the append, holding the hall
            for name, path in [("snapshot", "/snapshot"), ("lookup", "/tickets/A001")]:
                started = time.monotonic()
                answers[name] = client.get(f"{BASE}{path}").status_code
                took[name] = time.monotonic() - started
            started = time.monotonic()
            ws_url = server.url.replace("http", "ws") + "/ws/halls/demo-county/events"
            with connect(ws_url, open_timeout=5) as feed:
                # No snapshot it cannot vouch for, and no hang: an error, then "try again later".
                assert json.loads(feed.recv(timeout=3))["error"] == "unavailable"
                with pytest.raises(ConnectionClosed) as closed:
                    feed.recv(timeout=3)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            took["feed"] = time.monotonic() - started
            screen_url = server.url.replace("http", "ws") + "/ws/halls/demo-county/screens/hall"
            with connect(screen_url, open_timeout=5) as screen:  # a screen's first view: the same
                assert json.loads(screen.recv(timeout=3))["error"] == "unavailable"
                with pytest.raises(ConnectionClosed) as closed:
                    screen.recv(timeout=3)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            writer.join(timeout=10)
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        while (
            retry := client.post(f"{BASE}/tickets", json=GENERAL, headers=key)
        ).status_code != 201:
            assert retry.status_code == 503 and time.monotonic() - resumed < 10
            time.sleep(0.05)
        took["recovery"] = time.monotonic() - resumed
        print("stalled redis, seconds:", {k: round(v, 2) for k, v in took.items()})
        assert answers == {"command": 503, "snapshot": 503, "lookup": 503}
        assert took["command"] < 4 and max(took["snapshot"], took["lookup"], took["feed"]) < 2
        assert took["recovery"] < 3
        assert retry.json()["number"] == "A002"
        snapshot = client.get(f"{BASE}/snapshot").json()
        assert snapshot["version"] == 3  # the day, A001, A002: nothing lost, nothing doubled
    assert numbers_in(redis_server.url) == ["A001", "A002"]
