"""Ratings (pad and phone), ID numbers at the kiosk, printing on the kiosk's printer, devices in
the snapshot, and staff sessions that outlive a restart: through the HTTP API, on real SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.api.conftest import BASE, KIOSK, act, issue, login, make_app

PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}
ID_OLD = "11010519491231002X"  # born 31 December 1949: 70 and over


def _check_digit(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


YOUNG = "11010520000101001" + _check_digit("11010520000101001")


def _served(client: TestClient[Litestar], window: str = "1") -> dict[str, Any]:
    ticket = issue(client)
    auth = login(client, window, "zhangwei" if window == "1" else "lina")
    act(client, window, "call-next", auth)
    act(client, window, "start", auth)
    act(client, window, "finish", auth, {"outcome": "done"})
    return ticket


def test_the_pad_rates_its_windows_transaction_once(client: TestClient[Litestar]) -> None:
    ticket = _served(client)
    url = f"{BASE}/tickets/{ticket['id']}"
    rated = client.post(f"{url}/rating", json={"level": 5}, headers=PAD_1)
    assert rated.status_code == 200, rated.text
    assert rated.json()["rated"] and rated.json()["served_at"] == "1"
    again = client.post(f"{url}/rating", json={"level": 1, "reasons": ["slow"]}, headers=PAD_1)
    assert again.status_code == 409 and again.json()["error"] == "already_rated"
    phone = client.post(f"{url}/visitor-rating", json={"secret": ticket["secret"], "level": 4})
    assert phone.status_code == 409 and phone.json()["error"] == "already_rated"
    # A rating is nobody's business on the public feed, not even its level.
    history = client.get(f"{BASE}/journal?after=0&limit=500", headers=KIOSK)
    assert history.status_code in (401, 403)


def test_a_pad_cannot_rate_another_windows_transaction(client: TestClient[Litestar]) -> None:
    ticket = _served(client, window="2")
    refused = client.post(f"{BASE}/tickets/{ticket['id']}/rating", json={"level": 5}, headers=PAD_1)
    assert refused.status_code == 403 and refused.json()["error"] == "not_served_here"
    assert not client.get(f"{BASE}/tickets/{ticket['id']}").json()["rated"]
    kiosk = client.post(f"{BASE}/tickets/{ticket['id']}/rating", json={"level": 5}, headers=KIOSK)
    assert kiosk.status_code == 403  # only pads rate


def test_the_phone_rates_with_the_secret(client: TestClient[Litestar]) -> None:
    ticket = _served(client)
    url = f"{BASE}/tickets/{ticket['id']}/visitor-rating"
    wrong = client.post(url, json={"secret": "guess", "level": 5})
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong_secret"
    low = client.post(url, json={"secret": ticket["secret"], "level": 2})
    assert low.status_code == 422  # a low rating says why
    done = client.post(
        url,
        json={"secret": ticket["secret"], "level": 2, "reasons": ["wait"], "comment": "太慢了"},
    )
    assert done.status_code == 200, done.text
    assert "太慢了" not in client.get(f"{BASE}/tickets/{ticket['id']}").text


def test_an_id_number_gives_one_live_ticket_per_category_and_the_green_lane(
    client: TestClient[Litestar],
) -> None:
    old = issue(client, id_number=ID_OLD)
    assert old["priority"] == "green"
    again = client.post(
        f"{BASE}/tickets", json={"category": "general", "id_number": ID_OLD}, headers=KIOSK
    )
    assert again.status_code == 409 and again.json()["error"] == "already_holding"
    assert ID_OLD not in again.text and ID_OLD[:10] not in again.text
    assert issue(client, id_number=YOUNG)["priority"] == "normal"


def test_a_bad_id_number_is_refused_and_nothing_is_issued(client: TestClient[Litestar]) -> None:
    before = client.get(f"{BASE}/snapshot").json()["version"]
    for number in ("110105194912310021", "12345", "11010519491331002X", "x" * 19):
        refused = client.post(
            f"{BASE}/tickets", json={"category": "general", "id_number": number}, headers=KIOSK
        )
        assert refused.status_code in (400, 422), refused.text
        assert number not in refused.text
    assert client.get(f"{BASE}/snapshot").json()["version"] == before


def test_a_kiosks_tickets_queue_for_its_printer_and_devices_are_listed(
    client: TestClient[Litestar],
) -> None:
    issue(client)
    snapshot = client.get(f"{BASE}/snapshot").json()
    devices = {d["id"]: d for d in snapshot["devices"]}
    assert devices["printer-1"]["status"] == "offline" and devices["pad-1"]["window"] == "1"


def test_staff_stay_logged_in_across_a_restart(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        auth = login(client, "1")
        issue(client)
        act(client, "1", "call-next", auth)
    with TestClient(make_app(tmp_path)) as client:  # a new process on the same data directory
        act(client, "1", "start", auth)
        act(client, "1", "finish", auth, {"outcome": "done"})
        act(client, "1", "logout", auth)
    with TestClient(make_app(tmp_path)) as client:  # logged out stays logged out
        act(client, "1", "call-next", auth, status=401)


def test_a_logout_that_cannot_be_saved_does_not_come_back_after_a_restart(
    tmp_path: Path,
) -> None:
    """The sessions file cannot be rewritten (its temporary name is taken by a directory): the
    logout still ends the session, and the old file goes, so a restart logs everyone out."""
    with TestClient(make_app(tmp_path)) as client:
        auth = login(client, "1")
        (tmp_path / "sessions.tmp").mkdir()
        act(client, "1", "logout", auth)
        act(client, "1", "call-next", auth, status=401)
    (tmp_path / "sessions.tmp").rmdir()
    with TestClient(make_app(tmp_path)) as client:
        act(client, "1", "call-next", auth, status=401)
