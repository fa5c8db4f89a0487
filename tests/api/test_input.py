"""Hostile input: huge, deep and control-character bodies, loose types, and the feed's ``after``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from hall.api.limits import MAX_BODY_BYTES, too_deep
from tests.api.conftest import BASE, HALL, KIOSK, issue, login

FEED = f"/ws/halls/{HALL}/events"
JSON = {"content-type": "application/json"}
CST = timezone(timedelta(hours=8))


def _refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["message"], body


@pytest.mark.parametrize("path", ["/windows/1/login", "/tickets", "/tickets/x/cancel"])
def test_a_deeply_nested_body_is_a_400_before_any_token_is_looked_at(
    client: TestClient[Litestar], path: str
) -> None:
    nested = b"[" * 1000 + b"]" * 1000
    _refused(client.post(BASE + path, content=nested, headers=JSON), 400, "invalid_request")
    deep_object = b'{"a":' * 1000 + b"1" + b"}" * 1000
    _refused(client.post(BASE + path, content=deep_object, headers=JSON), 400, "invalid_request")


def test_a_huge_body_is_refused_with_413(client: TestClient[Litestar]) -> None:
    padded = b'{"category": "general"' + b" " * MAX_BODY_BYTES + b"}"
    response = client.post(f"{BASE}/tickets", content=padded, headers=KIOSK | JSON)
    _refused(response, 413, "body_too_large")

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"category": "general"'
        for _ in range(20):
            yield b" " * 1024
        yield b"}"

    response = client.post(f"{BASE}/tickets", content=chunks(), headers=KIOSK | JSON)
    _refused(response, 413, "body_too_large")


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert not too_deep(b'{"reason": "' + b"[" * 100 + b'"}')
    assert not too_deep(b'{"categories": ["a", "b"]}')
    assert too_deep(b"[" * 17 + b"]" * 17)
    assert not too_deep(b"[" * 16 + b"]" * 16)


@pytest.mark.parametrize(
    "reason",
    [
        "late\x00",
        "a\nb",
        "trailing\n",
        "\x1b[2Jcleared",
        "\x85next",
        "abc\u202egnp.exe",
        "\u2028",
        "x" * 201,
        "",
    ],
)
def test_free_text_with_control_characters_is_refused(
    client: TestClient[Litestar], reason: str
) -> None:
    auth = login(client, "1")
    pause = {"reason": "break", "note": reason}
    response = client.post(f"{BASE}/windows/1/pause", json=pause, headers=auth)
    _refused(response, 400, "invalid_request")
    ticket = issue(client)
    response = client.post(
        f"{BASE}/tickets/{ticket['id']}/cancel",
        json={"reason": "other", "note": reason},
        headers=KIOSK,
    )
    _refused(response, 400, "invalid_request")
    assert client.get(f"{BASE}/tickets/{ticket['id']}").json()["state"] == "waiting"


def test_free_text_in_any_language_is_welcome(client: TestClient[Litestar]) -> None:
    auth = login(client, "1")
    response = client.post(
        f"{BASE}/windows/1/pause", json={"reason": "break", "note": "午休 lunch"}, headers=auth
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "appointment",
    [1700000000, 1700000000.5, True, "1700000000", "2026-13-01T09:00:00+08:00", "2026-11-30"],
)
def test_an_appointment_is_an_iso_time_with_its_zone_never_a_number(
    client: TestClient[Litestar], appointment: object
) -> None:
    body = {"category": "general", "priority": "appointment", "appointment": appointment}
    _refused(client.post(f"{BASE}/tickets", json=body, headers=KIOSK), 400, "invalid_request")


def _slot(delta: timedelta) -> str:
    now = datetime.now(CST).replace(second=0, microsecond=0)
    return (now + delta).isoformat()


@pytest.mark.parametrize(
    "delta", [timedelta(days=-9000), timedelta(hours=-1), timedelta(days=31), timedelta(days=3650)]
)
def test_an_appointment_outside_the_booking_horizon_is_refused(
    client: TestClient[Litestar], delta: timedelta
) -> None:
    body = {"category": "general", "priority": "appointment", "appointment": _slot(delta)}
    _refused(client.post(f"{BASE}/tickets", json=body, headers=KIOSK), 422, "invalid_input")


@pytest.mark.parametrize("delta", [timedelta(minutes=-20), timedelta(0), timedelta(days=29)])
def test_an_appointment_inside_the_horizon_is_taken(
    client: TestClient[Litestar], delta: timedelta
) -> None:
    ticket = issue(client, priority="appointment", appointment=_slot(delta))
    assert ticket["priority"] == "appointment"


def _feed_refusal(client: TestClient[Litestar], path: str) -> tuple[dict[str, Any], int]:
    with client.websocket_connect(path) as ws:
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return message, closed.value.code


@pytest.mark.parametrize("after", ["²", "٣", "9" * 5000, "-1", "+1", " 1", "1e3", "0x1", ""])
def test_the_feed_takes_ascii_digits_only_in_after(
    client: TestClient[Litestar], after: str
) -> None:
    message, code = _feed_refusal(client, f"{FEED}?after={after}")
    assert (message["type"], message["error"], code) == ("error", "invalid_after", 4400)
    assert "after" in message["message"]


def test_a_feed_for_an_unknown_hall_says_so_and_closes_4404(client: TestClient[Litestar]) -> None:
    message, code = _feed_refusal(client, "/ws/halls/no-such-hall/events")
    assert (message["type"], message["error"], code) == ("error", "unknown_hall", 4404)


@pytest.mark.parametrize("send", ["text", "bytes"])
def test_the_feed_closes_on_the_first_message_a_client_sends(
    client: TestClient[Litestar], send: str
) -> None:
    with client.websocket_connect(FEED) as ws:
        assert ws.receive_json()["type"] == "snapshot"
        if send == "text":
            ws.send_text("ping")  # even a small one: a feed's client has nothing to say
        else:
            ws.send_bytes(b"\x00")
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert (message["type"], message["error"]) == ("error", "client_message")
    assert closed.value.code == 1008


def test_a_missing_body_says_what_to_send(client: TestClient[Litestar]) -> None:
    auth = login(client, "1")
    response = client.post(f"{BASE}/windows/1/finish", headers=auth)
    _refused(response, 400, "invalid_request")
    assert "JSON object" in response.json()["message"], response.text


@pytest.mark.parametrize("path", ["/static/feed.js%00.css", f"{BASE}/tickets/A%00"])
def test_a_path_with_a_nul_character_is_refused_not_a_crash(
    client: TestClient[Litestar], path: str
) -> None:
    _refused(client.get(path), 400, "invalid_path")
