"""The API as kiosks and window staff use it, over Litestar's test client and a real SQLite file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.conftest import BASE, KIOSK, act, issue, login, make_app


def test_tickets_are_numbered_per_category_and_know_their_place(
    client: TestClient[Litestar],
) -> None:
    first = issue(client, "general")
    second = issue(client, "general")
    other = issue(client, "tax")
    assert (first["number"], first["ahead"]) == ("A001", 0)
    assert (second["number"], second["ahead"]) == ("A002", 1)
    assert (other["number"], other["ahead"]) == ("E001", 0)
    assert first["category_name"] and first["category_name_en"]
    looked_up = client.get(f"{BASE}/tickets/{second['id']}").json()
    assert looked_up["state"] == "waiting"
    assert looked_up["ahead"] == 1
    assert looked_up["history"][0]["what"] == "issued"


def test_a_ticket_goes_from_call_to_finish(client: TestClient[Litestar]) -> None:
    ticket = issue(client, "general")
    staff = login(client, "2")
    called = act(client, "2", "call-next", staff)
    assert called["ticket"]["number"] == ticket["number"]
    assert called["window"]["state"] == "calling"
    assert called["window"]["ticket"] == ticket["number"]
    assert act(client, "2", "recall", staff)["ticket"]["recalls"] == 1
    assert act(client, "2", "recall", staff)["ticket"]["recalls"] == 2
    assert act(client, "2", "start", staff)["window"]["state"] == "serving"
    finished = act(client, "2", "finish", staff, {"outcome": "accepted"})
    assert finished["window"]["state"] == "open"
    assert finished["ticket"]["state"] == "finished"
    assert finished["ticket"]["outcome"] == "accepted"
    history = [
        step["what"] for step in client.get(f"{BASE}/tickets/{ticket['id']}").json()["history"]
    ]
    assert history == ["issued", "called", "recalled", "recalled", "started", "finished"]


def test_calling_with_nobody_waiting_answers_no_ticket(client: TestClient[Litestar]) -> None:
    staff = login(client, "3")
    result = act(client, "3", "call-next", staff)
    assert result["ticket"] is None
    assert result["window"]["state"] == "open"


def test_no_show_transfer_and_pause(client: TestClient[Litestar]) -> None:
    late = issue(client, "general")
    moved = issue(client, "general")
    staff = login(client, "2")
    act(client, "2", "call-next", staff)
    assert act(client, "2", "no-show", staff)["ticket"]["state"] == "no_show"
    assert client.get(f"{BASE}/tickets/{late['id']}").json()["state"] == "no_show"

    act(client, "2", "call-next", staff)
    act(client, "2", "start", staff)
    tax = login(client, "8", "lina")
    transferred = act(client, "2", "transfer", staff, {"category": "tax", "to_window": "8"})
    assert transferred["ticket"]["state"] == "waiting"
    assert transferred["ticket"]["category"] == "tax"
    assert transferred["ticket"]["number"] == moved["number"]  # identity kept
    assert transferred["ticket"]["issued_at"] == moved["issued_at"]  # the wait goes on
    # Only window 8 may call it now: window 9 also serves tax but does not get it.
    other = login(client, "9", "chenjing")
    assert act(client, "9", "call-next", other)["ticket"] is None
    assert act(client, "8", "call-next", tax)["ticket"]["number"] == moved["number"]

    paused = act(client, "9", "pause", other, {"reason": "break"})
    assert paused["window"]["state"] == "paused"
    assert paused["window"]["pause_reason"] == "break"
    act(client, "9", "call-next", other, status=409)
    assert act(client, "9", "resume", other)["window"]["state"] == "open"
    assert act(client, "9", "logout", other)["window"]["state"] == "closed"
    # The token ended with the session.
    act(client, "9", "call-next", other, status=401)


def test_logout_is_refused_while_holding_a_ticket(client: TestClient[Litestar]) -> None:
    issue(client, "general")
    staff = login(client, "2")
    act(client, "2", "call-next", staff)
    body = act(client, "2", "logout", staff, status=409)
    assert body["error"] == "window_busy"


def test_cancel_a_waiting_ticket(client: TestClient[Litestar]) -> None:
    ticket = issue(client, "general")
    url = f"{BASE}/tickets/{ticket['id']}/cancel"
    response = client.post(url, json={"reason": "visitor"}, headers=KIOSK)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    again = client.post(url, json={}, headers=KIOSK)
    assert again.status_code == 409
    assert again.json()["error"] == "ticket_not_waiting"


def test_manager_changes_a_window_profile(client: TestClient[Litestar]) -> None:
    manager = login(client, "1", "manager")
    url = f"{BASE}/windows/4/profile"
    response = client.put(url, json={"categories": ["tax", "general"]}, headers=manager)
    assert response.status_code == 200, response.text
    assert response.json()["window"]["categories"] == ["tax", "general"]
    staff = login(client, "2")
    assert client.put(url, json={"categories": ["tax"]}, headers=staff).status_code == 403
    bad = client.put(url, json={"categories": ["nope"]}, headers=manager)
    assert bad.status_code == 422
    assert bad.json()["error"] == "unknown_category"


def test_state_and_numbering_survive_a_restart(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        issue(client, "general")
        issue(client, "general")
        staff = login(client, "2")
        act(client, "2", "call-next", staff)
        before = client.get(f"{BASE}/snapshot").json()
    with TestClient(make_app(tmp_path)) as client:
        after = client.get(f"{BASE}/snapshot").json()
        assert after == before
        assert issue(client, "general")["number"] == "A003"
        # Sessions do not survive a restart; logging in again at one's own window changes nothing.
        staff = login(client, "2")
        assert act(client, "2", "start", staff)["ticket"]["number"] == "A001"


def test_a_ticket_says_about_how_long_it_will_wait(client: TestClient[Litestar]) -> None:
    first = issue(client, "real-estate")
    assert first["estimated_wait_minutes"] is None  # no window serving it is open yet
    staff = login(client, "10", "zhaolei")  # window 10 serves real estate only
    act(client, "10", "call-next", staff)
    second = issue(client, "real-estate")
    third = issue(client, "real-estate")
    assert (second["ahead"], third["ahead"]) == (0, 1)
    assert 0 < second["estimated_wait_minutes"] < third["estimated_wait_minutes"]
    looked_up = client.get(f"{BASE}/tickets/{third['id']}").json()
    # The same forecast (the state has not changed), as of a few milliseconds later.
    assert looked_up["estimated_wait_minutes"] == pytest.approx(
        third["estimated_wait_minutes"], abs=0.1
    )
    low, high = looked_up["estimated_wait_low_minutes"], looked_up["estimated_wait_high_minutes"]
    assert low <= looked_up["estimated_wait_minutes"] <= high
    queues = client.get(f"{BASE}/snapshot").json()["queues"]
    real_estate = next(q for q in queues if q["category"] == "real-estate")
    assert real_estate["estimated_wait_minutes"] > third["estimated_wait_minutes"]
    tax = next(q for q in queues if q["category"] == "tax")
    assert tax["estimated_wait_minutes"] is None


def test_an_appointment_ticket_carries_its_slot(client: TestClient[Litestar]) -> None:
    tomorrow = datetime.now(timezone(timedelta(hours=8))) + timedelta(days=1)
    slot = tomorrow.replace(hour=9, minute=0, second=0, microsecond=0).isoformat()
    ticket = issue(client, "general", priority="appointment", appointment=slot)
    assert ticket["priority"] == "appointment"
    looked_up = client.get(f"{BASE}/tickets/{ticket['id']}").json()
    assert looked_up["priority"] == "appointment"
    assert looked_up["appointment"] == slot


def test_ahead_counts_who_will_be_called_first(client: TestClient[Litestar]) -> None:
    first = issue(client, "general")
    second = issue(client, "general")
    green = issue(client, "general", priority="green")
    assert green["ahead"] == 0  # the green lane goes before both
    assert client.get(f"{BASE}/tickets/{second['id']}").json()["ahead"] == 2
    staff = login(client, "2")
    assert act(client, "2", "call-next", staff)["ticket"]["number"] == green["number"]
    # The window's own answer agrees with the look-up.
    act(client, "2", "start", staff)
    moved = act(client, "2", "transfer", staff, {"category": "general"})["ticket"]
    assert moved["ahead"] == 0  # it keeps its place: before both normal tickets
    assert client.get(f"{BASE}/tickets/{first['id']}").json()["ahead"] == 1
