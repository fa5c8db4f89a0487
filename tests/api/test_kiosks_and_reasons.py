"""What a kiosk and a visitor may do (issue at a bounded rate, cancel only waiting tickets, the
visitor by the secret printed on the ticket), and what the public sees of reasons: codes only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from litestar import Litestar
from litestar.testing import TestClient

from hall.config import load
from hall.domain.events import AnyEvent, DayStarted, TicketCancelled, TicketIssued, WindowPaused
from hall.journal import open_journal
from hall.settings import DEFAULT_CONFIG, Settings
from scheduling.calendar import business_day
from tests.api.conftest import BASE, HALL, KIOSK, act, issue, login, make_app

FEED = f"/ws/halls/{HALL}/events"


def _feed(client: TestClient[Litestar]) -> list[dict[str, object]]:
    version = client.get(f"{BASE}/snapshot").json()["version"]
    with client.websocket_connect(f"{FEED}?after=0") as ws:
        return [ws.receive_json() for _ in range(version)]


def test_a_kiosk_issues_a_burst_then_waits(client: TestClient[Litestar]) -> None:
    burst = client.app.state.service.engines[HALL].config.issuing.device_burst
    for _ in range(burst):
        issue(client)
    refused = client.post(f"{BASE}/tickets", json={"category": "general"}, headers=KIOSK)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "too_many_attempts"
    assert 0 < refused.json()["detail"]["retry_after"] <= 3
    # Staff issuing for a visitor are not held up by the kiosk's limit.
    staff = login(client, "2")
    response = client.post(f"{BASE}/tickets", json={"category": "general"}, headers=staff)
    assert response.status_code == 201


def test_a_kiosk_retrying_an_answered_request_is_not_held_up(client: TestClient[Litestar]) -> None:
    burst = client.app.state.service.engines[HALL].config.issuing.device_burst
    keyed = {**KIOSK, "Idempotency-Key": "kiosk-print-0001"}
    first = client.post(f"{BASE}/tickets", json={"category": "general"}, headers=keyed)
    for _ in range(burst + 2):  # the answer keeps getting lost: the kiosk asks again
        again = client.post(f"{BASE}/tickets", json={"category": "general"}, headers=keyed)
        assert again.status_code == 201 and again.json()["id"] == first.json()["id"]


def test_a_kiosk_cancels_only_waiting_tickets(client: TestClient[Litestar]) -> None:
    called, waiting = issue(client), issue(client)
    staff = login(client, "2")
    act(client, "2", "call-next", staff)
    url = f"{BASE}/tickets/{called['id']}/cancel"
    refused = client.post(url, json={}, headers=KIOSK)
    assert refused.status_code == 409
    assert refused.json()["error"] == "ticket_not_waiting"
    assert client.get(f"{BASE}/tickets/{called['id']}").json()["state"] == "called"
    response = client.post(f"{BASE}/tickets/{waiting['id']}/cancel", json={}, headers=KIOSK)
    assert response.json()["state"] == "cancelled"
    # Staff may still cancel a called ticket (the visitor gave up at the window).
    response = client.post(url, json={"reason": "visitor"}, headers=staff)
    assert response.json()["state"] == "cancelled"


def test_a_visitor_cancels_with_the_secret_on_the_ticket(client: TestClient[Litestar]) -> None:
    ticket = issue(client)
    secret = ticket["secret"]
    assert len(secret) >= 22  # 128 random bits
    lookup = client.get(f"{BASE}/tickets/{ticket['id']}").json()
    assert "secret" not in lookup
    url = f"{BASE}/tickets/{ticket['id']}/visitor-cancel"
    wrong = client.post(url, json={"secret": secret[:-1] + ("A" if secret[-1] != "A" else "B")})
    assert (wrong.status_code, wrong.json()["error"]) == (403, "wrong_secret")
    assert client.get(f"{BASE}/tickets/{ticket['id']}").json()["state"] == "waiting"
    response = client.post(url, json={"secret": secret})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    assert response.json()["history"][-1]["detail"] == "visitor"
    assert secret not in json.dumps(_feed(client))
    for message in _feed(client):
        assert "secret" not in message["event"]  # type: ignore[operator]


def test_a_visitor_cannot_cancel_a_called_ticket(client: TestClient[Litestar]) -> None:
    ticket = issue(client)
    act(client, "2", "call-next", login(client, "2"))
    url = f"{BASE}/tickets/{ticket['id']}/visitor-cancel"
    assert client.post(url, json={"secret": ticket["secret"]}).status_code == 409


def test_public_views_show_reason_codes_never_notes(client: TestClient[Litestar]) -> None:
    ticket = issue(client)
    staff = login(client, "2")
    note = "王先生 13800000000 去吃饭"
    bad = act(client, "2", "pause", staff, {"reason": "lunch"}, status=422)
    assert bad["error"] == "unknown_reason"
    paused = act(client, "2", "pause", staff, {"reason": "break", "note": note})
    assert paused["window"]["pause_reason"] == "break"
    assert paused["window"]["pause_reason_name_en"] == "Short break"
    cancel = {"reason": "duplicate", "note": note}
    response = client.post(f"{BASE}/tickets/{ticket['id']}/cancel", json=cancel, headers=staff)
    assert response.status_code == 200, response.text
    history = client.get(f"{BASE}/tickets/{ticket['id']}").json()["history"]
    assert history[-1] == {**history[-1], "what": "cancelled", "detail": "duplicate"}
    public = json.dumps([client.get(f"{BASE}/snapshot").json(), history, _feed(client)])
    assert note not in json.dumps(json.loads(public), ensure_ascii=False)
    assert "13800000000" not in public
    # The notes stay in the journal, which managers (only) may read.
    url = f"{BASE}/journal?after=0&limit=1000"
    assert client.get(url, headers=staff).status_code == 403
    manager = client.post(
        f"{BASE}/managers/login", json={"username": "manager", "password": "hall-demo"}
    ).json()["token"]
    journal = client.get(url, headers={"Authorization": f"Bearer {manager}"}).json()
    notes = [e["event"].get("note") for e in journal]
    assert notes.count(note) == 2
    assert '"secret"' not in json.dumps(journal)


def test_old_free_text_reasons_replay_and_show_as_other(tmp_path: Path) -> None:
    """Events journaled before reasons had codes hold free text: they replay, and never show."""
    now = datetime.now(UTC)
    day = business_day(load(DEFAULT_CONFIG), now)
    ticket = f"{day:%Y%m%d}-A001"
    journal_url = Settings(data_dir=tmp_path).journal_url

    async def append(events: list[AnyEvent]) -> None:
        journal = open_journal(journal_url)
        await journal.append(HALL, events, await journal.version(HALL))
        await journal.close()

    issued = TicketIssued(at=now, ticket=ticket, number="A001", category="general", seq=1, day=day)
    cancelled = TicketCancelled(at=now, ticket=ticket, reason="李四 has gone home")
    asyncio.run(append([DayStarted(at=now, day=day), issued, cancelled]))
    with TestClient(make_app(tmp_path)) as client:
        login(client, "2")
    asyncio.run(append([WindowPaused(at=now, window="2", reason="李四 went to the bank")]))
    with TestClient(make_app(tmp_path)) as client:
        window = next(w for w in client.get(f"{BASE}/snapshot").json()["windows"] if w["id"] == "2")
        assert (window["state"], window["pause_reason"]) == ("paused", "other")
        history = client.get(f"{BASE}/tickets/{ticket}").json()["history"]
        assert history[-1]["detail"] == "other"
        feed = _feed(client)
        assert "李四" not in json.dumps(feed, ensure_ascii=False)
        reasons = [m["event"].get("reason") for m in feed]  # type: ignore[attr-defined]
        assert reasons.count("other") == 2
