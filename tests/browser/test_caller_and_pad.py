"""The window caller (呼叫器) and the evaluation pad (评价器) in a real browser against a real
``hall serve``: a kiosk ticket called, started and finished from the caller with the keyboard
(through a reload of the page mid-service), rated on the window's pad, the rating stored against
that ticket and a second one refused; the pad's timeout recorded as "not rated"; a press retried
under its Idempotency-Key after no answer; the choosers by keypad digits; refusals said plainly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import HALL, PASSWORD, Api, hall_file, hall_server, screenshot
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

DESK = {"width": 1024, "height": 600}
DESK_LARGE = {"width": 1280, "height": 800}
PAD = {"width": 1280, "height": 800}
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}
PAD_1 = {"Authorization": "Bearer demo-pad-1-token"}
PAD_SECONDS = 10  # the least a hall may set: the timeout test waits this long
# The parts of the caller page that must be on screen, and the lines that must not be cut.
DESK_PARTS = ".top, .current, .actions, .queue, .message"
DESK_LINES = ".act, .held-number, .state-pill, #queue li"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("desk")
    config = hall_file(directory)
    config.write_text(
        config.read_text(encoding="utf-8") + f"\n[rating]\npad_seconds = {PAD_SECONDS}\n",
        encoding="utf-8",
    )
    with hall_server(directory, config) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    with Api(server.url) as api:
        response = api.http.post(
            "/managers/login", json={"username": "manager", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        api.tokens["manager"] = {"Authorization": f"Bearer {response.json()['token']}"}
        yield api


class Pages:
    """Pages of one test, each in its own browser context (its own storage, as a device has);
    a script error on any of them fails the test."""

    def __init__(self, browser: Any, server: ServerProcess) -> None:
        self.browser, self.server = browser, server
        self.errors: list[str] = []
        self.opened: list[Any] = []

    def open(self, path: str, viewport: dict[str, int], before: Any = None) -> Any:
        page = self.browser.new_page(viewport=viewport)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        if before is not None:
            before(page)
        page.goto(self.server.url + path)
        page.wait_for_selector("body.feed-live", timeout=10_000)
        self.opened.append(page)
        return page


@pytest.fixture
def pages(browser: Any, server: ServerProcess) -> Iterator[Pages]:
    found = Pages(browser, server)
    yield found
    for page in found.opened:
        page.close()
    assert not found.errors, found.errors


ISSUED: dict[str, dict[str, Any]] = {}  # the module's tickets by number (for their secrets)


def take(api: Api, category: str = "general") -> dict[str, Any]:
    """A ticket from the kiosk, as a visitor takes it (its id, number and secret)."""
    response = api.http.post("/tickets", json={"category": category}, headers=KIOSK)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    ISSUED[ticket["number"]] = ticket
    return ticket


def numbers(page: Any) -> list[str]:
    """The caller's queue, as listed."""
    return [li.get_attribute("data-number") for li in page.locator("#queue li").all()]


def drain(api: Api, window: str) -> None:
    """Whatever ``window`` may call is called and marked a no-show: the next test starts clean."""
    api.free(window)
    while api.call_next(window) is not None:
        api.act(window, "no-show")


def log_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.press("#password", "Enter")


def state(page: Any, name: str) -> None:
    page.wait_for_selector(f"body[data-state='{name}']:not(.busy)", timeout=10_000)


def press(page: Any, key: str, then: str) -> None:
    page.keyboard.press(key)
    state(page, then)


def ratings(api: Api, ticket: str) -> list[dict[str, Any]]:
    """The ticket_rated events of ``ticket``, as the manager reads the journal."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        response = api.http.get(
            "/journal", params={"after": after, "limit": 1000}, headers=api.tokens["manager"]
        )
        assert response.status_code == 200, response.text
        entries = response.json()
        if not entries:
            return found
        found += [
            e["event"]
            for e in entries
            if e["event"]["type"] == "ticket_rated" and e["event"]["ticket"] == ticket
        ]
        after = entries[-1]["version"]


def fits(page: Any, boxes: str, lines: str) -> list[str]:
    """What sticks out of the viewport (nothing scrolls) or out of its own box (cut)."""
    out: list[str] = page.evaluate(
        """([boxes, lines]) => {
            const outside = [...document.querySelectorAll(boxes)].filter((el) => {
                const r = el.getBoundingClientRect();
                return r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5
                    || r.bottom > innerHeight + 0.5;
            });
            const cut = [...document.querySelectorAll(lines)].filter(
                (el) => el.scrollWidth > el.clientWidth + 1);
            return [...outside, ...cut].map((el) => el.id || el.className || el.tagName);
        }""",
        [boxes, lines],
    )
    return out


def test_a_ticket_called_by_keyboard_finished_and_rated_on_the_pad(pages: Pages, api: Api) -> None:
    pad = pages.open(f"/pad/{HALL}#token=demo-pad-1-token", PAD)
    pad.wait_for_selector("body[data-step='idle']")
    assert "#token" not in pad.url  # the token left the address bar (it is kept by the browser)
    assert "窗口暂未开放" in pad.locator("#welcome").inner_text()  # nobody at window 1 yet

    caller = pages.open(f"/caller/{HALL}/1", DESK)
    assert caller.locator("#login").is_visible()
    screenshot(caller, "caller-login")
    log_in(caller, "zhangwei")
    state(caller, "open")
    assert caller.locator("#who-user").inner_text() == "zhangwei"
    assert caller.locator("#who-name").inner_text() == "张*"  # as the window screen names her

    pad.locator("#card").wait_for()
    assert pad.locator("#staff-name").inner_text() == "张*"
    assert pad.locator("#staff-no").inner_text() == "1002"
    screenshot(pad, "pad-idle")

    # Four visitors wait already (tickets the staff took for them); then one takes a ticket at
    # the kiosk for a quick service with a short target (证照出件: 10 minutes x 3 against 20 x 8
    # for general affairs). Under the weighted policy its claim grows four to five times as fast:
    # within a second it is the one call-next takes, and the desk says so by itself.
    for category in ("general", "social", "medical", "general"):
        response = api.http.post(
            "/tickets", json={"category": category}, headers=api.tokens["manager"]
        )
        assert response.status_code == 201, response.text
    caller.wait_for_timeout(300)
    ticket = take(api, "collection")
    number = ticket["number"]
    caller.locator(f"#queue li[data-number='{number}']").wait_for()
    version = api.http.get("/snapshot").json()["version"]
    caller.wait_for_selector(f"#queue li:first-child[data-number='{number}']", timeout=5_000)
    assert api.http.get("/snapshot").json()["version"] == version  # no event: time alone
    assert caller.locator("#waiting").inner_text() == "5"
    order = [li.get_attribute("data-number") for li in caller.locator("#queue li").all()]
    press(caller, "n", "calling")  # what the queue listed first is what N calls
    assert caller.locator("#held-number").inner_text() == number
    assert [li.get_attribute("data-number") for li in caller.locator("#queue li").all()] == order[
        1:
    ]
    caller.wait_for_timeout(1600)  # the running time has ticked
    assert caller.locator("#running").inner_text() != "0:00"
    assert fits(caller, DESK_PARTS, DESK_LINES) == []
    screenshot(caller, "caller-calling")

    # A reload mid-service (and the login it keeps): still logged in, the ticket still held.
    caller.reload()
    caller.wait_for_selector("body.feed-live")
    state(caller, "calling")
    assert caller.locator("#login").is_hidden()
    assert caller.locator("#held-number").inner_text() == number

    press(caller, "s", "serving")
    caller.keyboard.press("t")  # the transfer chooser, then Esc: nothing sent
    caller.locator("#chooser").wait_for()
    assert caller.locator("#options li").count() == 2
    caller.keyboard.press("Escape")
    assert caller.locator("#chooser").is_hidden()
    caller.set_viewport_size(DESK_LARGE)
    caller.wait_for_timeout(100)
    assert fits(caller, DESK_PARTS, DESK_LINES) == []
    screenshot(caller, "caller-serving-1280x800")
    caller.set_viewport_size(DESK)
    screenshot(caller, "caller-serving")

    caller.keyboard.press("f")
    caller.locator("#chooser").wait_for()
    assert caller.locator("#options").inner_text().split()[:3] == ["1", "办结", "Done"]
    press(caller, "1", "open")  # 1: 办结 (done)

    pad.wait_for_selector("body[data-step='rate']")
    assert pad.locator("#rate-number").inner_text() == number
    screenshot(pad, "pad-rating-form")
    pad.locator(".level-1").click()  # 非常不满意: the hall wants to know why
    pad.wait_for_selector("body[data-step='reasons']")
    assert pad.locator("#submit").is_disabled()  # a reason at least
    pad.locator(".reason[data-reason='wait']").click()
    pad.locator(".reason[data-reason='unclear']").click()
    pad.locator("#comment").fill("排队一个小时")
    screenshot(pad, "pad-low-rating-reasons")
    pad.locator("#submit").click()
    pad.wait_for_selector("body[data-step='message'][data-message='thanks']")
    screenshot(pad, "pad-thanks")
    pad.wait_for_selector("body[data-step='idle']", timeout=10_000)

    (rated,) = ratings(api, ticket["id"])
    assert (rated["level"], rated["window"], rated["staff"]) == (1, "1", "zhangwei")
    assert (rated["channel"], rated["by"]) == ("pad", "pad-1")
    assert sorted(rated["reasons"]) == ["unclear", "wait"]
    assert rated["comment"] == "排队一个小时"
    assert api.http.get(f"/tickets/{ticket['id']}").json()["rated"] is True

    # One rating per transaction: neither the pad again nor the visitor's phone.
    again = api.http.post(f"/tickets/{ticket['id']}/rating", json={"level": 5}, headers=PAD_1)
    assert (again.status_code, again.json()["error"]) == (409, "already_rated")
    phone = api.http.post(
        f"/tickets/{ticket['id']}/visitor-rating", json={"secret": ticket["secret"], "level": 5}
    )
    assert (phone.status_code, phone.json()["error"]) == (409, "already_rated")
    assert len(ratings(api, ticket["id"])) == 1
    assert pad.locator("body[data-step='idle']").count() == 1  # nothing more offered
    api.login("1", "zhangwei")
    drain(api, "1")


def test_a_pad_with_no_answer_records_not_rated(pages: Pages, api: Api) -> None:
    pad = pages.open(f"/pad/{HALL}#token=demo-pad-1-token", PAD)
    staff = api.login("1", "zhangwei")
    api.free("1")
    ticket = take(api)
    assert api.call_next("1") == ticket["number"]
    api.act("1", "start")
    api.act("1", "finish", {"outcome": "accepted"})
    pad.wait_for_selector("body[data-step='rate']")
    counted = int(pad.locator("#countdown").inner_text().split()[0])
    assert 0 < counted <= PAD_SECONDS
    # Nobody touches it: after pad_seconds it goes back to idle, having said "not rated".
    pad.wait_for_selector("body[data-step='idle']", timeout=(PAD_SECONDS + 5) * 1000)
    (rated,) = ratings(api, ticket["id"])
    assert (rated["level"], rated["reasons"], rated["comment"]) == (None, [], None)
    assert (rated["channel"], rated["by"]) == ("pad", "pad-1")
    # "Not rated" is no rating: the visitor may still rate from the phone, once.
    phone = api.http.post(
        f"/tickets/{ticket['id']}/visitor-rating", json={"secret": ticket["secret"], "level": 4}
    )
    assert phone.status_code == 200, phone.text
    assert [r["level"] for r in ratings(api, ticket["id"])] == [None, 4]
    assert staff  # the window stays open for the next test


def holding(frames: list[str], sockets: list[Any], down: dict[str, bool]) -> Any:
    """A route for a page's feed that keeps the hall's frames from it while ``down["on"]``
    (a network gone for a moment); ``sockets`` gets the routes, to deliver them later."""

    def route(ws: Any) -> None:
        sockets.append(ws)
        server = ws.connect_to_server()

        def from_hall(message: str) -> None:
            if down["on"]:
                frames.append(message)
            else:
                ws.send(message)

        server.on_message(from_hall)
        ws.on_message(server.send)

    return route


def test_a_pad_says_when_the_phone_rated_first(pages: Pages, api: Api) -> None:
    """The pad's feed lags (the network), the visitor rates on the phone meanwhile, then taps
    the pad: the hall refuses the second rating and the pad says so, then is idle again."""
    held: list[str] = []
    sockets: list[Any] = []
    down = {"on": False}
    pad = pages.open(
        f"/pad/{HALL}#token=demo-pad-1-token",
        PAD,
        before=lambda page: page.route_web_socket(
            re.compile(r".*/screens/windows/1"), holding(held, sockets, down)
        ),
    )
    api.login("1", "zhangwei")
    api.free("1")
    ticket = take(api)
    assert api.call_next("1") == ticket["number"]
    api.act("1", "start")
    api.act("1", "finish", {"outcome": "done"})
    pad.wait_for_selector("body[data-step='rate']")
    down["on"] = True
    phone = api.http.post(
        f"/tickets/{ticket['id']}/visitor-rating", json={"secret": ticket["secret"], "level": 4}
    )
    assert phone.status_code == 200, phone.text
    pad.locator(".level-5").click()
    pad.wait_for_selector("body[data-step='message'][data-message='refused']")
    assert "已评价过" in pad.locator("#message-zh").inner_text()
    assert "rated already" in pad.locator("#message-en").inner_text()
    screenshot(pad, "pad-refused")
    down["on"] = False
    for message in held:
        sockets[-1].send(message)
    pad.wait_for_selector("body[data-step='idle']", timeout=10_000)
    assert [(r["level"], r["channel"]) for r in ratings(api, ticket["id"])] == [(4, "phone")]


def test_a_press_without_an_answer_is_retried_under_the_same_key(pages: Pages, api: Api) -> None:
    """The hall did the call but neither its answer nor the feed reached the page (a network
    gone for a moment): the page still shows the window open, so the staff press again, and
    the same Idempotency-Key makes the hall answer from its journal: one call, not two."""
    api.login("1", "zhangwei")
    api.free("1")
    held: list[str] = []  # the feed's frames kept from the page while "the network is down"
    sockets: list[Any] = []
    down = {"on": False}
    caller = pages.open(
        f"/caller/{HALL}/1",
        DESK,
        before=lambda page: page.route_web_socket(
            re.compile(r".*/screens/desks/1"), holding(held, sockets, down)
        ),
    )
    log_in(caller, "zhangwei")  # logged in already at this window: a new token, nothing else
    state(caller, "open")
    tickets = [take(api)["number"] for _ in range(2)]
    caller.locator(f"#queue li[data-number='{tickets[1]}']").wait_for()

    keys: list[str | None] = []

    def lost_answer(route: Any) -> None:
        keys.append(route.request.header_value("Idempotency-Key"))
        if len(keys) == 1:  # the hall does it, but its answer never reaches the page
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    caller.route("**/windows/1/call-next", lost_answer)
    down["on"] = True
    caller.keyboard.press("n")
    caller.wait_for_selector(".message.retry")
    assert "不会重复执行" in caller.locator("#message").inner_text()
    assert caller.locator("body").get_attribute("data-state") == "open"  # as far as it knows
    screenshot(caller, "caller-retry")

    caller.keyboard.press("n")
    caller.wait_for_selector(f".message.info:has-text('{tickets[0]}')")
    assert len(keys) == 2 and keys[0] is not None and keys[0] == keys[1]
    # The network is back: the frames held meanwhile arrive, and the page shows the call.
    down["on"] = False
    for message in held:
        sockets[-1].send(message)
    state(caller, "calling")
    assert caller.locator("#held-number").inner_text() == tickets[0]
    snapshot = api.http.get("/snapshot").json()
    window = next(w for w in snapshot["windows"] if w["id"] == "1")
    assert window["ticket"] == tickets[0]  # called once: the second press was the same press
    general = next(q for q in snapshot["queues"] if q["category"] == "general")
    assert tickets[1] in general["next_numbers"]  # not called behind the page's back
    api.free("1")


def test_choosers_take_keypad_digits_and_refusals_are_said(pages: Pages, api: Api) -> None:
    api.login("1", "zhangwei")
    api.login("2", "lina")
    api.free("2")
    caller = pages.open(f"/caller/{HALL}/2", DESK)
    log_in(caller, "zhangwei")  # logged in at window 1 already
    note = caller.locator("#login-note")
    note.wait_for()
    assert "您已在1号窗口登录" in note.inner_text()
    assert "window 1" in note.inner_text()
    screenshot(caller, "caller-error")
    log_in(caller, "lina")
    state(caller, "open")

    # Pause: the hall's reasons, by digit.
    caller.keyboard.press("p")
    caller.locator("#chooser").wait_for()
    reasons = caller.locator("#options li")
    assert reasons.count() == 5 and "暂停休息" in reasons.first.inner_text()
    screenshot(caller, "caller-pause-chooser")
    press(caller, "2", "paused")
    assert caller.locator("#idle-line").inner_text().split()[0] == "暂停服务"
    assert "会议培训" in caller.locator("#idle-detail").inner_text()
    caller.keyboard.press("n")  # not while paused: said, nothing sent
    assert "不能执行" in caller.locator(".message.error").inner_text()
    assert caller.locator("[data-act='call']").is_disabled()
    press(caller, "c", "open")

    # Transfer to a service by two digits: 1 (a service), then 1 2 (the twelfth).
    ticket = take(api, "general")
    caller.locator(f"#queue li[data-number='{ticket['number']}']").wait_for()
    press(caller, "n", "calling")
    held = caller.locator("#held-number").inner_text()
    caller.keyboard.press("t")
    caller.keyboard.press("1")
    options = caller.locator("#options li")
    options.nth(11).wait_for()
    last = options.nth(11).inner_text()
    screenshot(caller, "caller-transfer-chooser")
    caller.keyboard.press("1")
    assert caller.locator("#typed").inner_text() == "1…"  # 1, or 10, 11, 12: wait for more
    press(caller, "2", "open")
    moved = api.http.get(f"/tickets/{api_ticket_id(api, held)}").json()
    assert moved["state"] == "waiting" and moved["category_name"] in last

    # A login that ended meanwhile (every session of lina ended by her password change): the
    # next press says so and asks for the login again; the window itself stays open.
    changed = api.http.post(
        "/password",
        json={"old_password": PASSWORD, "new_password": "hall-demo-2"},
        headers=api.tokens["2"],
    )
    assert changed.status_code == 200, changed.text
    caller.keyboard.press("n")
    caller.locator("#login").wait_for()
    assert "登录已失效" in note.inner_text()
    screenshot(caller, "caller-session-ended")
    log_in(caller, "lina", "hall-demo-2")
    state(caller, "open")

    # Wrong passwords again and again: the username is locked a while, and the page says how long.
    other = pages.open(f"/caller/{HALL}/5", DESK)
    statuses = []
    for _ in range(6):
        with other.expect_response("**/windows/5/login") as answer:
            log_in(other, "liuyang", "not-the-password")
        statuses.append(answer.value.status)
    assert statuses == [401] * 5 + [429]
    text = other.locator("#login-note").inner_text()
    assert "尝试次数过多" in text and re.search(r"请 \d+ 秒后再试", text), text


def api_ticket_id(api: Api, number: str) -> str:
    """Today's ticket id of ``number`` (the day and the number)."""
    snapshot = api.http.get("/snapshot").json()
    day = str(snapshot["day"]).replace("-", "")
    return f"{day}-{number}"


def test_unknown_pages_are_not_found(server: ServerProcess) -> None:
    for path in (f"/caller/{HALL}/99", "/caller/nowhere/1", "/pad/nowhere"):
        response = httpx.get(server.url + path)
        assert response.status_code == 404, path


def test_a_pad_without_a_token_says_how_to_set_it_up(browser: Any, server: ServerProcess) -> None:
    page = browser.new_page(viewport=PAD)
    page.goto(f"{server.url}/pad/{HALL}")
    page.wait_for_selector("body[data-step='setup']")
    assert "尚未设置" in page.locator("#setup-zh").inner_text()
    page.goto(f"{server.url}/pad/{HALL}#token=not-a-token")  # given to the open page
    page.wait_for_selector("#setup-zh:text('令牌无效')")
    page.close()


def test_a_server_restart_mid_service_keeps_the_staff_logged_in(
    pages: Pages, api: Api, server: ServerProcess
) -> None:
    caller = pages.open(f"/caller/{HALL}/1", DESK)
    log_in(caller, "zhangwei")
    state(caller, "open")
    api.login("1", "zhangwei")
    drain(api, "1")
    number = take(api)["number"]
    caller.locator(f"#queue li[data-number='{number}']").wait_for()
    press(caller, "n", "calling")
    assert caller.locator("#held-number").inner_text() == number

    server.stop()
    caller.wait_for_selector("body.feed-stale", timeout=5_000)
    server.start()  # the same port and data: the journal, and the sessions
    caller.wait_for_selector("body.feed-live", timeout=15_000)
    assert caller.locator("#login").is_hidden()
    press(caller, "s", "serving")  # the token from before the restart still acts
    caller.keyboard.press("f")
    press(caller, "3", "open")  # 3: 退回 (returned)
    assert caller.locator("#login").is_hidden()
    finished = api.http.get(f"/tickets/{ISSUED[number]['id']}").json()
    assert (finished["state"], finished["outcome"]) == ("finished", "returned")
