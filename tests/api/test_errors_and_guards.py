"""Bad input gets a clear 4xx with a stable body; each mutating route needs the right credential."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from hall.api.app import create_app
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import BASE, HALL, KIOSK, act, issue, login

TOWN_CONFIG = DEFAULT_CONFIG.parent / "town.toml"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# The mutating routes that take their credential in the body: a password, or a ticket's secret.
LOGIN = "/api/halls/{hall}/windows/{window}/login"
IN_BODY = {
    # Another process of the region forwarding a command: the credential is the cluster secret.
    "/internal/halls/{hall}/commands": ({}, 403, "forbidden"),
    LOGIN: ({"username": "zhangwei", "password": "x"}, 401, "unauthorized"),
    "/api/halls/{hall}/managers/login": (
        {"username": "manager", "password": "x"},
        401,
        "unauthorized",
    ),
    "/api/halls/{hall}/tickets/{ticket}/visitor-cancel": ({"secret": "x"}, 403, "wrong_secret"),
    "/api/halls/{hall}/tickets/{ticket}/visitor-rating": (
        {"secret": "x", "level": 5},
        403,
        "wrong_secret",
    ),
}
MANAGERS_ONLY = ("/profile", "/force-close", "/staff/{username}/logout", "/steps", "/excuse")


def _error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "detail" in body
    return body


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"category": "nope"}, 422, "unknown_category"),
        ({"category": "general", "priority": "vip"}, 422, "unknown_priority"),
        ({"category": "general", "colour": "red"}, 400, "invalid_request"),
        ({"category": "general", "priority": "appointment"}, 422, "invalid_input"),
        (
            {"category": "general", "appointment": "2026-11-23T09:00:00+08:00"},
            422,
            "invalid_input",
        ),
        (  # no time zone: not RFC 3339
            {"category": "general", "priority": "appointment", "appointment": "2026-11-23T09:00"},
            400,
            "invalid_request",
        ),
        (
            {"category": "general", "priority": "appointment", "appointment": "soon"},
            400,
            "invalid_request",
        ),
        ({}, 400, "invalid_request"),
        ({"category": 12}, 400, "invalid_request"),
        ({"category": "x" * 500}, 400, "invalid_request"),
    ],
)
def test_bad_ticket_requests(
    client: TestClient[Litestar], body: object, status: int, code: str
) -> None:
    _error(client.post(f"{BASE}/tickets", json=body, headers=KIOSK), status, code)


def test_malformed_json_is_400(client: TestClient[Litestar]) -> None:
    headers = {**KIOSK, "Content-Type": "application/json"}
    _error(
        client.post(f"{BASE}/tickets", content=b"{not json", headers=headers),
        400,
        "invalid_request",
    )


def test_unknown_things_are_404(client: TestClient[Litestar]) -> None:
    _error(client.get("/api/halls/atlantis/snapshot"), 404, "unknown_hall")
    _error(client.get(f"{BASE}/tickets/20260101-A001"), 404, "unknown_ticket")
    _error(client.get("/api/nothing-here"), 404, "not_found")
    staff = login(client, "2")
    _error(client.post(f"{BASE}/windows/99/call-next", headers=staff), 404, "unknown_window")


def test_window_rules_are_409_and_403(client: TestClient[Litestar]) -> None:
    staff = login(client, "2")
    _error(client.post(f"{BASE}/windows/2/start", headers=staff), 409, "window_state")
    _error(client.post(f"{BASE}/windows/3/call-next", headers=staff), 409, "window_not_open")
    login(client, "3", "lina")
    _error(client.post(f"{BASE}/windows/3/call-next", headers=staff), 403, "not_your_window")
    # zhaolei may only work at the real-estate windows.
    response = client.post(
        f"{BASE}/windows/2/login", json={"username": "zhaolei", "password": "hall-demo"}
    )
    _error(response, 403, "staff_not_allowed")
    response = client.post(
        f"{BASE}/windows/4/login", json={"username": "zhangwei", "password": "hall-demo"}
    )
    _error(response, 409, "staff_elsewhere")


def test_bad_outcome_and_empty_reason(client: TestClient[Litestar]) -> None:
    issue(client, "general")
    staff = login(client, "2")
    act(client, "2", "call-next", staff)
    act(client, "2", "start", staff)
    _error(
        client.post(f"{BASE}/windows/2/finish", json={"outcome": "maybe"}, headers=staff),
        400,
        "invalid_request",
    )
    _error(
        client.post(f"{BASE}/windows/2/pause", json={"reason": ""}, headers=staff),
        400,
        "invalid_request",
    )
    # Nothing half-applied: the ticket is still being served.
    assert client.get(f"{BASE}/snapshot").json()["windows"][1]["state"] == "serving"


def test_wrong_password_is_401_and_says_nothing_more(client: TestClient[Litestar]) -> None:
    for username in ("zhangwei", "nobody"):
        response = client.post(
            f"{BASE}/windows/2/login", json={"username": username, "password": "guess"}
        )
        body = _error(response, 401, "unauthorized")
        assert username not in str(body)


def _mutating_routes(app: Litestar) -> list[tuple[str, str]]:
    """Every hall's mutating route (the region's, on a server without one, are 404 no_region:
    tests/api/test_region.py checks their credentials)."""
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and not route.path.startswith("/api/region"):
            for method in sorted(route.methods & MUTATING):
                found.append((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)))
    return found


def _concrete(path: str, ticket: str) -> str:
    return path.format(
        hall=HALL,
        window="2",
        ticket=ticket,
        username="lina",
        alert="idle:2:x",
        case=ticket,
        breach="x:2:1",
    )


def test_every_mutating_route_needs_a_credential(client: TestClient[Litestar]) -> None:
    routes = _mutating_routes(client.app)
    # tickets, cancel, visitor cancel, window login, nine window actions, profile, force-close,
    # manager login, force logout, password
    assert len(routes) >= 18, routes
    ticket = issue(client, "general")["id"]
    staff = login(client, "2")
    for method, path in routes:
        url = _concrete(path, ticket)
        if path in IN_BODY:
            body, status, code = IN_BODY[path]
            _error(client.request(method, url, json=body), status, code)
            continue
        _error(client.request(method, url, json={}), 401, "unauthorized")
        bogus = {"Authorization": "Bearer not-a-real-token"}
        _error(client.request(method, url, json={}, headers=bogus), 401, "unauthorized")
        if "/tickets" not in path:
            # A kiosk's token does not work a window, and staff cannot do a manager's work.
            _error(client.request(method, url, json={}, headers=KIOSK), 403, "forbidden")
        if path.endswith(MANAGERS_ONLY):
            _error(client.request(method, url, json={}, headers=staff), 403, "forbidden")


def test_a_token_is_only_good_for_its_own_hall(tmp_path: Path) -> None:
    """Two real halls on one server, with the same usernames: a session of one is refused by
    the other (an unknown hall would answer 404 before any token is checked)."""
    # The town hall closes at noon; this test is about tokens, not hours: it issues at any time.
    town = tmp_path / "town.toml"
    text = TOWN_CONFIG.read_text(encoding="utf-8")
    assert "issue_outside_hours = false" in text
    town.write_text(text.replace("issue_outside_hours = false", "issue_outside_hours = true"))
    app = create_app(Settings(configs=(DEFAULT_CONFIG, town), data_dir=tmp_path))
    with TestClient(app) as client:
        response = client.post(
            "/api/halls/demo-town/managers/login",
            json={"username": "manager", "password": "hall-demo"},
        )
        assert response.status_code == 200, response.text
        town_manager = {"Authorization": f"Bearer {response.json()['token']}"}
        ticket = {"category": "general"}
        _error(
            client.post(f"{BASE}/tickets", json=ticket, headers=town_manager), 401, "unauthorized"
        )
        profile = {"categories": ["general"]}
        response = client.put(f"{BASE}/windows/2/profile", json=profile, headers=town_manager)
        _error(response, 401, "unauthorized")
        # The same token works in its own hall (a profile change: the town issues tickets in
        # its opening hours only, and this test must not depend on the time of day).
        town_profile = {"categories": ["social"]}
        response = client.put(
            "/api/halls/demo-town/windows/2/profile", json=town_profile, headers=town_manager
        )
        assert response.status_code == 200, response.text
        assert response.json()["window"]["categories"] == ["social"]


def test_a_token_in_the_url_is_not_accepted(client: TestClient[Litestar]) -> None:
    response = client.post(f"{BASE}/tickets?token=demo-kiosk-token", json={"category": "general"})
    _error(response, 401, "unauthorized")


def test_password_guessing_locks_the_username_for_a_while(client: TestClient[Litestar]) -> None:
    url = f"{BASE}/windows/2/login"
    for _ in range(5):
        wrong = client.post(url, json={"username": "lina", "password": "guess"})
        _error(wrong, 401, "unauthorized")
    # Even the right password is refused while locked, and the answer says for how long.
    locked = client.post(url, json={"username": "lina", "password": "hall-demo"})
    body = _error(locked, 429, "too_many_attempts")
    assert 0 < body["detail"]["retry_after"] <= 300  # type: ignore[index]
    assert locked.headers["retry-after"] == str(body["detail"]["retry_after"])  # type: ignore[index]
    # Other staff are not affected.
    assert (
        client.post(url, json={"username": "zhangwei", "password": "hall-demo"}).status_code == 200
    )
