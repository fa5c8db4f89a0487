"""The demo hall with its screens open to anyone: the start page lists each hall's pages and every
link on it opens; kill -9 the server under a hall screen: the page says its data may be out of
date, then, once the server is back on the same port and journal, resumes by itself and shows (and
says) the next call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hall.config import load
from hall.settings import DEFAULT_CONFIG
from tests.browser.conftest import (
    HALL,
    LISTEN,
    Api,
    hall_file,
    hall_server,
    screenshot,
    wait_live,
)
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("open-hall")
    with hall_server(directory, hall_file(directory)) as server:
        yield server


def test_the_start_page_links_every_page_and_the_links_work(
    browser: Any, server: ServerProcess
) -> None:
    config = load(DEFAULT_CONFIG)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.url + "/")
    assert config.hall.name in page.locator(f"#hall-{HALL} h2").inner_text()
    links = page.locator("a").evaluate_all("(as) => as.map((a) => a.getAttribute('href'))")
    windows = [f"/screens/{HALL}/windows/{w.id}" for w in config.windows]
    assert f"/screens/{HALL}" in links
    assert [link for link in links if "/windows/" in link] == windows
    assert "/schema/swagger" in links
    screenshot(page, "start", full_page=True)
    for link in set(links):
        response = page.request.get(server.url + link)
        assert response.status == 200, link

    page.locator("a.hall-screen").click()
    wait_live(page)
    assert page.locator("#title").inner_text() == config.hall.name
    page.go_back()
    page.locator("a.window-screen", has_text="12号窗口").click()
    wait_live(page)
    assert page.locator("#window-name").inner_text() == "12号窗口"
    assert page.locator("body").get_attribute("data-state") == "closed"
    page.close()


def test_a_screen_shows_it_is_stale_then_resyncs_by_itself(
    browser: Any, server: ServerProcess
) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{server.url}/screens/{HALL}")
    wait_live(page)
    with Api(server.url) as api:
        api.login("1", "zhangwei")
        before = api.issue("1")
        api.call_next("1")
    page.locator(f"#hero-number:text-is('{before}')").wait_for()

    server.kill9()
    page.wait_for_selector("body.feed-stale", timeout=5_000)
    assert page.locator(".stale-note").inner_text() == "信息可能不是最新 / may be out of date"
    # What it shows is dimmed, not hidden: still useful, visibly not current.
    for part in ("#hero", ".recent", ".queues", ".windows"):
        dimmed = page.evaluate(f"getComputedStyle(document.querySelector('{part}')).opacity")
        assert float(dimmed) < 1, part
    # ...and said in large type, across the screen, not only by the small dot.
    banner = page.locator(".stale-banner")
    assert banner.is_visible() and "Screen offline" in banner.inner_text()
    assert (
        page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.stale-banner')).fontSize)"
        )
        >= 30
    )
    screenshot(page, "hall-stale")

    server.start()  # the same port and journal
    wait_live(page, timeout=15_000)  # the page's next try: backoff grows to 10 s at most
    assert page.locator(".stale-note").is_hidden() and banner.is_hidden()
    page.evaluate(LISTEN)
    with Api(server.url) as api:  # sessions do not outlive the process: log in again
        api.login("1", "zhangwei")
        api.free("1")
        after = api.issue("1")
        api.call_next("1")
    page.locator(f"#hero-number:text-is('{after}')").wait_for()
    numbers = page.locator("#calls li .number").all_inner_texts()
    assert numbers[:2] == [after, before]
    wav = f"/api/halls/{HALL}/announcements/{after}/1.wav"
    page.wait_for_function(f"window.heard.filter((e) => e[1] === '{wav}').length >= 2")
    events = page.evaluate("window.heard")
    # The earlier call's announcement may still be ending (its WAV rendered late on a cold
    # voice cache); it is never started again by the resync.
    assert [e for e in events if e[1] == wav][:2] == [["playing", wav], ["ended", wav]]
    assert not [e for e in events if e[0] == "playing" and e[1] != wav], events
    page.close()
