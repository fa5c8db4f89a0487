"""Bad ratings' follow-up and breach excuses through the HTTP API, on the real app and a real
SQLite journal: the case walked step by step, illegal steps and the second-manager rule refused,
deadlines in working days over a holiday, a breach excused (and still listed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from hall.domain import commands as cmd
from hall.settings import DEFAULT_CONFIG
from tests.api.conftest import BASE, PASSWORD, act, issue, login, make_app

PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}


def _today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _next_weekday(day: date, skip: set[date] = frozenset()) -> date:  # type: ignore[assignment]
    day += timedelta(days=1)
    while day.weekday() >= 5 or day in skip:
        day += timedelta(days=1)
    return day


def hall_with_deputy(directory: Path, holiday: date) -> Path:
    """The demo hall (two managers) with short case deadlines and ``holiday`` off."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    for old, new in (
        ("rectify_days = 5 ", "rectify_days = 2 "),
        ("revisit_days = 10 ", "revisit_days = 3 "),
        ("holidays = []", f"holidays = [{holiday.isoformat()}]"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = directory / "hall.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def holiday() -> date:
    return _next_weekday(_today())  # the next working day is a holiday this time


@pytest.fixture
def client(tmp_path: Path, holiday: date) -> Any:
    app: Litestar = make_app(tmp_path, hall_with_deputy(tmp_path, holiday))
    with TestClient(app) as client:
        yield client


def manager(client: TestClient[Litestar], username: str = "manager") -> dict[str, str]:
    response = client.post(
        f"{BASE}/managers/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def bad_rating(client: TestClient[Litestar], level: int = 1) -> dict[str, Any]:
    """A ticket served at window 1 and rated ``level`` on its pad, with a reason and a comment."""
    ticket = issue(client)
    auth = login(client, "1")
    act(client, "1", "call-next", auth)
    act(client, "1", "start", auth)
    act(client, "1", "finish", auth, {"outcome": "done"})
    body = {"level": level, "reasons": ["slow"], "comment": "等了很久"}
    rated = client.post(f"{BASE}/tickets/{ticket['id']}/rating", json=body, headers=PAD_1)
    assert rated.status_code == 200, rated.text
    return ticket


def step(
    client: TestClient[Litestar], case: str, auth: dict[str, str], status: int = 200, **body: Any
) -> Any:
    response = client.post(f"{BASE}/cases/{case}/steps", json=body, headers=auth)
    assert response.status_code == status, response.text
    return response.json()


def open_cases(client: TestClient[Litestar], auth: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(f"{BASE}/cases", headers=auth)
    assert response.status_code == 200, response.text
    cases: list[dict[str, Any]] = response.json()["cases"]
    return cases


def test_a_case_is_walked_through_and_illegal_steps_are_refused(
    client: TestClient[Litestar],
) -> None:
    ticket = bad_rating(client)
    boss, deputy = manager(client), manager(client, "deputy")
    staff = login(client, "2", "lina")
    assert client.get(f"{BASE}/cases", headers=staff).status_code == 403
    assert client.get(f"{BASE}/cases").status_code == 401

    (case,) = open_cases(client, boss)
    assert case["id"] == ticket["id"] and case["number"] == ticket["number"]
    assert (case["stage"], case["level"], case["channel"]) == ("verify", 1, "pad")
    assert (case["window"], case["staff"], case["staff_name"]) == ("1", "zhangwei", "张伟")
    assert case["comment"] == "等了很久" and [r["code"] for r in case["reasons"]] == ["slow"]
    assert case["overdue"] is False and case["steps"] == []

    cid = case["id"]
    refused = step(client, cid, boss, 409, step="rectify", text="x")
    assert refused["error"] == "case_step_refused" and refused["detail"]["stage"] == "verify"
    assert step(client, cid, boss, 422, step="verify", valid=False)["error"] == "invalid_input"
    assert step(client, cid, boss, 400, step="approve")["error"] == "invalid_request"
    done = step(client, cid, boss, step="verify", valid=False, text="评价器误触")
    assert (done["stage"], done["closed"]) == ("confirm", False)

    same = step(client, cid, boss, 403, step="confirm", valid=False, text="同意")
    assert same["error"] == "second_manager_needed"
    # The deputy finds it valid after all: it goes to rectification.
    assert step(client, cid, deputy, step="confirm", valid=True)["stage"] == "rectify"
    assert step(client, cid, boss, 422, step="rectify")["error"] == "invalid_input"
    assert step(client, cid, boss, step="rectify", text="增开窗口，培训")["stage"] == "revisit"
    wrong = step(client, cid, boss, 422, step="revisit", result="happy")
    assert wrong["error"] == "unknown_reason" and "satisfied" in wrong["detail"]["known"]

    assert step(client, cid, boss, step="revisit", result="satisfied", text="电话回访")["stage"]
    (case,) = open_cases(client, boss)
    history = [(s["step"], s["by"], s["valid"], s["text"]) for s in case["steps"]]
    assert history == [
        ("verify", "manager", False, "评价器误触"),
        ("confirm", "deputy", True, ""),
        ("rectify", "manager", None, "增开窗口，培训"),
        ("revisit", "manager", None, "电话回访"),
    ]
    assert case["steps"][3]["result"]["name"] == "回访满意"
    assert case["steps"][1]["by_name"] == "李副主任"

    closed = step(client, cid, deputy, step="close")
    assert closed == {
        "case": cid,
        "number": ticket["number"],
        "step": "close",
        "stage": None,
        "closed": True,
    }
    assert open_cases(client, boss) == []
    assert step(client, cid, boss, 404, step="close")["error"] == "unknown_case"
    assert step(client, "nope", boss, 404, step="verify", valid=True)["error"] == "unknown_case"


def test_a_case_found_not_valid_twice_closes_and_a_retry_steps_once(
    client: TestClient[Litestar],
) -> None:
    cid = bad_rating(client, level=2)["id"]
    boss, deputy = manager(client), manager(client, "deputy")
    key = {"Idempotency-Key": "verify-0001"}
    first = step(client, cid, {**boss, **key}, step="verify", valid=False, text="误评")
    again = step(client, cid, {**boss, **key}, step="verify", valid=False, text="误评")
    assert first == again and first["stage"] == "confirm"
    (case,) = open_cases(client, boss)
    assert [s["step"] for s in case["steps"]] == ["verify"]  # done once
    assert case["verified_by"] == "manager" and case["valid"] is False
    assert case["verified_by_name"] == "王主任"  # as the history names people
    confirmed = step(client, cid, deputy, step="confirm", valid=False, text="同意")
    assert confirmed["stage"] == "close"  # nothing to rectify or revisit
    assert step(client, cid, boss, step="close")["closed"]
    assert open_cases(client, boss) == []
    # Gone from the open ones, listed among the closed (from the read model), read-only.
    listed = client.get(f"{BASE}/cases/closed?days=30", headers=boss)
    assert listed.status_code == 200, listed.text
    (done,) = listed.json()["cases"]
    assert (done["id"], done["valid"], done["result"]) == (cid, False, None)
    assert (done["closed_by_name"], done["staff_name"], done["level"]) == ("王主任", "张伟", 2)
    assert client.get(f"{BASE}/cases/closed?days=101", headers=boss).status_code == 400
    assert client.get(f"{BASE}/cases/closed", headers=login(client, "2", "lina")).status_code == 403


def test_deadlines_count_working_days_over_a_holiday(
    client: TestClient[Litestar], holiday: date
) -> None:
    bad_rating(client)
    (case,) = open_cases(client, manager(client))
    today = _today()
    assert case["day"] == today.isoformat()
    # Independently of scheduling.calendar: weekdays, less the holiday.
    after = [today]
    for _ in range(3):
        after.append(_next_weekday(after[-1], {holiday}))
    assert holiday not in after and after[1] > holiday
    assert case["deadlines"] == {
        "verify": after[1].isoformat(),
        "confirm": after[1].isoformat(),
        "rectify": after[2].isoformat(),
        "revisit": after[3].isoformat(),
        "close": after[3].isoformat(),
    }
    assert case["due"] == after[1].isoformat() and case["overdue"] is False


def test_a_case_past_its_deadline_is_overdue_and_listed_first(tmp_path: Path) -> None:
    # verify_days = 0: due the day of the rating; a clock two days on makes it overdue.
    config = hall_with_deputy(tmp_path, date(2000, 1, 3))
    text = config.read_text(encoding="utf-8").replace("verify_days = 1 ", "verify_days = 0 ")
    config.write_text(text, encoding="utf-8")
    app = make_app(tmp_path, config)
    with TestClient(app) as client:
        first = bad_rating(client)
        boss = manager(client)
        engine = app.state.service.engine("demo-county")
        second = bad_rating(client)
        step(client, second["id"], boss, step="verify", valid=True)  # now due in 5 days
        engine.clock = lambda: datetime.now(UTC) + timedelta(days=2)
        cases = open_cases(client, boss)
        assert [c["id"] for c in cases] == [first["id"], second["id"]]
        assert [c["overdue"] for c in cases] == [True, False]


def _record_breach(client: TestClient[Litestar], app: Litestar, breach: str, window: str) -> None:
    engine = app.state.service.engine("demo-county")
    since = datetime.now(UTC) - timedelta(minutes=25)
    command = cmd.RecordBreach(
        breach=breach,
        rule="pause_too_long",
        window=window,
        staff="zhangwei",
        since=since,
        measured=25.0,
        limit=15.0,
        evidence=(3, 4),
    )

    async def record() -> None:
        await engine.execute(command)

    client.blocking_portal.call(record)


def test_a_breach_is_listed_and_excused_with_a_reason(tmp_path: Path, holiday: date) -> None:
    app = make_app(tmp_path, hall_with_deputy(tmp_path, holiday))
    with TestClient(app) as client:
        boss = manager(client)
        assert client.get(f"{BASE}/breaches", headers=boss).json()["breaches"] == []
        _record_breach(client, app, "pause_too_long:1:7", "1")
        listed = client.get(f"{BASE}/breaches?days=7", headers=boss).json()["breaches"]
        (breach,) = listed
        assert breach["rule_name"] == "超时暂停" and breach["rule_name_en"] == "Pause too long"
        assert (breach["measured"], breach["limit"], breach["unit"]) == (25.0, 15.0, "minutes")
        assert breach["staff_name"] == "张伟" and breach["excused"] is False
        assert breach["evidence"] == [3, 4]

        url = f"{BASE}/breaches/pause_too_long:1:7/excuse"
        staff = login(client, "2", "lina")
        assert client.post(url, json={"reason": "x"}, headers=staff).status_code == 403
        assert client.post(url, json={"reason": ""}, headers=boss).status_code == 400
        excused = client.post(url, json={"reason": "群众突发疾病，协助就医"}, headers=boss)
        assert excused.status_code == 200, excused.text
        body = excused.json()
        assert body["excused"] and body["excuse_reason"] == "群众突发疾病，协助就医"
        assert (body["excused_by"], body["excused_by_name"]) == ("manager", "王主任")
        again = client.post(url, json={"reason": "again"}, headers=boss)
        assert again.status_code == 409 and again.json()["error"] == "already_excused"
        unknown = client.post(f"{BASE}/breaches/nope/excuse", json={"reason": "x"}, headers=boss)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_breach"
        # Still listed, as excused: an excuse is recorded, never a deletion. (Logging lina in
        # may have made the watcher record breaches of its own: only this one is looked at.)
        listed = client.get(f"{BASE}/breaches?days=1", headers=boss).json()["breaches"]
        (kept,) = [b for b in listed if b["id"] == "pause_too_long:1:7"]
        assert kept["excused"] and kept["excuse_reason"] == "群众突发疾病，协助就医"
        assert client.get(f"{BASE}/breaches?days=0", headers=boss).status_code == 400
    # After a restart the read model (a file beside the journal, caught up again): the same facts.
    with TestClient(make_app(tmp_path, tmp_path / "hall.toml")) as client:
        listed = client.get(f"{BASE}/breaches?days=30", headers=manager(client)).json()
        (kept,) = [b for b in listed["breaches"] if b["id"] == "pause_too_long:1:7"]
        assert kept["excuse_reason"] == "群众突发疾病，协助就医" and kept["measured"] == 25.0
