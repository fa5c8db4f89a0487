"""``hall report`` on a real data directory: the journal a server wrote, the read model caught up
beside it (and kept for the next run), the report as CSV, text and JSON."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from litestar.testing import TestClient

from hall.reports.csv import COLUMNS
from hall.reports.periods import FORMS
from tests.api.conftest import BASE, act, issue, login, make_app

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}


def hall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hall.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_report_from_a_data_directory(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        staff = login(client, "1")
        first = issue(client, "general")
        issue(client, "general")
        act(client, "1", "call-next", staff)
        act(client, "1", "start", staff)
        act(client, "1", "finish", staff, {"outcome": "done"})
        rated = client.post(f"{BASE}/tickets/{first['id']}/rating", json={"level": 4},
                            headers=PAD_1)  # fmt: skip
        assert rated.status_code == 200, rated.text
    result = hall("report", "--data", str(tmp_path), "--period", "today", "--by", "window",
                  "--format", "csv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # a quick catch-up off a terminal draws no progress
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert tuple(rows[0]) == COLUMNS
    total = rows[0]
    assert (total["row"], total["issued"], total["served"], total["rated"]) == (
        "total",
        "2",
        "1",
        "1",
    )
    assert total["level_4"] == "1" and total["satisfaction"] == "1.0000"
    window = {r["key"]: r for r in rows[1:]}["1"]
    assert (window["name"], window["served"], window["participation"]) == ("1号窗口", "1", "1.0000")
    assert window["score"] != ""
    model = tmp_path / "reports-demo-county.sqlite3"
    assert model.is_file()  # kept beside the journal: the next run folds only what is new

    text = hall("report", "--data", str(tmp_path), "--period", "this-week")
    assert text.returncode == 0, text.stderr
    assert "示范县政务服务中心 (demo-county)" in text.stdout
    assert "issued 2, served 1" in text.stdout
    # The hall's own clock (the demo hall runs on Asia/Shanghai), with its zone: not UTC.
    generated = re.search(r"generated (\S+ \S+) (\S+)", text.stdout)
    assert generated is not None and generated[2] == "Asia/Shanghai", text.stdout
    local = datetime.strptime(generated[1], "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    assert abs(datetime.now(UTC) - local) < timedelta(minutes=2)
    data = json.loads(
        hall("report", "--data", str(tmp_path), "--period", "this-month", "--format", "json").stdout
    )
    assert data["total"]["issued"] == 2 and data["by"] == "hall" and data["rows"] == []


def test_refusals_say_why(tmp_path: Path) -> None:
    bad = hall("report", "--data", str(tmp_path), "--period", "2026-13")
    assert bad.returncode == 2 and "no month 13" in bad.stderr
    assert FORMS in bad.stderr  # the README's promise: the accepted forms are listed
    empty = hall("report", "--data", str(tmp_path / "nothing"), "--period", "today")
    assert empty.returncode == 2 and "no journal at" in empty.stderr
    assert not (tmp_path / "nothing").exists()  # nothing made where nothing was
    usage = hall("report", "--data", str(tmp_path))
    assert usage.returncode == 2 and "--period" in usage.stderr
