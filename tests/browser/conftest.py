"""Real pages in headless Debian Chromium (Playwright, never a browser download) against a real
``hall serve`` process: one server and one browser per module, a page per test.

Screenshots go to ``test-artifacts/screens/`` (look at them: legible, nothing clipped, Chinese
rendered).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hall.settings import DEFAULT_CONFIG
from tests.support.server import ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a machine without a GPU, a sandbox or the network; and sound without a click, as
# the hall's screens run it.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENS = ROOT / "test-artifacts" / "screens"
HALL = "demo-county"
PASSWORD = "hall-demo"
SCREEN_TOKEN = "demo-screen-token"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(
            f"PAGE TESTS SKIPPED: {CHROMIUM} is missing "
            "(apt-get install chromium fonts-wqy-zenhei; Playwright never downloads a browser)"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


# The demo hall's announcement is a chime and two sentences, about 12 s a call: these tests check
# that the page plays calls in order and to the end, not what they say (tests/unit does), so they
# use one short fast sentence.
DEMO_VOICE = """[voice]
repeat = 1
chime = true

[[voice.languages]]
lang = "zh-CN"
voice = "sit/cmn-latn-pinyin"
template = "请{number}号到{window}号窗口办理"

[[voice.languages]]
lang = "en"
voice = "gmw/en"
template = "Number {number}, please go to window {window}"
"""
SHORT_VOICE = """[voice]
chime = false

[[voice.languages]]
lang = "en"
voice = "gmw/en"
template = "{number}, window {window}"
rate = 300
"""


def hall_file(directory: Path, require_device: bool = False) -> Path:
    """The demo hall with a short announcement, its screens open to anyone or only to device
    tokens."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert DEMO_VOICE in text
    text = text.replace(DEMO_VOICE, SHORT_VOICE)
    if require_device:
        text = text.replace("require_device = false", "require_device = true")
        assert "require_device = true" in text
    path = directory / "hall.toml"
    path.write_text(text, encoding="utf-8")
    return path


def hall_server(directory: Path, config: Path) -> ServerProcess:
    """``hall serve`` on a free port, its SQLite journal in ``directory``: use it with ``with``."""
    data = directory / "data"
    return ServerProcess("--config", str(config), "--data", str(data), log=directory / "log")


class Api:
    """The hall's HTTP API, as a caller and a manager use it."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/halls/{HALL}", timeout=10)
        self.tokens: dict[str, dict[str, str]] = {}

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self, window: str, username: str) -> dict[str, str]:
        response = self.http.post(
            f"/windows/{window}/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        self.tokens[window] = {"Authorization": f"Bearer {response.json()['token']}"}
        return self.tokens[window]

    def issue(self, window: str, category: str = "general") -> str:
        """A ticket issued by the staff at ``window`` (staff issue without a kiosk's limit)."""
        response = self.http.post(
            "/tickets", json={"category": category}, headers=self.tokens[window]
        )
        assert response.status_code == 201, response.text
        number: str = response.json()["number"]
        return number

    def act(self, window: str, action: str, body: Any = None) -> Any:
        response = self.http.post(
            f"/windows/{window}/{action}", json=body or {}, headers=self.tokens[window]
        )
        assert response.status_code == 200, response.text
        return response.json()

    def free(self, window: str) -> None:
        """Whatever ``window`` called or serves is finished: it may call again."""
        snapshot = self.http.get("/snapshot").json()
        state = next(w["state"] for w in snapshot["windows"] if w["id"] == window)
        if state == "calling":
            self.act(window, "start")
        if state in ("calling", "serving"):
            self.act(window, "finish", {"outcome": "done"})

    def call_next(self, window: str) -> str:
        number: str = self.act(window, "call-next")["window"]["ticket"]
        return number


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_live(page: Any, timeout: float = 10_000) -> None:
    page.wait_for_selector("body.feed-live", timeout=timeout)


# Records what the announcer's <audio> element does, as the hall hears it.
LISTEN = """() => {
  window.heard = [];
  const audio = document.getElementById("announcer");
  for (const type of ["playing", "ended"]) {
    const path = () => new URL(audio.currentSrc).pathname;
    audio.addEventListener(type, () => window.heard.push([type, path()]));
  }
}"""


def heard(page: Any, count: int, timeout: float = 20_000) -> list[list[str]]:
    """The first ``count`` audio events, once there are that many."""
    page.wait_for_function(f"window.heard.length >= {count}", timeout=timeout)
    events: list[list[str]] = page.evaluate("window.heard")
    return events[:count]
