"""The manager's office pages in headless Chromium against a real ``hall serve``: a bad rating
from the phone opens a case that appears on the cases page, and two managers walk it through
verify (not valid), confirm (valid after all), rectify, revisit and close from the page; the
reports page draws its charts from the hall's own figures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hall.domain.events import BreachRecorded
from hall.journal.sqlite import SqliteJournal
from tests.browser.conftest import HALL, PASSWORD, Api, hall_file, hall_server, screenshot
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

OFFICE = {"width": 1280, "height": 900}


BREACH = "pause_too_long:1:seeded"
SKIPS = "repeated_no_shows:2:seeded"  # a count rule: it fires at its limit


def seed_breach(journal: Path) -> None:
    """A breach in the journal before the server starts, as the discipline watcher would have
    recorded it (no route records one): a 40-minute pause against a 15-minute limit."""
    now = datetime.now(UTC)
    event = BreachRecorded(
        at=now,
        breach=BREACH,
        rule="pause_too_long",
        window="1",
        staff="zhangwei",
        since=now - timedelta(minutes=40),
        measured=40.0,
        limit=15.0,
    )

    skips = BreachRecorded(
        at=now,
        breach=SKIPS,
        rule="repeated_no_shows",
        window="2",
        staff="lina",
        since=now - timedelta(minutes=5),
        measured=3.0,
        limit=3.0,
    )

    async def append() -> None:
        store = SqliteJournal(journal)
        await store.append(HALL, [event, skips], 0)
        await store.close()

    # Playwright's loop runs in this thread: the journal gets one of its own.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(lambda: asyncio.run(append())).result()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("office")
    config = hall_file(directory)
    (directory / "data").mkdir()
    seed_breach(directory / "data" / "journal.sqlite3")
    with hall_server(directory, config) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    with Api(server.url) as api:
        api.login("1", "zhangwei")
        yield api


def served(api: Api) -> dict[str, Any]:
    """A ticket issued by the kiosk and served at window 1: its id, number and secret."""
    kiosk = {"Authorization": "Bearer demo-kiosk-token"}
    response = api.http.post("/tickets", json={"category": "general"}, headers=kiosk)
    assert response.status_code == 201, response.text
    api.free("1")
    api.call_next("1")
    api.act("1", "start")
    api.act("1", "finish", {"outcome": "done"})
    ticket: dict[str, Any] = response.json()
    return ticket


def rated_badly(api: Api, comment: str) -> dict[str, Any]:
    ticket = served(api)
    body = {"secret": ticket["secret"], "level": 1, "reasons": ["slow"], "comment": comment}
    rated = api.http.post(f"/tickets/{ticket['id']}/visitor-rating", json=body)
    assert rated.status_code == 200, rated.text
    return ticket


def office(browser: Any, server: ServerProcess, path: str, username: str) -> Any:
    """A manager's page in its own context (own sessionStorage), logged in from the page."""
    context = browser.new_context(viewport=OFFICE, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(f"{server.url}{path}")
    page.fill("#login input[name=username]", username)
    page.fill("#login input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#main:not([hidden])")
    return page


def test_a_bad_rating_is_followed_up_from_the_cases_page(
    browser: Any, server: ServerProcess, api: Api
) -> None:
    ticket = rated_badly(api, "等了一个小时<script>alert(1)</script>")
    boss = office(browser, server, f"/manage/{HALL}/cases", "manager")
    case = boss.locator(f'article.case[data-case="{ticket["id"]}"]')
    case.wait_for()
    assert ticket["number"] in case.locator(".number").inner_text()
    # The visitor's words, as text: never markup.
    assert case.locator(".comment").inner_text() == "等了一个小时<script>alert(1)</script>"
    assert "非常不满意" in case.inner_text() and "张伟" in case.inner_text()
    assert case.locator(".deadlines li.current").count() == 1
    breach = boss.locator(f'#breach-rows tr[data-breach="{BREACH}"]')
    assert "超时暂停" in breach.inner_text() and "40 / 15 分钟" in breach.inner_text()
    assert "张伟" in breach.inner_text()
    # 3 no-shows against a limit of 3 is a breach: the limit reads as one, not as "3 / 3".
    skips = boss.locator(f'#breach-rows tr[data-breach="{SKIPS}"]')
    assert "3 次（≥ 3） 3 (limit 3)" in skips.inner_text()
    screenshot(boss, "cases-open", full_page=True)

    # The manager finds it not valid: it waits for another manager's confirmation. Without a
    # reason, the hall's refusal in words a manager reads; notes as long as the hall takes.
    form = case.locator("form.step[data-step=verify]")
    assert form.locator("input[name=text]").get_attribute("maxlength") == "200"
    form.locator("input[name=valid][value=false]").check()
    form.locator("button[type=submit]").click()
    refusal = form.locator(".error")
    refusal.filter(has_text="请填写不属实的理由").wait_for()
    assert refusal.inner_text() == "请填写不属实的理由 Say why it is not valid"
    form.locator("input[name=text]").fill("评价器误触")
    form.locator("button[type=submit]").click()
    boss.wait_for_selector(f'article.case[data-case="{ticket["id"]}"][data-stage=confirm]')
    assert case.locator("form.step button[type=submit]").is_disabled()  # not the same manager
    assert "另一位管理员" in case.locator("form.step .note").inner_text()
    assert "评价器误触" in case.locator(".history").inner_text()

    # The deputy, on their own page, finds it valid after all; then rectifies and revisits.
    deputy = office(browser, server, f"/manage/{HALL}/cases", "deputy")
    mine = deputy.locator(f'article.case[data-case="{ticket["id"]}"]')
    # Named as the history names them: 王主任, not "manager".
    assert mine.locator("form.step .note").inner_text().startswith("王主任 核实为不属实")
    step = mine.locator("form.step[data-step=confirm]")
    step.locator("input[name=valid][value=true]").check()
    step.locator("button[type=submit]").click()
    step = mine.locator("form.step[data-step=rectify]")
    step.locator("input[name=text]").fill("增开窗口，提醒工作人员及时叫号")
    step.locator("button[type=submit]").click()
    step = mine.locator("form.step[data-step=revisit]")
    step.locator("select[name=result]").select_option("satisfied")
    step.locator("input[name=text]").fill("电话回访，群众表示满意")
    step.locator("button[type=submit]").click()
    mine.locator("form.step[data-step=close]").wait_for()
    history = mine.locator(".history li")
    assert history.count() == 4
    assert "回访满意" in history.nth(3).inner_text() and "李副主任" in history.nth(1).inner_text()
    screenshot(deputy, "cases-before-close", full_page=True)

    # The first manager's page follows by itself (polling), then closes the case.
    boss.wait_for_selector(f'article.case[data-case="{ticket["id"]}"][data-stage=close]')
    case.locator("form.step[data-step=close] button[type=submit]").click()
    boss.wait_for_selector(f'article.case[data-case="{ticket["id"]}"]', state="detached")
    assert boss.locator("#no-cases").is_visible()
    closed = boss.locator(f'#closed-rows tr[data-case="{ticket["id"]}"]')
    closed.wait_for()  # among the closed of the last 30 days, with what became of it
    assert "回访满意" in closed.inner_text() and "王主任" in closed.inner_text()
    deputy.wait_for_selector(f'article.case[data-case="{ticket["id"]}"]', state="detached")
    assert boss.errors == [] and deputy.errors == []

    # The breach excused with a reason: still listed, marked excused, with who and why.
    breach.locator(".excuse-open").click()
    breach.locator("form.excuse input[name=reason]").fill("协助老人办理，经主任同意")
    breach.locator("form.excuse button[type=submit]").click()
    boss.wait_for_selector(f'#breach-rows tr.excused[data-breach="{BREACH}"]')
    assert "协助老人办理，经主任同意" in breach.inner_text() and "王主任" in breach.inner_text()
    screenshot(boss, "cases-breach-excused", full_page=True)

    # Found not valid by both: nothing to rectify or revisit, so the closing is what it waits for.
    dismissed = rated_badly(api, "误触")
    other = boss.locator(f'article.case[data-case="{dismissed["id"]}"]')
    form = other.locator("form.step[data-step=verify]")
    form.locator("input[name=valid][value=false]").check()
    form.locator("input[name=text]").fill("评价器误触")
    form.locator("button[type=submit]").click()
    theirs = deputy.locator(f'article.case[data-case="{dismissed["id"]}"]')
    step = theirs.locator("form.step[data-step=confirm]")
    step.locator("input[name=valid][value=false]").check()
    step.locator("input[name=text]").fill("同意")
    step.locator("button[type=submit]").click()
    theirs.locator("form.step[data-step=close]").wait_for()
    assert theirs.locator(".deadlines li.current").get_attribute("data-step") == "close"
    assert theirs.locator(".deadlines li[data-step=revisit]").count() == 0

    # Every step is an event with who did it.
    token = httpx.post(
        f"{server.url}/api/halls/{HALL}/managers/login",
        json={"username": "manager", "password": PASSWORD},
    ).json()["token"]
    journal = api.http.get(
        "/journal?after=0&limit=1000", headers={"Authorization": f"Bearer {token}"}
    ).json()
    steps = [
        (e["event"]["step"], e["event"]["by"])
        for e in journal
        if e["event"]["type"] == "case_stepped" and e["event"]["case"] == ticket["id"]
    ]
    assert steps == [
        ("verify", "manager"),
        ("confirm", "deputy"),
        ("rectify", "deputy"),
        ("revisit", "deputy"),
        ("close", "manager"),
    ]


def test_the_reports_page_draws_the_halls_figures(
    browser: Any, server: ServerProcess, api: Api, tmp_path: Any
) -> None:
    for level in (5, 5, 4, 2):  # and whatever the first test left
        ticket = served(api)
        body = {"secret": ticket["secret"], "level": level, "reasons": ["slow"] * (level < 3)}
        assert api.http.post(f"/tickets/{ticket['id']}/visitor-rating", json=body).is_success
    page = office(browser, server, f"/manage/{HALL}/reports?period=today&by=window", "manager")
    page.wait_for_selector("body[data-loaded='today|window']")
    token = page.evaluate(f"JSON.parse(sessionStorage.getItem('hall.manager.{HALL}')).token")
    report = api.http.get(
        "/reports?period=today&by=window", headers={"Authorization": f"Bearer {token}"}
    ).json()
    total = report["total"]
    assert total["served"] >= 5 and total["levels"][0] >= 2
    # The table: one row per window of the hall file, then the total, as the API counts.
    rows = page.locator("#rows tbody tr")
    assert rows.count() == len(report["rows"]) + 1
    cells = rows.last.locator("td")
    assert cells.nth(1).inner_text() == str(total["issued"])
    assert cells.nth(2).inner_text() == str(total["served"])
    # Four charts, inline SVG with their labels as text.
    for name in ("hours", "days", "ratings", "breaches"):
        assert page.locator(f'.chart[data-chart="{name}"] svg').count() == 1, name
    ratings = page.locator('.chart[data-chart="ratings"] svg').inner_html()
    assert "非常满意 Very satisfied" in ratings
    assert page.locator("#kind").input_value() == "day"  # the picker shows what is shown
    # The day as its name, once: not "today", not "2026-11-30 2026-11-30".
    assert page.locator("#report-title").inner_text() == f"报表 Report · {report['start']}"
    assert page.locator("#report-span").inner_text() == ""
    screenshot(page, "reports", full_page=True)

    # A laptop's 1366 px: each Chinese header whole (平均等候, not 平均等/候), the table in its box.
    page.set_viewport_size({"width": 1366, "height": 768})
    assert headers_fit(page) == {"overflow": 0, "broken": []}
    screenshot(page, "reports-1366", full_page=True)

    # The CSV is fetched with the token and saved: its header is the stable one.
    with page.expect_download() as download:
        page.click("#csv")
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    assert text.startswith("period,start,end,by,row,key,name,issued,served")
    assert len(text.strip().splitlines()) == len(report["rows"]) + 2

    # Another period from the picker: the quarter of today.
    page.select_option("#kind", "quarter")
    page.select_option("#by", "category")
    page.click("#picker button[type=submit]")
    page.wait_for_selector("body[data-loaded$='|category']")
    assert "-Q" in page.evaluate("document.body.dataset.loaded")
    assert "by=category" in page.url and "token" not in page.url
    quarter = report["start"][:4] + " Q" + str((int(report["start"][5:7]) - 1) // 3 + 1)
    assert page.locator("#report-title").inner_text().endswith(f"/ {quarter}")
    # A day picked after a quarter starts on today (the hall's), not the quarter's first day.
    page.select_option("#kind", "day")
    assert page.locator("#picker input[name=day]").input_value() == report["start"]

    # Printed: no navigation or pickers, the charts and the table stay.
    page.emulate_media(media="print")
    page.set_viewport_size(A4_ACROSS)
    assert not page.locator(".manage-nav").is_visible()
    assert not page.locator("#picker").is_visible()
    assert page.locator("#rows").is_visible()
    assert headers_fit(page) == {"overflow": 0, "broken": []}
    screenshot(page, "reports-print", full_page=True)

    # ?print=1 shows that layout on screen: not even the picker's empty card.
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{server.url}/manage/{HALL}/reports?period=today&by=window&print=1")
    page.wait_for_selector("body[data-loaded='today|window']")
    assert not page.locator("section.no-print").is_visible()
    assert page.locator("#rows").is_visible()
    screenshot(page, "reports-print-1", full_page=True)
    assert page.errors == []


# A4 landscape less 10 mm margins each side, at the 96 px per inch of CSS.
A4_ACROSS = {"width": round((297 - 20) / 25.4 * 96), "height": round((210 - 20) / 25.4 * 96)}


def headers_fit(page: Any) -> dict[str, Any]:
    """How far the figures table overflows its box, and which Chinese headers break a line."""
    found: dict[str, Any] = page.evaluate(
        """() => {
          const box = document.querySelector(".table-scroll");
          const broken = [...document.querySelectorAll("#rows th .zh")]
            .filter((span) => span.getClientRects().length > 1)
            .map((span) => span.textContent);
          return { overflow: box.scrollWidth - box.clientWidth, broken };
        }"""
    )
    return found
