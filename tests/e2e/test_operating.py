"""``hall serve`` as an operator meets it: clean help, a ready message, JSON log lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from hall.cli import main
from hall.settings import ROOT
from tests.support.redis import free_port

HALL = "demo-county"


def test_help_has_no_markup_and_every_serve_option_a_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--help"], ["serve", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text
    options = [line.split()[0] for line in text.splitlines() if line.strip().startswith("--")]
    assert options == ["--config", "--data", "--redis", "--region", "--host", "--port",
                       "--access-log", "--log-format", "--allow-volatile-redis", "--store-timeout",
                       "--read-timeout", "--discipline-tick", "--max-screens",
                       "--max-screens-per-address", "--device-heartbeat", "--node-id",
                       "--advertise", "--lease-seconds", "--voice-cache",
                       "--no-speech"]  # fmt: skip
    for option in options:
        described = text[text.index(f"  {option}") :].split("\n  --")[0]
        assert "default" in described, described


def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    command = [sys.executable, "-m", "hall.cli", "serve", "--port", str(port), "--data"]
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [*command, str(tmp_path), *args],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while "Stop with Ctrl-C" not in out.read_text():
        assert process.poll() is None and time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    return process, url, out, err


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def test_ready_message_and_json_logs_without_personal_data(tmp_path: Path) -> None:
    process, url, out, err = serve(tmp_path, "--log-format", "json", "--access-log")
    try:
        kiosk = {"Authorization": "Bearer demo-kiosk-token"}
        login = f"{url}/api/halls/{HALL}/windows/1/login"
        wrong = httpx.post(login, json={"username": "zhangwei", "password": "not-the-password"})
        assert wrong.status_code == 401
        right = httpx.post(login, json={"username": "zhangwei", "password": "hall-demo"})
        assert right.status_code == 200
        token = right.json()["token"]
        issued = httpx.post(
            f"{url}/api/halls/{HALL}/tickets", json={"category": "general"}, headers=kiosk
        )
        assert issued.status_code == 201
        pause = httpx.post(
            f"{url}/api/halls/{HALL}/windows/1/pause",
            json={"reason": "break", "note": "私人原因 private reason"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert pause.status_code == 200, pause.text
        feed = url.replace("http", "ws") + f"/ws/halls/{HALL}/events"
        with connect(feed, open_timeout=5) as socket_:
            assert json.loads(socket_.recv(timeout=5))["type"] == "snapshot"
    finally:
        stop(process)

    banner = out.read_text()
    assert f"{url}/api/halls" in banner and f"{url}/screens/demo-county" in banner
    assert f"{url}/schema" in banner
    assert f"{url}/health" in banner
    assert f"SQLite, {tmp_path / 'journal.sqlite3'}" in banner
    assert "demo-kiosk-token" in banner and "zhangwei / hall-demo" in banner

    lines = err.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    messages = [entry["message"] for entry in entries]
    assert any("replayed" in m for m in messages)
    requests = [m for m in messages if m.startswith('"POST ')]
    assert f'"POST /api/halls/{HALL}/windows/1/login HTTP/1.1" 401' in requests
    assert len(requests) == 4
    log = err.read_text()
    for secret in ("zhangwei", "张伟", "hall-demo", "demo-kiosk-token", token, "private reason"):
        assert secret not in log
    assert "127.0.0.1:" not in "".join(requests)  # no client addresses
    handshakes = [m for m in messages if "WebSocket" in m]
    assert handshakes and not any("127.0.0.1" in m for m in handshakes), handshakes


def test_no_demo_credentials_for_another_hall(tmp_path: Path) -> None:
    process, url, out, _ = serve(tmp_path, "--config", str(ROOT / "config" / "town.toml"))
    stop(process)
    banner = out.read_text()
    assert f"{url}/api/halls" in banner
    assert "hall-demo" not in banner and "kiosk token" not in banner


def test_a_taken_port_prints_no_ready_message_but_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "hall.cli", "serve", "--port", str(port)]
        done = subprocess.run(
            [*command, "--data", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 3
    assert "ready" not in done.stdout  # another server answers there: never send people to it
    assert f"port {port} is taken" in done.stderr and "--port" in done.stderr
