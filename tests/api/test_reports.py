"""Reports over HTTP: managers only, a clear 400 for a period or grouping it cannot read, the
figures of every event journaled before the request, a CSV download, and the read model kept
following the journal in the background."""

from __future__ import annotations

import csv
import io
import time

from litestar import Litestar
from litestar.testing import TestClient

from tests.api.conftest import BASE, HALL, KIOSK, PASSWORD, act, issue, login

PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}


def manager(client: TestClient[Litestar]) -> dict[str, str]:
    response = client.post(
        f"{BASE}/managers/login", json={"username": "manager", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _last_served(client: TestClient[Litestar]) -> str:
    journal = client.get(f"{BASE}/journal?after=0&limit=1000", headers=manager(client)).json()
    finished = [e for e in journal if e["event"]["type"] == "service_finished"]
    return str(finished[-1]["event"]["ticket"])


def test_managers_only(client: TestClient[Litestar]) -> None:
    staff = login(client, "1")
    for path in ("reports", "reports.csv"):
        url = f"{BASE}/{path}?period=today"
        assert client.get(url).status_code == 401
        refused = client.get(url, headers=staff)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]
        assert client.get(url, headers=KIOSK).status_code == 403
    assert client.get(f"{BASE}/reports?period=today", headers=manager(client)).status_code == 200


def test_bad_period_or_grouping_is_400(client: TestClient[Litestar]) -> None:
    boss = manager(client)
    for query, says in (
        ("period=2026-13", "no month 13"),
        ("period=last-decade", "cannot read the period"),
        ("period=2026-10-31..2026-10-01", "ends before it starts"),
        ("period=2026-10&by=desk", "cannot group by"),
    ):
        for path in ("reports", "reports.csv"):
            response = client.get(f"{BASE}/{path}?{query}", headers=boss)
            assert response.status_code == 400, (query, response.text)
            body = response.json()
            assert body["error"] == "invalid_query" and says in body["message"], body
    missing = client.get(f"{BASE}/reports", headers=boss)
    assert missing.status_code == 400 and "period" in missing.text
    elsewhere = client.get("/api/halls/nowhere/reports?period=today", headers=boss)
    assert elsewhere.status_code in (403, 404)


def test_figures_of_everything_journaled_before(client: TestClient[Litestar]) -> None:
    boss = manager(client)
    staff = login(client, "1")
    for _ in range(3):
        issue(client, "general")
    act(client, "1", "call-next", staff)
    act(client, "1", "start", staff)
    act(client, "1", "finish", staff, {"outcome": "done"})
    rated = client.post(f"{BASE}/tickets/{_last_served(client)}/rating", json={"level": 2,
                        "reasons": ["slow"]}, headers=PAD_1)  # fmt: skip
    assert rated.status_code == 200, rated.text
    body = client.get(f"{BASE}/reports?period=today&by=window", headers=boss).json()
    total = body["total"]
    assert (total["issued"], total["served"], total["rated"], total["cases"]) == (3, 1, 1, 1)
    assert total["levels"] == [0, 0, 0, 1, 0] and total["bad_rate"] == 1.0
    assert body["by"] == "window" and body["hall"] == HALL and body["period"] == "today"
    one = next(row for row in body["rows"] if row["key"] == "1")
    assert one["served"] == 1 and one["name"] == "1号窗口" and one["score"] is not None
    issue(client, "general")  # at once in the next report: caught up before answering
    again = client.get(f"{BASE}/reports?period=today", headers=boss).json()
    assert again["total"]["issued"] == 4 and again["version"] > body["version"]
    assert again["rows"] == []


def test_csv_download(client: TestClient[Litestar]) -> None:
    issue(client, "general")
    response = client.get(f"{BASE}/reports.csv?period=this-month&by=staff", headers=manager(client))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="report-{HALL}-this-month-staff.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffperiod,start,end,by,row,key,name,issued,")  # for Excel
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert rows[0]["row"] == "total" and rows[0]["issued"] == "1"
    names = {r["key"]: r["name"] for r in rows[1:]}
    assert names["zhangwei"] == "张伟" and "manager" not in names  # staff rows, managers' eyes


def test_the_read_model_follows_in_the_background(client: TestClient[Litestar]) -> None:
    reports = client.app.state.service.reports
    for _ in range(2):
        issue(client, "general")
    deadline = time.monotonic() + 10
    while reports.models[HALL].version < 2:  # no report asked: the follower folded them
        assert time.monotonic() < deadline, reports.models[HALL].version
        time.sleep(0.05)
