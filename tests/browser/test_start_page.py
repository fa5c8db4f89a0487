"""The start page lists each hall's pages, and every link on it opens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hall.config import load
from hall.settings import DEFAULT_CONFIG
from tests.browser.conftest import HALL, hall_server, screenshot, wait_live
from tests.support.server import ServerProcess

pytest.importorskip("playwright")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with hall_server(tmp_path_factory.mktemp("start"), DEFAULT_CONFIG) as server:
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
    screenshot(page, "start")
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
