"""/health, /ready and /metrics on a real app: a real SQLite journal, a real private Redis."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hall.api.app import create_app
from hall.settings import Settings
from tests.api.conftest import BASE, HALL, KIOSK, PASSWORD, act, issue, login, make_app
from tests.support.redis import PrivateRedis


def samples(client: TestClient[Litestar]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset({"hall": HALL, **labels}.items()))]


def test_health_answers_while_the_process_does(client: TestClient[Litestar]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_ready_once_every_hall_is_replayed(client: TestClient[Litestar]) -> None:
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "halls": {HALL: "ready"}}


def test_not_ready_when_the_journal_is_closed(client: TestClient[Litestar]) -> None:
    service = client.app.state.service
    client.blocking_portal.call(service.journal.close)
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_ready"
    assert HALL in body["message"]
    assert "journal failed" in body["detail"]["halls"][HALL]
    assert client.get("/health").status_code == 200  # alive all the same


def test_not_ready_while_redis_is_stalled_and_ready_again_after(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path) as redis:
        app = create_app(Settings(redis_url=redis.url, data_dir=tmp_path))
        with TestClient(app) as client:
            assert client.get("/ready").status_code == 200
            assert redis.process is not None
            redis.process.send_signal(signal.SIGSTOP)
            try:
                response = client.get("/ready")
            finally:
                redis.process.send_signal(signal.SIGCONT)
            assert response.status_code == 503
            assert "did not answer within 1 s" in response.json()["detail"]["halls"][HALL]
            assert client.get("/ready").status_code == 200


def test_metrics_after_commands(client: TestClient[Litestar]) -> None:
    before = samples(client)
    assert value(before, "hall_waiting_tickets", category="general") == 0
    issue(client, "general")
    issue(client, "general")
    auth = login(client, "1")
    act(client, "1", "call-next", auth)
    wrong = {"username": "zhangwei", "password": PASSWORD + "x"}
    assert client.post(f"{BASE}/windows/2/login", json=wrong).status_code == 401
    with client.websocket_connect(f"/ws/halls/{HALL}/events") as feed:
        assert feed.receive_json()["type"] == "snapshot"
        found = samples(client)

    assert value(found, "hall_command_seconds_count", kind="IssueTicket", outcome="ok") == 2
    assert value(found, "hall_command_seconds_count", kind="CallNext", outcome="ok") == 1
    assert value(found, "hall_append_seconds_count") >= 3
    assert value(found, "hall_append_commands_sum") >= 3
    assert value(found, "hall_append_events_sum") >= 4
    # Gauges read from the hall's state at scrape time.
    assert value(found, "hall_waiting_tickets", category="general") == 1
    assert value(found, "hall_waiting_tickets", category="tax") == 0
    assert value(found, "hall_longest_wait_seconds", category="general") >= 0
    windows = client.app.state.service.engine(HALL).config.windows
    assert value(found, "hall_windows", state="calling") == 1
    assert value(found, "hall_windows", state="closed") == len(windows) - 1
    assert value(found, "hall_feed_connections") == 1
    assert value(found, "hall_writer") == 1  # a lone server writes its halls
    assert (
        value(found, "hall_version") == client.get(f"/api/halls/{HALL}/snapshot").json()["version"]
    )
    assert value(found, "hall_login_failures_total", reason="wrong_password") == 1
    assert "zhangwei" not in client.get("/metrics").text


def test_a_refused_command_is_counted_by_its_code(client: TestClient[Litestar]) -> None:
    auth = login(client, "1")
    response = client.post(f"{BASE}/windows/1/start", headers=auth)  # nothing called yet
    assert response.status_code == 409, response.text
    code = response.json()["error"]
    assert value(samples(client), "hall_command_seconds_count", kind="Start", outcome=code) == 1


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_no_token_needed(client: TestClient[Litestar], path: str) -> None:
    assert client.get(path, headers=KIOSK | {"Authorization": ""}).status_code == 200


def test_locked_logins_are_counted_apart(client: TestClient[Litestar]) -> None:
    wrong = {"username": "lina", "password": "not-the-password"}
    statuses = [client.post(f"{BASE}/windows/3/login", json=wrong).status_code for _ in range(7)]
    assert 401 in statuses and statuses[-1] == 429, statuses
    found = samples(client)
    assert value(found, "hall_login_failures_total", reason="wrong_password") == statuses.count(401)
    assert value(found, "hall_login_failures_total", reason="locked") == statuses.count(429)


def test_an_app_makes_its_data_directory(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path / "new" / "data")) as client:
        assert client.get("/ready").status_code == 200
