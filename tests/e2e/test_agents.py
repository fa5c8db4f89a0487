"""The printer and speaker agents as real processes (``hall printer-agent``, ``hall speaker-agent``)
against a real ``hall serve``: tickets issued at the kiosk come out of a fake network printer (a
TCP listener on 127.0.0.1 reading the ESC/POS stream), in order and each once, through a hall
killed and restarted, a printer switched off and on, paper running out, an agent killed and
restarted; calls come out of the speaker agent's player in call order, once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devices.link import JobFailed
from devices.printing.agent import TicketPrinter
from devices.printing.printers import Printer
from devices.protocol import Play
from devices.speaker import Settings as SpeakerSettings
from devices.speaker import Speaker
from hall.settings import DEFAULT_CONFIG
from tests.e2e.test_device_link import job
from tests.support.agents import Agent
from tests.support.fake_printer import FakePrinter, qr_codes
from tests.support.redis import free_port
from tests.support.server import ServerProcess
from tests.support.voice import needs_espeak

pytestmark = pytest.mark.slow

HALL = "demo-county"
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}


def hall_file(directory: Path) -> Path:
    """The demo hall with the kiosk's rate limit off (a test issues faster than a visitor)."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert "device_seconds = 3\n" in text
    path = directory / "hall.toml"
    path.write_text(text.replace("device_seconds = 3\n", "device_seconds = 0\n"), encoding="utf-8")
    return path


def eventually(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


class Proxy:
    """A TCP relay between an agent and the hall that can swallow what the agent sends (its acks
    among it) while passing on what the hall sends: an ack lost on the way."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.swallow = False
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                hall = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            self._sockets += [client, hall]
            threading.Thread(target=self._pipe, args=(client, hall, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(hall, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, up: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if not (up and self.swallow):
                    target.sendall(chunk)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        "--config",
        str(hall_file(tmp_path)),
        "--data",
        str(tmp_path / "data"),
        "--no-speech",
        # A device's health is journaled once a heartbeat at most: a status the tests wait for
        # should not wait the default 10 s.
        "--device-heartbeat",
        "2",
        log=tmp_path / "hall.log",
    )
    with server:
        yield server


@pytest.fixture
def printer() -> Iterator[FakePrinter]:
    with FakePrinter() as fake:
        yield fake


def printer_agent(
    hall: ServerProcess, printer: FakePrinter, directory: Path, port: int = 0
) -> Agent:
    token = directory / "printer.token"
    token.write_text("demo-printer-token\n")
    settings = {
        "hall_url": f"ws://127.0.0.1:{port or hall.port}/ws/halls/{HALL}/devices",
        "token_file": str(token),
        "printer": printer.address,
        "paper": 58,
        "state": str(directory / "printer-state"),
        "status_seconds": 0.2,
    }
    return Agent("printer", settings, directory)


def issue(hall: ServerProcess, count: int) -> list[str]:
    numbers = []
    for _ in range(count):
        response = httpx.post(
            f"{hall.url}/api/halls/{HALL}/tickets", json={"category": "general"}, headers=KIOSK
        )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["number"])
    return numbers


def device_status(hall: ServerProcess, device: str) -> str:
    snapshot = httpx.get(f"{hall.url}/api/halls/{HALL}/snapshot").json()
    return next(d["status"] for d in snapshot["devices"] if d["id"] == device)


def printed_once_in_order(printer: FakePrinter, issued: list[str]) -> None:
    eventually(lambda: len(printer.tickets()) >= len(issued), what=f"{len(issued)} tickets")
    time.sleep(0.3)  # a ticket printed twice would show by now
    numbers = printer.numbers()
    doubled = [n for n, count in Counter(numbers).items() if count > 1]
    assert not doubled, f"printed twice: {doubled}"
    assert numbers == issued


def test_tickets_print_in_order_once_each_through_a_killed_hall(
    hall: ServerProcess, printer: FakePrinter, tmp_path: Path
) -> None:
    with printer_agent(hall, printer, tmp_path) as agent:
        issued = issue(hall, 3)
        printed_once_in_order(printer, issued)
        (url,) = qr_codes(printer.tickets()[0])
        assert url.startswith(f"{hall.url}/phone/{HALL}/") and "#s=" in url
        eventually(lambda: device_status(hall, "printer-1") == "online")

        # Tickets pile up while the agent is frozen; the hall dies while it prints them.
        agent.signal(signal.SIGSTOP)
        issued += issue(hall, 30)
        agent.signal(signal.SIGCONT)
        while len(printer.tickets()) < 6:
            time.sleep(0.001)
        hall.kill9()
        assert len(printer.tickets()) < len(issued)
        hall.start()
        issued += issue(hall, 2)
        printed_once_in_order(printer, issued)
    assert "Traceback" not in agent.log.read_text()
    assert "#s=" not in agent.log.read_text()  # the tickets' secrets stay out of the log


def test_a_printer_switched_off_and_out_of_paper_prints_the_held_tickets_once(
    hall: ServerProcess, printer: FakePrinter, tmp_path: Path
) -> None:
    with printer_agent(hall, printer, tmp_path):
        issued = issue(hall, 2)
        printed_once_in_order(printer, issued)

        printer.stop()
        issued += issue(hall, 2)
        eventually(lambda: device_status(hall, "printer-1") == "printer_offline")
        assert len(printer.tickets()) == 2
        printer.start()  # on the same port
        printed_once_in_order(printer, issued)
        eventually(lambda: device_status(hall, "printer-1") == "online")

        printer.paper = "out"
        eventually(lambda: device_status(hall, "printer-1") == "paper_out")
        issued += issue(hall, 2)
        time.sleep(1.0)
        assert len(printer.tickets()) == 4  # nothing printed into an empty printer
        printer.paper = "low"
        eventually(lambda: device_status(hall, "printer-1") == "paper_low")
        printed_once_in_order(printer, issued)


def test_a_killed_agent_does_not_print_again_what_it_printed(
    hall: ServerProcess, printer: FakePrinter, tmp_path: Path
) -> None:
    proxy = Proxy(hall.port)
    agent = printer_agent(hall, printer, tmp_path, port=proxy.port)
    try:
        agent.start()
        issued = issue(hall, 3)
        printed_once_in_order(printer, issued)

        # The next ticket prints, and its ack is lost on the way; then the agent is killed.
        proxy.swallow = True
        issued += issue(hall, 1)
        done = tmp_path / "printer-state" / "done.txt"
        eventually(lambda: issued[-1] in done.read_text(), what="the ticket recorded as done")
        agent.kill9()
        eventually(lambda: device_status(hall, "printer-1") == "offline")
        issued += issue(hall, 2)  # while no agent runs
        proxy.swallow = False

        agent.start()  # the hall sends the lost-ack ticket again: acked, not printed
        printed_once_in_order(printer, issued)
        assert agent.stop() == 0
    finally:
        if agent.process is not None:
            agent.stop()
        proxy.close()


async def test_a_ticket_does_not_wait_for_the_printers_delayed_ack(printer: FakePrinter) -> None:
    # The status query after each ticket (the proof that it arrived) waited, by Nagle's algorithm,
    # for the ACK of the ticket's bytes, which the printer's side delays by 40 ms.
    tickets = TicketPrinter(Printer(printer.address), 80)
    took = []
    for n in range(1, 11):
        started = time.perf_counter()
        await tickets.perform(job(n))
        took.append(time.perf_counter() - started)
    assert [f"A{n:03d}" for n in range(1, 11)] == printer.numbers()
    assert statistics.median(took) < 0.02, took


def test_a_call_not_fetched_or_not_played_fails_as_an_error(
    hall: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    def speaker(player: str) -> Speaker:
        settings = SpeakerSettings(
            hall_url=f"ws://127.0.0.1:{hall.port}/ws/halls/{HALL}/devices",
            token="t",
            player=player,
            play_seconds=0.5,
            state=str(tmp_path),
        )
        return Speaker(hall.url, settings)

    def play(number: str) -> Play:
        url = f"/api/halls/{HALL}/announcements/{number}/1.wav"
        return Play(id="call-1", url=url, number=number, window="1")

    (number,) = issue(hall, 1)
    copied = tmp_path / "copied.wav"
    asyncio.run(speaker(f"cp {{file}} {copied}").perform(play(number)))
    assert copied.read_bytes()[:4] == b"RIFF"
    failures = {
        "HTTP 404": (speaker("true {file}"), play("Z999")),
        "ran over 0.5 s": (speaker("/bin/sh -c 'sleep 5' {file}"), play(number)),
        "exited with 1": (speaker("/bin/sh -c 'exit 1' {file}"), play(number)),
        "cannot run the player": (speaker("/nonexistent/player {file}"), play(number)),
    }
    for said, (one, call) in failures.items():
        with pytest.raises(JobFailed) as failed:
            asyncio.run(one.perform(call))
        assert failed.value.status == "error" and said in failed.value.detail
    assert not list(temporary.iterdir())  # no announcement left behind


@needs_espeak
def test_the_speaker_agent_plays_each_call_once_in_call_order(tmp_path: Path) -> None:
    played = tmp_path / "played"
    played.mkdir()
    failed_once = tmp_path / "failed-once"
    player = tmp_path / "player.sh"
    # Copies each file it is given into played/ under its turn; fails the first time it runs
    # (the hall sends that call again).
    player.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{failed_once}" ]; then touch "{failed_once}"; exit 3; fi\n'
        f'n=$(ls "{played}" | wc -l)\n'
        f'cp "$1" "{played}/$(printf %03d "$n").wav"\n'
    )
    server = ServerProcess(
        "--config", str(hall_file(tmp_path)), "--data", str(tmp_path / "data"), log=tmp_path / "log"
    )
    with server:
        settings = {
            "hall_url": f"ws://127.0.0.1:{server.port}/ws/halls/{HALL}/devices",
            "token": "demo-speaker-token",
            "player": f"/bin/sh {player} {{file}}",
            "state": str(tmp_path / "speaker-state"),
        }
        with Agent("speaker", settings, tmp_path) as agent:
            eventually(lambda: device_status(server, "speaker-1") == "online")
            issue(server, 3)
            calls = asyncio.run(call_all(server, 3))
            eventually(lambda: len(list(played.iterdir())) >= 3, timeout=30)
            time.sleep(0.5)
            files = sorted(played.iterdir())
            assert len(files) == 3
            for (number, window), file in zip(calls, files, strict=True):
                wav = httpx.get(
                    f"{server.url}/api/halls/{HALL}/announcements/{number}/{window}.wav"
                ).content
                assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
                assert file.read_bytes() == wav, f"{file.name} is not the call of {number}"
        log = agent.log.read_text()
        assert "the player exited with 3" in log and "Traceback" not in log


async def call_all(server: ServerProcess, count: int) -> list[tuple[str, str]]:
    """Window 1 calls, starts and finishes ``count`` tickets; the (number, window) of each call."""
    base = f"/api/halls/{HALL}/windows/1"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        login = await client.post(
            f"{base}/login", json={"username": "zhangwei", "password": "hall-demo"}
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        calls = []
        for _ in range(count):
            called = await client.post(f"{base}/call-next", headers=auth)
            assert called.status_code == 200, called.text
            calls.append((called.json()["ticket"]["number"], "1"))
            for action in ("start", "finish"):
                response = await client.post(f"{base}/{action}", headers=auth, json={})
                assert response.status_code == 200, response.text
    return calls
