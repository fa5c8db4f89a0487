"""The ``hall`` command as an operator runs it: check a hall file, refuse a bad one, replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from litestar.testing import TestClient

from hall.settings import DEFAULT_CONFIG
from tests.api.conftest import act, issue, login, make_app
from tests.support.redis import free_port
from tests.support.server import ServerProcess


def hall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hall.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_summarises_a_good_file() -> None:
    result = hall("check-config", str(DEFAULT_CONFIG))
    assert result.returncode == 0, result.stderr
    assert "hall demo-county" in result.stdout
    assert "16 windows" in result.stdout


def test_a_bad_file_names_the_file_key_and_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    broken.write_text(text.replace('prefix = "B"', 'prefix = "A"'), encoding="utf-8")
    result = hall("check-config", str(broken))
    assert result.returncode == 1
    assert str(broken) in result.stderr
    assert "categories[1].prefix" in result.stderr
    assert "duplicate prefix 'A'" in result.stderr
    # The server refuses to start on it, with the same message.
    served = hall("serve", "--config", str(broken), "--data", str(tmp_path), "--port", "1")
    assert served.returncode == 2
    assert "categories[1].prefix" in served.stderr


def test_replay_rebuilds_the_hall_from_its_journal(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with TestClient(app) as client:
        engine = app.state.service.engine("demo-county")
        for _ in range(3):
            issue(client, "general")
        staff = login(client, "2")
        act(client, "2", "call-next", staff)
    # The day's start, three tickets, the login, the call; and a late login's breach if the
    # clock is past the grace of an opening period.
    assert engine.state.version in (6, 7)
    result = hall("replay", "--data", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"hall demo-county: {engine.state.version} events replayed" in result.stdout
    assert "'called': 1" in result.stdout
    assert "'waiting': 2" in result.stdout
    assert "'general': 2" in result.stdout


def test_new_device_token_prints_a_token_and_its_hash() -> None:
    import hashlib

    result = hall("new-device-token")
    lines = result.stdout.splitlines()
    token = lines[0].split()[-1]
    digest = lines[1].split()[-1].strip('"')
    assert len(token) >= 43  # 32 random bytes, base64
    assert hashlib.sha256(token.encode()).hexdigest() == digest


def test_check_config_against_history_names_retired_windows(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        issue(client, "general")
        staff = login(client, "2")
        act(client, "2", "call-next", staff)
        cancelled = issue(client, "general")  # by the kiosk: a device, not a retired staff member
        kiosk = {"Authorization": "Bearer demo-kiosk-token"}
        assert client.post(f"/api/halls/demo-county/tickets/{cancelled['id']}/cancel", json={},
                           headers=kiosk).status_code == 200  # fmt: skip
    window_2 = '[[windows]]\nid = "2"\nname = "2号窗口"\nname_en = "Window 2"\nzone = "general"\n'
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert window_2 in text
    retired = tmp_path / "retired.toml"
    retired.write_text(
        text.replace(
            window_2,
            '[[windows]]\nid = "2b"\nname = "2号窗口"\nname_en = "Window 2"\nzone = "general"\n',
        ),
        encoding="utf-8",
    )
    journal = str(tmp_path / "journal.sqlite3")
    result = hall("check-config", str(retired), "--journal", journal)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "retired window 2" in result.stdout
    assert "retired staff" not in result.stdout, result.stdout
    missing = hall("check-config", str(retired), "--journal", str(tmp_path / "typo.sqlite3"))
    assert missing.returncode == 1 and "no journal at" in missing.stdout
    assert not (tmp_path / "typo.sqlite3").exists()
    unreachable = hall("check-config", str(retired), "--journal", "redis://127.0.0.1:1/0")
    assert unreachable.returncode == 1 and "cannot read the journal" in unreachable.stdout
    assert "Traceback" not in unreachable.stderr
    assert "replay with this file" in result.stdout
    # The hall starts on its history with the window gone, the called ticket kept.
    result = hall("replay", "--config", str(retired), "--data", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "'called': 1" in result.stdout


def test_two_files_with_one_hall_id_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "copy.toml"
    copy.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    served = hall(
        "serve",
        "--config",
        str(DEFAULT_CONFIG),
        "--config",
        str(copy),
        "--data",
        str(tmp_path),
        "--port",
        "1",
    )
    assert served.returncode == 2
    assert str(DEFAULT_CONFIG) in served.stderr and str(copy) in served.stderr
    assert "hall id 'demo-county'" in served.stderr


def test_a_second_server_on_one_sqlite_journal_is_refused(tmp_path: Path) -> None:
    with ServerProcess("--data", str(tmp_path), log=tmp_path / "first.log") as first:
        second = hall("serve", "--data", str(tmp_path), "--port", str(free_port()))
        assert second.returncode != 0
        assert "another hall server is using the journal" in second.stderr
        assert "Traceback" not in second.stderr and "--port" not in second.stderr  # one line
        assert second.returncode == 3
        assert "ready" not in second.stdout
        assert httpx.get(f"{first.url}/ready", timeout=5).status_code == 200  # unharmed
    # Once the first is gone (even killed), the journal is free again.
    with ServerProcess("--data", str(tmp_path), log=tmp_path / "again.log") as again:
        assert httpx.get(f"{again.url}/ready", timeout=5).status_code == 200
