"""The kiosk page and the visitor's phone page in a real browser, against one real ``hall serve``:
take a ticket by touch and by keyboard alone, with and without an ID number (a wrong one issues
nothing; one person, one live ticket per service), through a lost answer retried under the same
Idempotency-Key and past the kiosk's rate limit; then follow a ticket on the phone as it is
called and served, rate it, and be refused a second rating and a wrong secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import HALL, Api, hall_file, hall_server, screenshot, wait_live
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

KIOSK_TOKEN = "demo-kiosk-token"
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
SMALL = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
ID_OLD = "11010519491231002X"  # born 1949: the green lane (绿色通道)
ID_WRONG = "110105194912310029"  # the same with a wrong check character
# Window 7 calls 工程建设项目审批 (project) first, and nothing else calls it: the phone tests call
# their own tickets there.
WINDOW = "7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("kiosk")
    with hall_server(directory, hall_file(directory)) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    with Api(server.url) as api:
        api.login(WINDOW, "liuyang")
        yield api


def new_page(browser: Any, viewport: dict[str, int], **options: Any) -> Any:
    page = browser.new_page(viewport=viewport, **options)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def close(page: Any) -> None:
    errors = page.errors
    page.close()
    assert not errors, errors  # a script error is a bug even if the test passed


def open_kiosk(page: Any, server: ServerProcess, query: str = "") -> None:
    page.goto(f"{server.url}/kiosk/{HALL}{query}#token={KIOSK_TOKEN}")
    wait_live(page)
    page.wait_for_selector("body[data-printer]")  # devices/me answered


def step(page: Any) -> str:
    name: str = page.evaluate("document.body.dataset.step")
    return name


def outside(page: Any) -> list[str]:
    """Visible buttons and big lines that stick out of the viewport or are cut: none, on a good
    kiosk screen (it never scrolls)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll(
                'button, h1, h2, .number, .facts p, .take, .message .zh, .id-input, .masked')]
            .filter((el) => el.offsetParent !== null)
            .filter((el) => {
                const r = el.getBoundingClientRect();
                return r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5
                    || r.bottom > innerHeight + 0.5 || el.scrollWidth > el.clientWidth + 1;
            })
            .map((el) => el.id || el.className || el.tagName)"""
    )
    return found


def waiting(api: Api, category: str) -> int:
    queues = api.http.get("/snapshot").json()["queues"]
    count: int = next(q["waiting"] for q in queues if q["category"] == category)
    return count


def lookup(api: Api, ticket: str) -> Any:
    response = api.http.get(f"/tickets/{ticket}")
    assert response.status_code == 200, response.text
    return response.json()


# -- the kiosk ---------------------------------------------------------------------------------


def test_a_ticket_by_touch_on_a_portrait_kiosk_with_elder_mode(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    page = new_page(browser, PORTRAIT, has_touch=True)
    open_kiosk(page, server, "?idle=8")
    assert page.url.endswith(f"/kiosk/{HALL}?idle=8")  # the token left the address bar
    assert step(page) == "zones" and page.locator("#zones .choice").count() == 8
    general = page.locator("#zones .choice[data-id='general']")
    before = waiting(api, "general")
    api.issue(WINDOW, "general")  # someone else takes one: the count follows live
    general.locator(f".count b:text-is('{before + 1}')").wait_for()
    assert outside(page) == []
    screenshot(page, "kiosk-start-1080x1920")

    general.tap()
    assert step(page) == "categories"
    names = page.locator("#categories .choice .name").all_inner_texts()
    assert names == ["综合事务", "证照出件"]
    assert "General Affairs" in page.locator("#categories").inner_text()
    screenshot(page, "kiosk-categories-1080x1920")
    page.locator("#back").tap()

    page.locator("#elder").tap()
    assert page.locator("#elder").get_attribute("aria-checked") == "true"
    assert page.locator("#zones .choice").count() == 4  # fewer, larger buttons
    big = page.locator("#zones .choice .name").first.evaluate("(e) => getComputedStyle(e).fontSize")
    assert float(big.removesuffix("px")) >= 60  # 43 px out of elder mode
    assert outside(page) == []
    screenshot(page, "kiosk-elder-1080x1920")
    page.locator("#zones-pager .next").tap()
    page.locator("#zones .choice[data-id='general']").tap()
    page.locator("#categories .choice[data-id='general']").tap()
    page.wait_for_selector("#ticket-step:not([hidden])")
    number = page.locator("#t-number").inner_text()
    ticket = lookup(api, page.locator("#ticket-step").get_attribute("data-ticket"))
    assert ticket["number"] == number and ticket["state"] == "waiting"
    assert page.locator("#t-take").is_visible()  # kiosk-1 prints on printer-1
    assert page.locator("#t-ahead").inner_text().startswith(str(ticket["ahead"]))
    assert outside(page) == []
    screenshot(page, "kiosk-ticket-elder-1080x1920")

    page.locator("#t-done").tap()
    assert step(page) == "zones" and "elder" in page.locator("body").get_attribute("class")
    # Idle for 8 s: back to the start as the next visitor should find it, elder mode off.
    page.locator("#zones .choice").first.tap()
    assert step(page) == "categories"
    page.wait_for_function("!document.body.classList.contains('elder')", timeout=12_000)
    assert step(page) == "zones"
    close(page)


def test_a_ticket_by_keyboard_alone(browser: Any, server: ServerProcess, api: Api) -> None:
    page = new_page(browser, LANDSCAPE)
    open_kiosk(page, server)
    page.keyboard.press("Tab")  # the elder switch, then the zones in order
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.id") == "enterprise"
    page.keyboard.press("Enter")
    assert step(page) == "categories"
    page.keyboard.press("Escape")
    assert step(page) == "zones"
    page.keyboard.press("8")  # the digits pick: 8 综合服务专区, then 2 证照出件
    assert page.locator("#categories .shortcut").first.is_visible()  # once the keyboard is used
    page.keyboard.press("2")
    page.wait_for_selector("#ticket-step:not([hidden])")
    ticket = lookup(api, page.locator("#ticket-step").get_attribute("data-ticket"))
    assert ticket["category"] == "collection"
    assert page.locator("#t-number").inner_text() == ticket["number"]
    assert page.locator("#t-category").inner_text().split() == [
        "证照出件",
        "Document",
        "Collection",
    ]
    assert page.evaluate("document.activeElement.id") == "t-done"
    assert outside(page) == []
    screenshot(page, "kiosk-ticket-1920x1080")
    page.keyboard.press("Enter")
    assert step(page) == "zones"
    close(page)


def test_an_id_number_is_checked_masked_and_limits_one_ticket_per_service(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    page = new_page(browser, SMALL, has_touch=True)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    open_kiosk(page, server)
    version = api.http.get("/snapshot").json()["version"]

    page.locator("#id-open").tap()
    assert step(page) == "id"
    for key in ID_WRONG:  # on the on-screen keypad
        page.locator(f".key[data-key='{key}']").tap()
    page.locator("#id-ok").tap()
    error = page.locator("#id-error")
    assert error.get_attribute("data-problem") == "checksum"
    assert "校验不符" in error.inner_text() and "check" in error.inner_text()
    assert outside(page) == []
    screenshot(page, "kiosk-id-entry-1280x800")
    assert posts == [] and api.http.get("/snapshot").json()["version"] == version  # nothing

    page.locator(".key[data-key='Backspace']").tap()
    page.keyboard.type("x")  # the physical keyboard types too (X in either case)
    page.keyboard.press("Enter")
    assert step(page) == "zones"
    assert page.locator("#id-masked").inner_text() == "1101**********002X"
    assert ID_OLD not in page.locator("body").inner_text()
    assert page.locator("#id-input").input_value() == ""
    page.locator("#zones .choice[data-id='general']").tap()
    page.locator("#categories .choice[data-id='general']").tap()
    page.wait_for_selector("#ticket-step:not([hidden])")
    held = page.locator("#t-number").inner_text()
    assert "绿色通道" in page.locator("#t-priority").inner_text()  # 70 and over, by the ID number
    assert lookup(api, page.locator("#ticket-step").get_attribute("data-ticket"))["priority"] == (
        "green"
    )
    assert page.locator("#id-masked").is_hidden()  # forgotten once the ticket is taken
    page.locator("#t-done").tap()

    # The same person, the same service: refused, and told which number they hold.
    page.locator("#id-open").tap()
    page.keyboard.type(ID_OLD)
    page.keyboard.press("Enter")
    page.locator("#zones .choice[data-id='general']").tap()
    page.locator("#categories .choice[data-id='general']").tap()
    page.wait_for_selector("#message-step:not([hidden])")
    assert page.locator("#message-step").get_attribute("data-error") == "already_holding"
    assert page.locator("#m-number").inner_text() == held
    assert "已持有" in page.locator("#m-zh").inner_text()
    assert outside(page) == []
    screenshot(page, "kiosk-already-holding-1280x800")
    assert page.locator("#id-masked").is_hidden()
    assert all(ID_OLD not in url for url in posts)  # in bodies only, never in an address
    close(page)


def test_a_lost_answer_is_retried_under_the_same_key(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    """The server takes the ticket but the answer never arrives, twice more nothing gets
    through: the kiosk says the server cannot be reached; Try again, with the same key, gets the
    ticket the server had made. One tap, one ticket."""
    page = new_page(browser, SMALL)
    open_kiosk(page, server)
    keys: list[str] = []
    issued: list[Any] = []

    def lose(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if not issued:
            issued.append(route.fetch().json())  # it reached the server...
        route.abort("connectionreset")  # ...and the answer was lost

    page.route(f"**/api/halls/{HALL}/tickets", lose)
    before = waiting(api, "social")
    page.locator("#zones .choice[data-id='social']").click()
    page.locator("#categories .choice[data-id='social']").click()
    page.wait_for_selector("#message-step:not([hidden])", timeout=10_000)
    assert page.locator("#message-step").get_attribute("data-error") == "unreachable"
    assert "无法连接" in page.locator("#m-zh").inner_text()
    assert len(keys) == 3  # the tap and two retries of its own
    page.unroute(f"**/api/halls/{HALL}/tickets")
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if r.method == "POST" else None)
    page.locator("#m-retry").click()
    page.wait_for_selector("#ticket-step:not([hidden])")
    assert requests[0].headers["idempotency-key"] == keys[0]
    assert len(set(keys)) == 1
    assert page.locator("#t-number").inner_text() == issued[0]["number"]
    assert waiting(api, "social") == before + 1
    close(page)


def test_a_kiosk_issuing_too_fast_is_told_when_to_try_again(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    page = new_page(browser, SMALL)
    open_kiosk(page, server)
    kiosk = {"Authorization": f"Bearer {KIOSK_TOKEN}"}
    for _ in range(10):  # use up the kiosk's burst ([issuing] device_burst)
        if (
            api.http.post("/tickets", json={"category": "medical"}, headers=kiosk).status_code
            == 429
        ):
            break
    # On a slow machine the kiosk may have earned a ticket back meanwhile (one every 3 s): tap
    # until it is refused.
    for _ in range(5):
        page.locator("#zones .choice[data-id='medical']").click()
        page.locator("#categories .choice[data-id='medical']").click()
        page.wait_for_selector("#message-step:not([hidden]), #ticket-step:not([hidden])")
        if step(page) == "message":
            break
        page.locator("#t-done").click()
    assert page.locator("#message-step").get_attribute("data-error") == "too_many_attempts"
    assert re.search(r"请 \d+ 秒后再试", page.locator("#m-zh").inner_text())
    assert page.locator("#m-retry").is_disabled()
    screenshot(page, "kiosk-too-fast-1280x800")
    page.wait_for_selector("#m-retry:not([disabled])", timeout=10_000)
    page.locator("#m-retry").click()
    page.wait_for_selector("#ticket-step:not([hidden])")
    close(page)


def test_a_kiosk_without_a_valid_kiosk_token_says_how_to_set_it_up(
    browser: Any, server: ServerProcess
) -> None:
    page = new_page(browser, SMALL)
    page.goto(f"{server.url}/kiosk/{HALL}")
    assert step(page) == "setup"
    assert "尚未设置" in page.locator("#setup-step").inner_text()
    page.goto(f"{server.url}/kiosk/{HALL}#token=demo-pad-1-token")
    page.wait_for_function("document.body.dataset.step === 'setup'")
    assert "不是取号机" in page.locator("#setup-zh").inner_text()
    page.goto(f"{server.url}/kiosk/{HALL}#token=not-a-token")
    page.wait_for_function("document.getElementById('setup-zh').textContent.includes('无效')")
    close(page)


# -- the phone page ----------------------------------------------------------------------------

# Records what the page asks the phone to do when the call comes.
VIBRATE = "navigator.vibrate = (p) => { (window.vibrated ??= []).push(p); return true; };"


def issued(api: Api, category: str = "project") -> Any:
    """A ticket issued by window 7's staff, with its secret (as printed on the paper ticket)."""
    response = api.http.post("/tickets", json={"category": category}, headers=api.tokens[WINDOW])
    assert response.status_code == 201, response.text
    return response.json()


def served(api: Api, ticket: Any) -> None:
    """Call ``ticket`` at window 7 (the oldest project ticket), start and finish it."""
    api.free(WINDOW)
    assert api.call_next(WINDOW) == ticket["number"]
    api.act(WINDOW, "start")
    api.act(WINDOW, "finish", {"outcome": "done"})


def open_phone(browser: Any, server: ServerProcess, ticket: Any, secret: str | None) -> Any:
    page = new_page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.add_init_script(VIBRATE)
    fragment = f"#s={secret}" if secret else ""
    page.goto(f"{server.url}/phone/{HALL}/{ticket['id']}{fragment}")
    wait_live(page)
    return page


def test_the_phone_follows_its_ticket_to_the_call_and_rates_it_once(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    api.free(WINDOW)
    earlier = issued(api)
    ticket = issued(api)
    requests: list[Any] = []
    page = new_page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.add_init_script(VIBRATE)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    page.on("request", lambda r: requests.append(r))
    page.goto(f"{server.url}/phone/{HALL}/{ticket['id']}#s={ticket['secret']}")
    wait_live(page)
    assert page.url.endswith(f"/phone/{HALL}/{ticket['id']}")  # the secret left the address
    assert all(ticket["secret"] not in r.url for r in requests)
    key = f"hall.ticket-secret.{HALL}.{ticket['id']}"
    assert page.evaluate(f"localStorage.getItem('{key}')") == ticket["secret"]
    assert page.locator("#number").inner_text() == ticket["number"]
    assert page.locator("#waiting").is_visible()
    assert page.locator("#ahead").inner_text().split()[0] == "1"  # the earlier ticket
    screenshot(page, "phone-waiting-375x667")

    assert page.locator("#alerts").is_visible()
    page.locator("#number").tap()  # the first touch anywhere lets the page beep
    page.wait_for_selector("#alerts", state="hidden")
    assert api.call_next(WINDOW) == earlier["number"]
    page.wait_for_function("document.getElementById('ahead').textContent.startsWith('0')")
    api.act(WINDOW, "start")
    api.act(WINDOW, "finish", {"outcome": "done"})
    assert api.call_next(WINDOW) == ticket["number"]
    page.wait_for_selector("body[data-state='called']")
    assert page.locator("#called-window").inner_text() == "7号窗口"
    assert page.locator("#called-window-en").inner_text() == "Window 7"
    assert page.evaluate("window.vibrated") == [[400, 150, 400, 150, 400]]
    assert page.evaluate("document.body.dataset.alerted") == "vibrate beep"
    screenshot(page, "phone-called-375x667")
    api.act(WINDOW, "recall")
    page.wait_for_function("window.vibrated.length === 2")  # a recall alerts again
    assert page.locator("#recall").is_visible()

    api.act(WINDOW, "start")
    page.wait_for_selector("body[data-state='serving']")
    api.act(WINDOW, "finish", {"outcome": "done"})
    page.wait_for_selector("#rating:not([hidden])")
    page.locator(".level-2").tap()  # 不满意: the hall's reasons, one at least
    assert page.locator("#reasons").is_visible()
    assert page.locator("#reasons .reason").count() == 6
    page.locator("#submit-rating").tap()
    assert "至少选择一项" in page.locator("#rating-error").inner_text()
    page.locator("#reasons .reason", has_text="排队太久").tap()
    page.locator("#comment").fill("等了很久\n窗口太少")
    screenshot(page, "phone-rating-375x667", full_page=True)
    page.locator("#submit-rating").tap()
    page.wait_for_selector("#thanks:not([hidden])")
    assert page.locator("body").get_attribute("data-rated") == "accepted"
    screenshot(page, "phone-thanks-375x667")
    assert lookup(api, ticket["id"])["rated"]

    # One rating per transaction: the API refuses a second; the page, reloaded, only thanks.
    again = api.http.post(
        f"/tickets/{ticket['id']}/visitor-rating", json={"secret": ticket["secret"], "level": 5}
    )
    assert again.status_code == 409 and again.json()["error"] == "already_rated"
    page.reload()
    wait_live(page)
    page.wait_for_selector("#thanks:not([hidden])")
    assert page.locator("#rating").is_hidden()
    for frame in frames:  # nothing but what the paper ticket tells
        assert ticket["secret"] not in frame and "等了很久" not in frame
        assert not {"level", "reasons", "comment"} & set(json.loads(frame).get("changes", {}))
    close(page)


def test_a_wrong_secret_cannot_cancel_or_rate(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    mine = issued(api)
    page = open_phone(browser, server, mine, "not-the-secret")
    page.locator("#cancel").tap()
    assert page.locator("#confirm").is_visible()
    page.locator("#confirm-yes").tap()
    page.wait_for_selector("#problem:not([hidden])")
    assert page.locator("body").get_attribute("data-error") == "wrong_secret"
    assert "密钥不符" in page.locator("#problem").inner_text()
    assert lookup(api, mine["id"])["state"] == "waiting"  # nothing happened
    screenshot(page, "phone-wrong-secret-375x667")

    served(api, mine)
    page.wait_for_selector("#rating:not([hidden])")
    page.locator(".level-5").tap()
    # The cancel's refusal left data-error set: wait for this refusal to be shown, not that.
    page.evaluate("delete document.body.dataset.error")
    page.locator("#submit-rating").tap()
    page.wait_for_function("document.body.dataset.error === 'wrong_secret'")
    page.wait_for_selector("#problem:not([hidden])")
    assert page.locator("#rating").is_visible()
    assert not lookup(api, mine["id"])["rated"]
    close(page)


def test_the_visitor_cancels_with_the_secret(browser: Any, server: ServerProcess, api: Api) -> None:
    mine = issued(api, "business-start")
    page = open_phone(browser, server, mine, mine["secret"])
    page.locator("#cancel").tap()
    page.locator("#confirm-no").tap()  # changed their mind
    assert lookup(api, mine["id"])["state"] == "waiting"
    page.locator("#cancel").tap()
    page.locator("#confirm-yes").tap()
    page.wait_for_selector("body[data-state='cancelled']")
    assert page.locator("#ended-zh").inner_text() == "号票已取消"
    assert lookup(api, mine["id"])["state"] == "cancelled"
    close(page)


def test_a_phone_without_the_secret_shows_the_ticket_only(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    mine = issued(api, "business-start")
    page = open_phone(browser, server, mine, None)
    assert page.locator("#number").inner_text() == mine["number"]
    assert page.locator("#cancel").is_hidden() and page.locator("#no-secret").is_visible()
    response = page.goto(f"{server.url}/phone/{HALL}/20261130-Z999")
    assert response is not None and response.status == 404
    close(page)


def test_the_pages_are_bare_http_nothing_from_elsewhere(server: ServerProcess) -> None:
    for path in (f"/kiosk/{HALL}", "/static/devices/kiosk.js", "/static/devices/phone.js"):
        body = httpx.get(server.url + path, timeout=10).text
        assert not re.search(r"https?://", body), path
