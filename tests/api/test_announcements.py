"""The announcement route: a real call's WAV, the same for a recall; a 404 with the API's error
body for anything that is not a number and a window of the hall; speech off gives the chime; the
speech worker starts in the background and dies with the server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from displays.voice.chime import chime
from displays.voice.joiner import CHIME_GAP
from displays.voice.wav import decode, encode, samples
from hall.api.app import create_app
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import BASE, HALL, act, issue, login, make_app
from tests.support.voice import needs_espeak, rms

WAV = f"{BASE}/announcements"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Litestar]]:
    with TestClient(make_app(tmp_path_factory.mktemp("announce"))) as client:
        yield client


@needs_espeak
def test_a_called_number_is_announced_and_a_recall_is_the_same_wav(
    client: TestClient[Litestar],
) -> None:
    ticket = issue(client, "general")
    staff = login(client, "5")
    called = act(client, "5", "call-next", staff)["ticket"]
    assert called["number"] == ticket["number"]
    url = f"{WAV}/{called['number']}/5.wav"
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["cache-control"] == "public, max-age=3600"
    pcm = decode(response.content)  # mono, 16-bit, 22,050 Hz, or it raises
    assert pcm[: len(chime())] == chime()
    assert rms(pcm[len(chime()) + samples(CHIME_GAP) :]) > 1000  # speech follows the chime
    act(client, "5", "recall", staff)
    assert client.get(url).content == response.content
    # Another window is another announcement.
    assert client.get(f"{WAV}/{called['number']}/6.wav").content != response.content


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("Z001/5.wav", "unknown_number"),  # no category has the prefix Z
        ("A01/5.wav", "unknown_number"),  # the hall's numbers have 3 digits
        ("A0001/5.wav", "unknown_number"),
        ("a001/5.wav", "unknown_number"),
        ("A00%C2%B2/5.wav", "unknown_number"),  # a superscript two is no ASCII digit
        ("A001/99.wav", "unknown_window"),
        ("A001/5", "unknown_window"),  # the name of a WAV file
        ("A001/5.mp3", "unknown_window"),
        ("A001/.wav", "unknown_window"),
    ],
)
def test_anything_else_is_a_404_with_the_error_body(
    client: TestClient[Litestar], path: str, code: str
) -> None:
    response = client.get(f"{WAV}/{path}")
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and body["message"] and set(body) == {"error", "message", "detail"}


def test_a_well_formed_number_no_ticket_has_today_is_a_404(client: TestClient[Litestar]) -> None:
    """Else every prefix-and-digits number is a distinct URL that costs a fresh join."""
    taken = issue(client, "general")["number"]
    prefix, digits = taken[0], taken[1:]
    never = f"{prefix}{int(digits) + 500:0{len(digits)}d}"
    voice = client.app.state.service.voice
    joined = len(voice._joined)
    response = client.get(f"{WAV}/{never}/5.wav")
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "unknown_number" and never in response.json()["message"]
    assert len(voice._joined) == joined and not voice._joining  # nothing was joined for it
    assert client.get(f"{WAV}/{taken}/5.wav").status_code == 200  # issued, even if not called


def test_an_unknown_hall_is_a_404(client: TestClient[Litestar]) -> None:
    response = client.get("/api/halls/nowhere/announcements/A001/5.wav")
    assert response.status_code == 404 and response.json()["error"] == "unknown_hall"


def test_with_speech_off_a_call_is_the_chime_alone(tmp_path: Path) -> None:
    settings = Settings(configs=(DEFAULT_CONFIG,), data_dir=tmp_path, speech=False)
    with TestClient(create_app(settings)) as client:
        number = issue(client, "tax")["number"]
        response = client.get(f"{WAV}/{number}/7.wav")
        assert response.status_code == 200
        assert response.content == encode(chime())
        assert client.app.state.service.voice.renderer.pid is None  # no worker at all
    assert not (tmp_path / "voice").exists()


@needs_espeak
def test_the_worker_renders_in_the_background_and_dies_with_the_server(tmp_path: Path) -> None:
    settings = Settings(configs=(DEFAULT_CONFIG,), data_dir=tmp_path)  # a cold cache of its own
    with TestClient(create_app(settings)) as client:
        voice = client.app.state.service.voice
        # Started, serving, and still rendering its ~70 segments (10 ms each at the least).
        assert client.get("/api/halls").status_code == 200
        assert not voice.ready.is_set()
        # The worker starts in the background too: the server answers while it comes up and
        # while it writes its first segments.
        deadline = time.monotonic() + 20
        pid = voice.renderer.pid
        while pid is None or not list((tmp_path / "voice").glob("*.wav")):
            assert time.monotonic() < deadline and client.get("/health").status_code == 200
            time.sleep(0.02)
            pid = pid or voice.renderer.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped at stop


@needs_espeak
def test_the_audio_a_hall_screen_is_given_for_a_call_is_served(
    client: TestClient[Litestar],
) -> None:
    issue(client, "tax")
    staff = login(client, "8", "chenjing")
    with client.websocket_connect(f"/ws/halls/{HALL}/screens/hall") as ws:
        assert ws.receive_json(timeout=10)["type"] == "view"
        act(client, "8", "call-next", staff)
        calls: list[dict[str, str]] = []
        for _ in range(20):
            message = ws.receive_json(timeout=10)
            calls = message.get("changes", {}).get("calls", [])
            if calls:
                break
    (call,) = calls
    response = client.get(call["audio"])
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert response.content == client.get(f"{WAV}/{call['number']}/8.wav").content
    assert rms(decode(response.content)[len(chime()) + samples(CHIME_GAP) :]) > 1000
