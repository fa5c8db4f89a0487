"""The OpenAPI document tells the truth (schemathesis against a real server finds nothing), and
people can read it on a closed network."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar, post
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import TestClient

from hall.api import openapi
from hall.api.auth import requires
from hall.api.limits import MAX_FRAME_BYTES
from tests.api.conftest import BASE, HALL, KIOSK, PASSWORD
from tests.support.server import ServerProcess

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("openapi")
    with ServerProcess("--data", str(data), log=data / "server.log") as running:
        yield running


def test_every_error_is_declared_with_the_body_the_server_sends(
    client: TestClient[Litestar],
) -> None:
    document = client.get("/schema/openapi.json").json()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message", "detail"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operations = {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    for (method, path), op in operations.items():
        for status, response in op["responses"].items():
            if not status.startswith("2"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, status)
        if method == "POST":
            assert {"400", "401", "403", "404", "409", "413", "422", "429", "503"} <= set(
                op["responses"]
            ), path
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            body = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            assert body["additionalProperties"] is False, path
    guarded = {key for key, op in operations.items() if op.get("security") == [{"bearer": []}]}
    assert ("POST", "/api/halls/{hall}/tickets") in guarded
    assert ("POST", "/api/halls/{hall}/windows/{window}/call-next") in guarded
    assert ("POST", "/api/halls/{hall}/windows/{window}/login") not in guarded
    assert ("GET", "/api/halls/{hall}/snapshot") not in guarded
    # Every guarded command takes the retry key the server honours.
    for method, path in guarded - {("GET", p) for _, p in guarded}:
        names = {p["name"] for p in operations[method, path].get("parameters", [])}
        assert "Idempotency-Key" in names, path


def test_a_405_says_which_methods_are_allowed(client: TestClient[Litestar]) -> None:
    response = client.request("TRACE", "/api/halls")
    assert response.status_code == 405
    assert response.headers["allow"] and response.json()["error"] == "method_not_allowed"


def test_the_api_viewer_loads_nothing_from_outside(client: TestClient[Litestar]) -> None:
    page = client.get("/schema/swagger")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page.text)
    assert len(urls) >= 3
    for url in urls:
        assert url.startswith("/"), url  # this server, no CDN
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content, url
    assert not re.search(r"https?://", page.text.replace("http://127.0.0.1", ""))


def _login(server: ServerProcess, window: str, username: str) -> str:
    response = httpx.post(
        f"{server.url}{BASE}/windows/{window}/login",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def _ticket(server: ServerProcess) -> str:
    response = httpx.post(
        f"{server.url}{BASE}/tickets", json={"category": "general"}, headers=KIOSK, timeout=10
    )
    assert response.status_code == 201, response.text
    ticket: str = response.json()["id"]
    return ticket


def _case(server: ServerProcess, staff: str) -> str:
    """A bad rating from the phone on a ticket served at window 1: an open case."""
    ticket = httpx.post(
        f"{server.url}{BASE}/tickets", json={"category": "general"}, headers=KIOSK, timeout=10
    ).json()
    for action, body in (("call-next", {}), ("start", {}), ("finish", {"outcome": "done"})):
        response = httpx.post(
            f"{server.url}{BASE}/windows/1/{action}",
            json=body,
            headers={"Authorization": f"Bearer {staff}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    rating = {"secret": ticket["secret"], "level": 1, "reasons": ["slow"]}
    rated = httpx.post(
        f"{server.url}{BASE}/tickets/{ticket['id']}/visitor-rating", json=rating, timeout=10
    )
    assert rated.status_code == 200, rated.text
    case: str = ticket["id"]
    return case


def _alert(server: ServerProcess, manager: str) -> str:
    """An alert of the live view raised for the whole run: a project ticket (a category no window
    open in the run serves) waits for nobody."""
    response = httpx.post(
        f"{server.url}{BASE}/tickets",
        json={"category": "project"},
        headers={"Authorization": f"Bearer {manager}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return f"unserved:project:{response.json()['id']}"


def test_schemathesis_finds_nothing(server: ServerProcess, tmp_path: Path) -> None:
    """All checks, all phases (stateful too), a bounded number of examples: zero failures."""
    staff = _login(server, "1", "zhangwei")
    manager = _login(server, "3", "manager")
    env = {
        **os.environ,
        "HALL_URL": server.url,
        "CASE": _case(server, staff),
        "STAFF_TOKEN": staff,
        "LEAVING_TOKEN": _login(server, "2", "lina"),
        "LOGOUT_TOKEN": _login(server, "5", "liuyang"),
        "PASSWORD_TOKEN": _login(server, "8", "chenjing"),
        "MANAGER_TOKEN": manager,
        "ALERT": _alert(server, manager),
        "TICKET": _ticket(server),
    }
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/schema/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
    ]
    started = time.monotonic()
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False
    )
    took = time.monotonic() - started
    summary = run.stdout[-6000:]
    assert run.returncode == 0 and "No issues found" in summary, summary
    print(f"schemathesis: {took:.1f} s\n{summary[-1500:]}")


def test_the_server_refuses_feed_frames_larger_than_a_client_needs(server: ServerProcess) -> None:
    async def send_big() -> Any:
        url = server.url.replace("http://", "ws://") + f"/ws/halls/{HALL}/events"
        async with websockets.connect(url) as ws:
            await ws.recv()  # the snapshot
            await ws.send("x" * (MAX_FRAME_BYTES * 4))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                for _ in range(10):
                    await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd

    received = asyncio.run(send_big())
    assert received is not None and received.code == 1009, received
    # uvicorn's own limit (hall serve's ws_max_size), before the frame reaches the app, whose
    # check (test_input.py) closes with the reason "message too big".
    assert received.reason != "message too big", received


def test_a_route_that_lists_requires_among_its_guards_is_refused_at_start_up() -> None:
    # requires() is the route's opt, checked by hall.api.auth.Authorize; as a guard it would
    # never run, and the route would answer anyone (a 500 at best).
    @post("/things", guards=[requires("manager")])  # type: ignore[list-item]
    async def thing() -> None:
        return None

    with pytest.raises(ImproperlyConfiguredException, match="opt=requires"):
        openapi.declare_errors(Litestar([thing], openapi_config=openapi.config()))
