"""The hall screen and the window screens in a real browser, on a hall whose screens need a device
token: a call shows on both and is spoken; two calls at once are both shown and spoken in order;
paused and closed windows; the small LED-style window screen; a refused token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.browser.conftest import (
    HALL,
    LISTEN,
    SCREEN_TOKEN,
    Api,
    hall_file,
    hall_server,
    heard,
    screenshot,
    wait_live,
)
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

HD = {"width": 1920, "height": 1080}
# The parts of the hall screen, and the lines that must never be cut.
HALL_PARTS = ".top, .hero, .hero-line, .recent, .zones, .queues, .windows, .notice"
HALL_LINES = ".hero, .hero-sentence, #calls .number, .queues .next, .windows li"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("screens")
    with hall_server(directory, hall_file(directory, require_device=True)) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    with Api(server.url) as api:
        api.login("1", "zhangwei")
        api.login("2", "lina")
        yield api


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page(viewport=HD)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, errors  # a script error on a screen is a bug even if the test passed


def open_screen(page: Any, server: ServerProcess, path: str) -> None:
    page.goto(f"{server.url}{path}?token={SCREEN_TOKEN}")
    wait_live(page)


def test_a_call_shows_on_the_hall_and_window_screens_and_is_spoken(
    browser: Any, page: Any, server: ServerProcess, api: Api
) -> None:
    open_screen(page, server, f"/screens/{HALL}")
    window = browser.new_page(viewport=HD)
    open_screen(window, server, f"/screens/{HALL}/windows/1")
    page.evaluate(LISTEN)

    # People waiting for what windows 1 and 2 do not serve: the screen lists their next numbers.
    waiting = {c: [api.issue("1", c) for _ in range(3)] for c in ("tax", "invoice", "project")}
    number = api.issue("1")
    assert api.call_next("1") == number

    hero = page.locator("#hero")
    hero.locator(f"#hero-number:text-is('{number}')").wait_for()
    assert hero.locator("#hero-window").inner_text() == "1号窗口"
    assert hero.locator("#hero-zh").inner_text() == f"请 {number} 号到 1号窗口"
    assert hero.locator("#hero-en").inner_text() == f"{number} → Window 1"
    assert "highlight" in (hero.get_attribute("class") or "")
    assert page.locator("#calls li .number").first.inner_text() == number
    window.locator(f"#number:text-is('{number}')").wait_for()
    assert window.locator("body").get_attribute("data-state") == "calling"
    assert window.locator("#staff-name").inner_text() == "张*"  # 张伟, masked
    assert window.locator("#staff-no").inner_text() == "1002"
    tax = page.locator("#queues li[data-queue='tax']")
    assert tax.locator(".next span").all_inner_texts() == waiting["tax"]
    assert tax.locator(".waiting").inner_text().split()[0] == "3"
    assert page.locator("#zones li[data-zone='tax'] b").inner_text() == "6"

    wav = f"/api/halls/{HALL}/announcements/{number}/1.wav"
    assert heard(page, 2) == [["playing", wav], ["ended", wav]]

    assert fits(page, HALL_PARTS, HALL_LINES) == []
    screenshot(page, "hall-1920x1080")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(100)
    assert fits(page, HALL_PARTS, HALL_LINES) == []
    screenshot(page, "hall-1280x720")
    screenshot(window, "window-1920x1080")
    window.close()


def test_two_calls_at_once_are_both_shown_and_spoken_in_order(
    page: Any, server: ServerProcess, api: Api
) -> None:
    open_screen(page, server, f"/screens/{HALL}")
    page.evaluate(LISTEN)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(frame)))
    api.free("1")
    api.free("2")
    api.issue("1")
    api.issue("1")
    # Both windows call at the same moment: the writer may put both calls in one batch.
    with ThreadPoolExecutor(2) as pool:
        called = dict(zip(["1", "2"], pool.map(api.call_next, ["1", "2"]), strict=True))
    assert sorted(called.values()) == sorted(set(called.values()))  # two different tickets

    page.wait_for_function(
        "([a, b]) => [...document.querySelectorAll('#calls li .number')].slice(0, 2)"
        ".map(n => n.textContent).sort().join() === [a, b].sort().join()",
        arg=sorted(called.values()),
    )
    shown = page.locator("#calls li").all()[:2]
    newest, older = (li.locator(".number").inner_text() for li in shown)
    window_of = {number: window for window, number in called.items()}
    # Announced one after the other, the older call first, neither cut off.
    wavs = [f"/api/halls/{HALL}/announcements/{n}/{window_of[n]}.wav" for n in (older, newest)]
    assert heard(page, 4, timeout=30_000) == [
        ["playing", wavs[0]],
        ["ended", wavs[0]],
        ["playing", wavs[1]],
        ["ended", wavs[1]],
    ]
    same_frame = [f for f in frames if older in f and newest in f and '"delta"' in f]
    print(f"two calls: {'one delta' if same_frame else 'two deltas'}")


def test_a_two_digit_window_fits_the_call_box(page: Any, server: ServerProcess, api: Api) -> None:
    """ "13号窗口" is a third wider than "1号窗口": the newest call still fits its box."""
    open_screen(page, server, f"/screens/{HALL}")
    api.login("13", "sunli")
    number = api.issue("13", "household")
    assert api.call_next("13") == number
    page.locator(f"#hero-number:text-is('{number}')").wait_for()
    for viewport in (HD, {"width": 1280, "height": 720}):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(100)
        sticking_out = page.evaluate(
            """() => {
                const hero = document.querySelector('#hero').getBoundingClientRect();
                return [...document.querySelectorAll('.hero-call > p')]
                    .filter((line) => { const r = line.getBoundingClientRect();
                        return r.left < hero.left || r.right > hero.right; })
                    .map((line) => line.className);
            }"""
        )
        assert sticking_out == [], viewport
    screenshot(page, "hall-window-13")
    api.free("13")
    api.act("13", "logout")


def test_paused_and_closed_window_screens(page: Any, server: ServerProcess, api: Api) -> None:
    api.login("3", "manager")
    open_screen(page, server, f"/screens/{HALL}/windows/3")
    page.wait_for_selector("body[data-state='open']")
    api.act("3", "pause", {"reason": "break"})
    page.wait_for_selector("body[data-state='paused']")
    assert page.locator("#label").inner_text().split() == ["暂停服务", "Paused"]
    assert page.locator("#reason").inner_text().split() == ["暂停休息", "Short", "break"]
    screenshot(page, "window-paused")
    api.act("3", "logout")
    page.wait_for_selector("body[data-state='closed']")
    assert page.locator("#label").inner_text().split() == ["窗口已关闭", "Window", "closed"]
    assert page.locator("#staff").is_hidden()
    assert page.locator("#number").inner_text() == ""
    screenshot(page, "window-closed")


def test_the_window_screen_as_a_small_led_display(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    page = browser.new_page(viewport={"width": 320, "height": 160})
    open_screen(page, server, f"/screens/{HALL}/windows/1")
    number = page.locator("#number")
    number.wait_for()
    assert re.fullmatch(r"[A-Z][0-9]{3}", number.inner_text())
    box = number.bounding_box()
    assert box is not None and box["height"] > 70  # the number fills most of the 160 px
    assert page.locator("#window-name").is_visible()
    for hidden in ("#staff", "#label", "#category", ".bottom"):
        assert page.locator(hidden).is_hidden(), hidden
    assert fits(page, "#number, #window-name") == []
    screenshot(page, "window-320x160")
    page.close()


@pytest.mark.parametrize(
    ("token", "code", "message"),
    [(None, 4401, "需要有效的设备令牌"), ("demo-kiosk-token", 4403, "不能打开本屏幕")],
)
def test_a_refused_screen_says_why(
    page: Any, server: ServerProcess, token: str | None, code: int, message: str
) -> None:
    query = f"?token={token}" if token else ""
    page.goto(f"{server.url}/screens/{HALL}/windows/2{query}")
    refusal = page.locator("#refusal")
    refusal.wait_for()
    assert message in refusal.inner_text()
    assert f"({code})" in refusal.inner_text()
    assert page.locator("body.feed-refused").count() == 1


def test_an_unknown_screen_is_a_page_not_found(page: Any, server: ServerProcess) -> None:
    response = page.goto(f"{server.url}/screens/{HALL}/windows/99")
    assert response is not None and response.status == 404
    assert "没有窗口 '99'" in page.locator("h1").inner_text()  # repr(): quoted, escaped


def fits(page: Any, boxes: str, lines: str = "") -> list[str]:
    """What sticks out: the ``boxes`` out of the viewport (screens never scroll, so that is lost),
    the ``lines`` out of their own box (cut). Nothing, on a good page."""
    out: list[str] = page.evaluate(
        """([boxes, lines]) => {
            const outside = [...document.querySelectorAll(boxes)].filter((el) => {
                const r = el.getBoundingClientRect();
                return r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5
                    || r.bottom > innerHeight + 0.5;
            });
            const cut = lines ? [...document.querySelectorAll(lines)].filter(
                (el) => el.scrollWidth > el.clientWidth + 1) : [];
            return [...outside, ...cut].map((el) => el.id || el.className);
        }""",
        [boxes, lines],
    )
    return out
