"""The Idempotency-Key header over HTTP: a retry gets the first answer; keys are per client."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from tests.api.conftest import BASE, KIOSK, issue, login


def test_a_repeated_window_command_is_done_once(client: TestClient[Litestar]) -> None:
    first, second = issue(client), issue(client)
    auth = login(client, "1")
    keyed = {**auth, "Idempotency-Key": "call-next-0001"}
    called = client.post(f"{BASE}/windows/1/call-next", headers=keyed)
    again = client.post(f"{BASE}/windows/1/call-next", headers=keyed)
    assert called.status_code == again.status_code == 200, again.text
    assert called.json()["ticket"]["id"] == again.json()["ticket"]["id"] == first["id"]
    waiting = client.get(f"{BASE}/tickets/{second['id']}").json()
    assert waiting["state"] == "waiting", "the retry must not call the next ticket"


def test_keys_are_per_client_and_bounded(client: TestClient[Litestar]) -> None:
    key = {"Idempotency-Key": "shared-key-0001"}
    mine = client.post(f"{BASE}/tickets", json={"category": "general"}, headers={**KIOSK, **key})
    assert mine.status_code == 201
    auth = login(client, "1")
    # Staff issuing for a visitor with the same key is another client: its own ticket.
    theirs = client.post(f"{BASE}/tickets", json={"category": "general"}, headers={**auth, **key})
    assert theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]
    for bad in ["short", "x" * 65, "key with spaces", "a/b/c/d/e/f"]:
        response = client.post(
            f"{BASE}/tickets",
            json={"category": "general"},
            headers={**KIOSK, "Idempotency-Key": bad},
        )
        assert response.status_code == 400, bad
        assert response.json()["error"] == "invalid_idempotency_key"


def test_a_retried_issue_prints_the_same_secret_and_the_feed_names_nobody(
    client: TestClient[Litestar],
) -> None:
    auth = login(client, "1")  # staff issuing for a visitor: the key is scoped by a username
    keyed = {**auth, "Idempotency-Key": "issue-for-visitor-01"}
    first = client.post(f"{BASE}/tickets", json={"category": "general"}, headers=keyed)
    again = client.post(f"{BASE}/tickets", json={"category": "general"}, headers=keyed)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    # The visitor holds the first answer's ticket, or the retry's: either secret must work.
    assert again.json()["secret"] == first.json()["secret"]
    with client.websocket_connect("/ws/halls/demo-county/events?after=0") as feed:
        events = [feed.receive_json() for _ in range(3)]  # day started, window opened, issued
    text = str(events)
    assert "zhangwei" not in text and "issue-for-visitor-01" not in text and "request" not in text
    assert first.json()["secret"] not in text


def test_a_malformed_key_is_refused_on_every_guarded_write(client: TestClient[Litestar]) -> None:
    auth = {**login(client, "1"), "Idempotency-Key": "a b"}
    for path in ("/logout", "/windows/1/call-next"):
        response = client.post(f"{BASE}{path}", headers=auth, json={})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == "invalid_idempotency_key"
