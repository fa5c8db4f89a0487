"""One visitor through every device, as a hall runs them: a ticket taken on the kiosk page and
printed by the real printer agent (ESC/POS to a fake network printer), called, started and
finished from the window caller with the keyboard, rated on the window's pad; the phone page
opened from the QR code printed on the ticket says it is rated, and a second rating is refused.
Every device page and the agent show online in the snapshot while they run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import HALL, PASSWORD, Api, hall_file, hall_server, screenshot
from tests.support.agents import Agent
from tests.support.fake_printer import FakePrinter, qr_codes, ticket_number
from tests.support.server import ServerProcess

pytest.importorskip(
    "playwright", reason="PAGE TESTS SKIPPED: playwright is not installed (pip install -e .[dev])"
)
pytestmark = pytest.mark.browser

KIOSK = {"width": 1280, "height": 800}
DESK = {"width": 1024, "height": 600}
PAD = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("flow")
    with hall_server(directory, hall_file(directory)) as server:
        yield server


def devices(api: Api) -> dict[str, str]:
    return {d["id"]: d["status"] for d in api.http.get("/snapshot").json()["devices"]}


def test_a_visitor_through_kiosk_printer_caller_pad_and_phone(
    browser: Any, server: ServerProcess, tmp_path: Path
) -> None:
    errors: list[str] = []

    def page_of(viewport: dict[str, int]) -> Any:
        page = browser.new_context(viewport=viewport).new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    token = tmp_path / "printer.token"
    token.write_text("demo-printer-token\n")
    settings = {
        "hall_url": f"ws://127.0.0.1:{server.port}/ws/halls/{HALL}/devices",
        "token_file": str(token),
        "paper": 80,
        "state": str(tmp_path / "printer-state"),
    }
    with (
        FakePrinter() as printer,
        Agent("printer", {**settings, "printer": printer.address}, tmp_path),
        Api(server.url) as api,
    ):
        # The kiosk: the keyboard picks 8 综合服务专区, then 2 证照出件.
        kiosk = page_of(KIOSK)
        kiosk.goto(f"{server.url}/kiosk/{HALL}#token=demo-kiosk-token")
        kiosk.wait_for_selector("body.feed-live")
        kiosk.wait_for_selector("body[data-printer='true']")
        kiosk.keyboard.press("8")
        kiosk.keyboard.press("2")
        kiosk.wait_for_selector("#ticket-step:not([hidden])")
        ticket_id = kiosk.locator("#ticket-step").get_attribute("data-ticket")
        number = kiosk.locator("#t-number").inner_text()
        screenshot(kiosk, "flow-kiosk-ticket")

        # The printer agent prints it: the number, and a QR code to the visitor's phone page.
        (printed,) = printer.wait_for_tickets(1, timeout=15)
        assert ticket_number(printed) == number
        (url,) = qr_codes(printed)
        address = urlsplit(url)
        assert address.path == f"/phone/{HALL}/{ticket_id}" and address.fragment.startswith("s=")
        secret = address.fragment[2:]

        # The pad of window 1 and its caller; staff log in and call with the keyboard.
        pad = page_of(PAD)
        pad.goto(f"{server.url}/pad/{HALL}#token=demo-pad-1-token")
        pad.wait_for_selector("body[data-step='idle']")
        caller = page_of(DESK)
        caller.goto(f"{server.url}/caller/{HALL}/1")
        caller.fill("#username", "zhangwei")
        caller.fill("#password", PASSWORD)
        caller.press("#password", "Enter")
        caller.wait_for_selector("body[data-state='open']:not(.busy)")
        for key, then in (("n", "calling"), ("s", "serving"), ("f", None), ("1", "open")):
            caller.keyboard.press(key)
            if then is None:
                caller.locator("#chooser").wait_for()
            else:
                caller.wait_for_selector(f"body[data-state='{then}']:not(.busy)")
            if key == "n":
                assert caller.locator("#held-number").inner_text() == number

        # Every device of the run is online in the snapshot (pages included).
        status = devices(api)
        assert (status["kiosk-1"], status["pad-1"], status["printer-1"]) == (
            "online",
            "online",
            "online",
        )

        pad.wait_for_selector("body[data-step='rate']")
        assert pad.locator("#rate-number").inner_text() == number
        pad.locator(".level-5").click()
        pad.wait_for_selector("body[data-step='message'][data-message='thanks']")
        screenshot(pad, "flow-pad-thanks")

        # The phone, from the printed QR code: rated already; a second rating is refused.
        phone = page_of(PHONE)
        phone.goto(f"{server.url}{address.path}#{address.fragment}")
        phone.wait_for_selector("body.feed-live")
        phone.wait_for_selector("#thanks:not([hidden])", timeout=10_000)
        screenshot(phone, "flow-phone-rated")
        again = api.http.post(
            f"/tickets/{ticket_id}/visitor-rating",
            json={"secret": secret, "level": 1, "reasons": ["slow"]},
        )
        assert (again.status_code, again.json()["error"]) == (409, "already_rated")

        manager = api.http.post(
            "/managers/login", json={"username": "manager", "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {manager.json()['token']}"}
        journal = api.http.get("/journal", params={"after": 0, "limit": 1000}, headers=auth)
        rated = [e["event"] for e in journal.json() if e["event"]["type"] == "ticket_rated"]
        assert [(r["ticket"], r["level"], r["window"], r["channel"]) for r in rated] == [
            (ticket_id, 5, "1", "pad")
        ]
        printed_events = [
            e["event"] for e in journal.json() if e["event"]["type"] == "ticket_printed"
        ]
        assert [e["ticket"] for e in printed_events] == [ticket_id]
        for page in (kiosk, pad, caller, phone):
            page.context.close()
    assert not errors, errors
