"""The device link of a real ``hall serve``: SIGTERM closes each device's link with 1001 and
journals nothing (the devices come back to the next server), the jobs not yet acked wait in the
journal for it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api.conftest import BASE, KIOSK, PASSWORD
from tests.support.server import ServerProcess

HELLO = json.dumps({"type": "hello", "token": "demo-printer-token", "agent": "test/1"})


def journaled(server: ServerProcess, *types: str) -> list[dict[str, object]]:
    login = httpx.post(
        f"{server.url}{BASE}/managers/login",
        json={"username": "manager", "password": PASSWORD},
        timeout=10,
    )
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    entries = httpx.get(f"{server.url}{BASE}/journal?limit=1000", headers=auth, timeout=10).json()
    return [e["event"] for e in entries if e["event"]["type"] in types]


def test_a_stopping_server_closes_device_links_with_1001_and_journals_nothing(
    tmp_path: Path,
) -> None:
    # Heartbeats long enough that the restarted server does not give up on the printer here.
    options = ("--data", str(tmp_path), "--device-heartbeat", "20")
    server = ServerProcess(*options, log=tmp_path / "server.log")
    with server:
        issued = httpx.post(
            f"{server.url}{BASE}/tickets", json={"category": "general"}, headers=KIOSK, timeout=10
        )
        assert issued.status_code == 201, issued.text
        ticket = issued.json()["id"]
        url = server.url.replace("http://", "ws://") + f"{BASE.replace('/api', '/ws')}/devices"
        with connect(url) as ws:
            ws.send(HELLO)
            assert json.loads(ws.recv(10))["type"] == "welcome"
            job = json.loads(ws.recv(10))
            assert job["type"] == "print" and job["id"] == ticket  # the kiosk's printer
            assert job["ticket"]["url"].startswith(f"{server.url}/phone/")  # the Host it used
            assert server.process is not None
            server.process.terminate()
            frames = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frames.append(json.loads(ws.recv(10)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert [f["error"] for f in frames if f["type"] == "error"] == ["shutting_down"]
        server.stop()
        server.start()
        health = journaled(server, "device_reported")
        assert [(e["device"], e["status"]) for e in health] == [("printer-1", "online")]
        with connect(url) as ws:  # not acked: sent again by the next server
            ws.send(HELLO)
            assert json.loads(ws.recv(10))["type"] == "welcome"
            assert json.loads(ws.recv(10))["id"] == ticket
