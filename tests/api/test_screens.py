"""The screens' feeds over the test client: a view, then deltas; resume; refusals with their close
codes; device tokens; caps; the manager's notice; and nothing personal in any frame."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from displays import hub
from hall.api.app import create_app
from hall.config import load
from hall.domain.commands import CallNext, IssueTicket
from hall.engine import HallEngine
from hall.journal.base import JournalUnavailable
from hall.settings import DEFAULT_CONFIG, Settings
from tests.api.conftest import BASE, HALL, KIOSK, PASSWORD, act, issue, login
from tests.support.inloop import uvicorn_serving

HALL_SCREEN = f"/ws/halls/{HALL}/screens/hall"
WAIT = 5.0  # seconds a test waits for a frame the server owes it


def window_screen(window: str) -> str:
    return f"/ws/halls/{HALL}/screens/windows/{window}"


def frame(ws: WebSocketTestSession) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json(timeout=WAIT)
    return message


def until(
    ws: WebSocketTestSession, done: Callable[[dict[str, Any]], bool], limit: int = 50
) -> list[dict[str, Any]]:
    """Frames up to and including the first that ``done`` accepts."""
    frames = []
    for _ in range(limit):
        frames.append(frame(ws))
        if done(frames[-1]):
            return frames
    raise AssertionError(f"no such frame in {limit}: {frames[-3:]}")


def chained(start: int, frames: list[dict[str, Any]]) -> int:
    """Check ``frames`` are deltas, each from the version the one before left; the last version."""
    version = start
    for message in frames:
        assert message["type"] == "delta", message
        assert message["from"] == version, (version, message)
        assert message["version"] > version
        version = message["version"]
    return version


def calls_in(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for m in frames if m["type"] == "delta" for c in m["changes"].get("calls", [])]


def refused(client: TestClient[Litestar], path: str) -> tuple[dict[str, Any], int]:
    """The error message and the close code of a refused screen."""
    with client.websocket_connect(path) as ws:
        message = frame(ws)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive(timeout=WAIT)
    assert message["type"] == "error" and set(message) == {"type", "error", "message"}
    return message, closed.value.code


def version_of(client: TestClient[Litestar]) -> int:
    version: int = client.get(f"{BASE}/snapshot").json()["version"]
    return version


def manager(client: TestClient[Litestar]) -> dict[str, str]:
    response = client.post(
        f"{BASE}/managers/login", json={"username": "manager", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


# -- the feed --------------------------------------------------------------------------------


def test_a_hall_screen_gets_the_view_then_a_delta_for_each_batch(
    client: TestClient[Litestar],
) -> None:
    issue(client)
    with client.websocket_connect(HALL_SCREEN) as ws:
        view = frame(ws)
        assert view["type"] == "view" and view["version"] == version_of(client)
        assert view["now"].endswith("Z")
        assert view["view"]["hall"]["id"] == HALL
        general = next(q for q in view["view"]["queues"] if q["id"] == "general")
        assert (general["waiting"], general["next"]) == (1, ["A001"])
        staff = login(client, "2")
        act(client, "2", "call-next", staff)
        frames = until(ws, lambda m: bool(m["changes"].get("calls")))
    assert chained(view["version"], frames) == version_of(client)
    (call,) = calls_in(frames)
    assert (call["number"], call["window"], call["recall"]) == ("A001", "2", False)
    assert call["audio"] == f"/api/halls/{HALL}/announcements/A001/2.wav"
    last = frames[-1]["changes"]
    assert [(w["id"], w["state"], w["number"]) for w in last["windows"]] == [
        ("2", "calling", "A001")
    ]
    assert [(q["id"], q["waiting"]) for q in last["queues"]] == [("general", 0)]


def test_a_window_screen_follows_its_window_only(client: TestClient[Litestar]) -> None:
    issue(client)
    with client.websocket_connect(window_screen("2")) as ws:
        view = frame(ws)
        assert view["view"]["window"]["id"] == "2"
        assert (view["view"]["state"], view["view"]["staff"]) == ("closed", None)
        login(client, "3", "lina")  # another window: an empty delta, the chain goes on
        staff = login(client, "2")
        act(client, "2", "call-next", staff)
        frames = until(ws, lambda m: "ticket" in m["changes"])
    chained(view["version"], frames)
    assert frames[0]["changes"] == {}
    changes = frames[-1]["changes"]
    assert changes["state"] == "calling"
    assert changes["ticket"]["number"] == "A001" and changes["ticket"]["state"] == "called"
    opened = next(m for m in frames if "staff" in m["changes"])["changes"]["staff"]
    assert opened == {"name": "张*", "staff_no": "1002"}


def test_two_calls_in_one_batch_are_both_sent_in_order(
    app: Litestar, client: TestClient[Litestar]
) -> None:
    issue(client)
    issue(client)
    login(client, "1")
    login(client, "2", "lina")
    engine: HallEngine = app.state.service.engine(HALL)

    async def both() -> None:
        # Queued in one turn of the loop, so the writer takes them as one batch.
        await asyncio.gather(
            engine.execute(CallNext(window="1", by="zhangwei")),
            engine.execute(CallNext(window="2", by="lina")),
        )

    with client.websocket_connect(HALL_SCREEN) as ws:
        start = frame(ws)["version"]
        client.blocking_portal.call(both)
        delta = frame(ws)
    assert (delta["from"], delta["version"]) == (start, start + 2)  # one batch, one delta
    calls = delta["changes"]["calls"]
    assert [(c["number"], c["window"]) for c in calls] == [("A001", "1"), ("A002", "2")]
    assert [c["version"] for c in calls] == [start + 1, start + 2]


def test_calls_the_engine_replayed_after_a_journal_outage_come_in_one_delta(
    app: Litestar, client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recall whose append landed but whose reply was lost (503), with the journal then silent
    until the next call: the engine replays the recall without publishing it, so the next batch
    starts past the hub's version. Both calls must still arrive as news, in one delta."""
    issue(client)
    issue(client)
    first, second = login(client, "1"), login(client, "2", "lina")
    act(client, "1", "call-next", first)
    journal = app.state.service.engine(HALL).journal
    append, version = journal.append, journal.version
    down = False

    async def lost_reply(*args: Any, **kwargs: Any) -> int:
        nonlocal down
        await append(*args, **kwargs)  # durable: only the answer goes missing
        down = True
        raise JournalUnavailable("the store's reply was lost")

    async def silent(hall: str) -> int:
        if down:
            raise JournalUnavailable("the store does not answer")
        found: int = await version(hall)
        return found

    with client.websocket_connect(HALL_SCREEN) as ws:
        start = frame(ws)["version"]
        monkeypatch.setattr(journal, "append", lost_reply)
        monkeypatch.setattr(journal, "version", silent)
        act(client, "1", "recall", first, status=503)
        monkeypatch.setattr(journal, "append", append)
        down = False
        act(client, "2", "call-next", second)
        end = version_of(client)
        frames = until(ws, lambda m: m.get("version") == end)
    assert chained(start, frames) == end
    calls = calls_in(frames)
    assert [(c["number"], c["window"], c["recall"]) for c in calls] == [
        ("A001", "1", True),
        ("A002", "2", False),
    ]
    assert [c["version"] for c in calls] == [start + 1, end]
    last = frames[-1]["changes"]
    assert [(w["id"], w["number"]) for w in last["windows"]] == [("2", "A002")]
    with client.websocket_connect(f"{HALL_SCREEN}?after={start}") as ws:  # the ring has it
        resumed = until(ws, lambda m: m.get("version") == end)
    assert chained(start, resumed) == end and calls_in(resumed) == calls


def test_a_screen_resumes_from_the_ring_with_the_deltas_it_missed(
    client: TestClient[Litestar],
) -> None:
    with client.websocket_connect(HALL_SCREEN) as ws:
        seen = frame(ws)["version"]
    staff = login(client, "1")
    issue(client)
    act(client, "1", "call-next", staff)
    with client.websocket_connect(f"{HALL_SCREEN}?after={seen}") as ws:
        frames = until(ws, lambda m: m.get("version") == version_of(client))
    assert chained(seen, frames) == version_of(client)
    assert [c["number"] for c in calls_in(frames)] == ["A001"]


def test_a_screen_too_far_behind_gets_the_view(client: TestClient[Litestar]) -> None:
    for _ in range(3):
        issue(client)
    # The hub is made now, so its ring starts now: version 1 is older than anything in it.
    with client.websocket_connect(f"{HALL_SCREEN}?after=1") as ws:
        message = frame(ws)
    assert message["type"] == "view" and message["version"] == version_of(client)


def test_a_screen_already_current_gets_a_ping_at_once(client: TestClient[Litestar]) -> None:
    issue(client)
    current = version_of(client)
    with client.websocket_connect(f"{window_screen('1')}?after={current}") as ws:
        message = frame(ws)
        issue(client)
        delta = frame(ws)
    assert message["type"] == "ping" and message["version"] == current and "now" in message
    assert delta["type"] == "delta" and delta["from"] == current


@pytest.mark.parametrize("after", ["abc", "-1", "１２", "", "1e3", "9" * 19, "999"])
def test_a_bad_after_is_refused_with_4400(client: TestClient[Litestar], after: str) -> None:
    message, code = refused(client, f"{HALL_SCREEN}?after={after}")
    assert (message["error"], code) == ("invalid_after", 4400)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/ws/halls/nowhere/screens/hall", "unknown_hall"),
        (window_screen("99"), "unknown_window"),
        ("/ws/halls/nowhere/screens/windows/1", "unknown_hall"),
    ],
)
def test_an_unknown_hall_or_window_is_refused_with_4404(
    client: TestClient[Litestar], path: str, error: str
) -> None:
    message, code = refused(client, path)
    assert (message["error"], code) == (error, 4404)


@pytest.mark.parametrize(
    "path",
    [
        window_screen("x" * 5000),
        window_screen("\u202e1"),
        "/ws/halls/" + "\u202e" * 3 + "h" * 5000 + "/screens/hall",
        f"/ws/halls/{'h' * 5000}/events",
    ],
)
def test_a_refusal_echoes_an_id_cut_short_and_escaped(
    client: TestClient[Litestar], path: str
) -> None:
    with client.websocket_connect(path) as ws:
        message = frame(ws)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive(timeout=WAIT)
    assert closed.value.code == 4404
    text = message["message"]
    assert len(text) < 100, text
    assert "\u202e" not in text and "x" * 41 not in text and "h" * 41 not in text
    assert "\\u202e" in text or "'xxxx" in text or "'hhhh" in text
    assert all(len(str(value)) <= 40 for value in (message.get("detail") or {}).values())


@pytest.mark.parametrize("window", ["%E2%80%AE1", "w" * 5000])
def test_the_404_page_shows_an_unknown_window_cut_short_and_escaped(
    client: TestClient[Litestar], window: str
) -> None:
    response = client.get(f"/screens/{HALL}/windows/{window}")
    assert response.status_code == 404
    page = response.text
    assert "\u202e" not in page and "w" * 41 not in page
    assert "\\u202e1" in page or "w" * 40 + "'…" in page.replace("&#39;", "'")


@pytest.mark.parametrize("path", [HALL_SCREEN, window_screen("1")])
def test_a_screen_that_sends_anything_is_closed_with_1008(
    client: TestClient[Litestar], path: str
) -> None:
    with client.websocket_connect(path) as ws:
        frame(ws)
        ws.send_text("ping")  # even a small one: a screen has nothing to say
        messages = []
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                messages.append(frame(ws))
    assert [m["error"] for m in messages if m["type"] == "error"] == ["client_message"]
    assert closed.value.code == 1008
    assert eventually_sync(lambda: client.app.state.connections.total == 0)  # its place freed


def eventually_sync(done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    return done()


# -- device tokens and caps ----------------------------------------------------------------------

SCREEN_TOKEN = "demo-screen-token"  # screen-1 in config/default.toml, for no window
WINDOW_TOKEN = "window-3-screen-token"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """The demo hall requiring device tokens, with one more screen bound to window 3."""
    text = DEFAULT_CONFIG.read_text().replace("require_device = false", "require_device = true")
    digest = hashlib.sha256(WINDOW_TOKEN.encode()).hexdigest()
    text += '\n[[devices]]\nid = "screen-3"\nkind = "screen"\nwindow = "3"\n'
    text += f'token_sha256 = "{digest}"\n'
    path = tmp_path / "guarded.toml"
    path.write_text(text)
    assert load(path).screens.require_device
    app = create_app(Settings(configs=(path,), data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "error", "code"),
    [
        (HALL_SCREEN, "unauthorized", 4401),
        (f"{HALL_SCREEN}?token=", "unauthorized", 4401),
        (f"{HALL_SCREEN}?token=not-a-token", "unauthorized", 4401),
        (f"{HALL_SCREEN}?token=demo-pad-1-token", "forbidden", 4403),
        (f"{window_screen('4')}?token=demo-kiosk-token", "forbidden", 4403),
        (f"{HALL_SCREEN}?token={WINDOW_TOKEN}", "forbidden", 4403),
        (f"{window_screen('4')}?token={WINDOW_TOKEN}", "forbidden", 4403),
        (window_screen("3"), "unauthorized", 4401),
    ],
)
def test_a_hall_that_requires_tokens_refuses_screens_without_the_right_one(
    guarded: TestClient[Litestar], path: str, error: str, code: int
) -> None:
    message, closed = refused(guarded, path)
    assert (message["error"], closed) == (error, code)


@pytest.mark.parametrize(
    "path",
    [
        f"{HALL_SCREEN}?token={SCREEN_TOKEN}",
        f"{window_screen('4')}?token={SCREEN_TOKEN}",
        f"{window_screen('3')}?token={WINDOW_TOKEN}",
        f"{HALL_SCREEN}?token=demo-kiosk-token",  # the kiosk's waiting counts
    ],
)
def test_a_screen_token_opens_its_screens(guarded: TestClient[Litestar], path: str) -> None:
    with guarded.websocket_connect(path) as ws:
        assert frame(ws)["type"] == "view"


def test_screens_are_capped_in_all_and_per_address(tmp_path: Path) -> None:
    settings = Settings(
        configs=(DEFAULT_CONFIG,), data_dir=tmp_path, max_screens=3, max_screens_per_address=2
    )
    app = create_app(settings)
    with TestClient(app) as client:
        with client.websocket_connect(HALL_SCREEN) as first:
            frame(first)
            with client.websocket_connect(window_screen("1")) as second:
                frame(second)
                message, code = refused(client, window_screen("2"))
                assert (message["error"], code) == ("too_many_connections", 4429)
                assert "one address" in message["message"]
        # Both gone: their places are free again (once the server has seen them go).
        deadline = time.monotonic() + WAIT
        while app.state.screens.total and time.monotonic() < deadline:
            time.sleep(0.01)
        with client.websocket_connect(HALL_SCREEN) as again:
            assert frame(again)["type"] == "view"
    settings = Settings(configs=(DEFAULT_CONFIG,), data_dir=tmp_path, max_screens=1)
    with TestClient(create_app(settings)) as client, client.websocket_connect(HALL_SCREEN) as ws:
        frame(ws)
        message, code = refused(client, HALL_SCREEN)
        assert (message["error"], code) == ("too_many_connections", 4429)
        assert "at most 1 feeds" in message["message"]


# -- the notice ------------------------------------------------------------------------------


def test_a_manager_posts_the_notice_and_it_outlives_a_restart(tmp_path: Path) -> None:
    posted = {
        "text": "今日14:00起系统升级，暂停不动产业务",
        "text_en": "Real estate closes at 14:00",
    }
    with TestClient(create_app(Settings(configs=(DEFAULT_CONFIG,), data_dir=tmp_path))) as client:
        with client.websocket_connect(HALL_SCREEN) as ws:
            default = frame(ws)["view"]["notice"]
            assert default["text"] == load(DEFAULT_CONFIG).screens.hall.notice
            headers = {**manager(client), "Idempotency-Key": "notice-0001"}
            response = client.put(f"{BASE}/notice", json=posted, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == {**posted, "posted": True}
            delta = until(ws, lambda m: "notice" in m["changes"])[-1]
        assert delta["changes"]["notice"] == posted
        journal = client.get(f"{BASE}/journal?after=0", headers=manager(client)).json()
        assert journal[-1]["event"]["type"] == "notice_posted"
        assert journal[-1]["event"]["by"] == "manager"  # managers see who; screens do not
    with TestClient(create_app(Settings(configs=(DEFAULT_CONFIG,), data_dir=tmp_path))) as client:
        with client.websocket_connect(HALL_SCREEN) as ws:
            assert frame(ws)["view"]["notice"] == posted
        cleared = client.put(f"{BASE}/notice", json={"text": ""}, headers=manager(client))
        assert cleared.json() == {**default, "posted": False}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": "x" * 201}, 400),
        ({"text": "line\nbreak"}, 400),
        ({"text": "reversed \u202e text"}, 400),
        ({"text_en": "no text"}, 400),
        ({"text": "ok", "colour": "red"}, 400),
    ],
)
def test_a_bad_notice_is_refused_and_changes_nothing(
    client: TestClient[Litestar], body: dict[str, str], status: int
) -> None:
    before = version_of(client)
    response = client.put(f"{BASE}/notice", json=body, headers=manager(client))
    assert response.status_code == status, response.text
    assert response.json()["error"] == "invalid_request"
    assert version_of(client) == before


def test_only_a_manager_posts_the_notice(client: TestClient[Litestar]) -> None:
    body = {"text": "通知", "text_en": "Notice"}
    assert client.put(f"{BASE}/notice", json=body).status_code == 401
    assert client.put(f"{BASE}/notice", json=body, headers=KIOSK).status_code == 403
    assert client.put(f"{BASE}/notice", json=body, headers=login(client, "1")).status_code == 403


# -- privacy ---------------------------------------------------------------------------------


def test_no_frame_names_a_person_or_carries_a_note_or_a_secret(
    client: TestClient[Litestar],
) -> None:
    config = load(DEFAULT_CONFIG)
    with (
        client.websocket_connect(HALL_SCREEN) as hall,
        client.websocket_connect(window_screen("1")) as one,
    ):
        frames = [frame(hall), frame(one)]
        secret = issue(client)["secret"]
        staff = login(client, "1")
        act(client, "1", "call-next", staff)
        act(client, "1", "no-show", staff)
        act(client, "1", "pause", staff, {"reason": "break", "note": "去医院 13800000000"})
        end = version_of(client)
        for ws in (hall, one):
            frames += until(ws, lambda m: m.get("version") == end)
        with client.websocket_connect(window_screen("1")) as again:
            frames.append(frame(again))
    text = json.dumps(frames, ensure_ascii=False)
    for person in config.staff:
        assert person.username not in text and person.name not in text
    assert "去医院" not in text and "13800000000" not in text and secret not in text
    assert '"name": "张*"' in text and '"staff_no": "1002"' in text
    assert '"code": "break"' in text


# -- the raw event feed ----------------------------------------------------------------------


def test_the_event_feed_encodes_each_event_once_for_every_client(
    app: Litestar, client: TestClient[Litestar]
) -> None:
    feed = f"/ws/halls/{HALL}/events"
    with client.websocket_connect(feed) as a, client.websocket_connect(feed) as b:
        a.receive_json(timeout=WAIT)
        b.receive_json(timeout=WAIT)
        issue(client)
        texts = [[ws.receive_text(timeout=WAIT) for _ in range(2)] for ws in (a, b)]
    assert texts[0] == texts[1]
    assert [json.loads(t)["event"]["type"] for t in texts[0]] == ["day_started", "ticket_issued"]
    assert len(app.state.event_frames._frames) == 2  # one encoding per event, for both clients


def test_event_feeds_are_capped_with_the_screens(tmp_path: Path) -> None:
    feed = f"/ws/halls/{HALL}/events"
    settings = Settings(
        configs=(DEFAULT_CONFIG,), data_dir=tmp_path, max_screens=3, max_screens_per_address=2
    )
    app = create_app(settings)
    with TestClient(app) as client:
        with client.websocket_connect(feed) as first:
            first.receive_json(timeout=WAIT)
            with client.websocket_connect(HALL_SCREEN) as second:
                frame(second)
                for path in (feed, HALL_SCREEN):  # one count for both kinds
                    with client.websocket_connect(f"{path}?after=0") as ws:
                        message = frame(ws)
                        with pytest.raises(WebSocketDisconnect) as closed:
                            ws.receive(timeout=WAIT)
                    assert (message["error"], closed.value.code) == ("too_many_connections", 4429)
                    assert "one address" in message["message"]
        deadline = time.monotonic() + WAIT
        while app.state.connections.total and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.connections.per_address == {}
        with client.websocket_connect(feed) as again:  # their places are free again
            assert again.receive_json(timeout=WAIT)["type"] == "snapshot"


def test_an_idle_screen_is_pinged_with_the_version(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "PING_SECONDS", 0.3)  # 10 s in a hall; a test has less time
    monkeypatch.setattr(hub, "PING_CHECK_SECONDS", 0.05)
    with client.websocket_connect(window_screen("5")) as ws:
        view = frame(ws)
        started = time.monotonic()
        ping = frame(ws)
        waited = time.monotonic() - started
        issue(client)
        delta = frame(ws)
        again = frame(ws)
    assert ping["type"] == "ping" and ping["version"] == view["version"]
    assert 0.2 < waited < 2.0, waited
    assert delta["type"] == "delta" and again["type"] == "ping"
    assert again["version"] == delta["version"]


def test_a_hub_is_made_for_the_first_screen_and_dropped_after_the_last(
    app: Litestar, client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "LINGER", 0.1)  # 30 s in a hall, so a screen that blinks resumes
    engine: HallEngine = app.state.service.engine(HALL)
    hubs = app.state.screens.hubs
    watcher = app.state.service.watchers[HALL]._after_batch  # the discipline watcher's hook

    def projections() -> list[object]:
        return [hook for hook in engine.after_batch if hook != watcher]

    assert projections() == [] and len(hubs) == 0  # no screens, no projection at all
    with client.websocket_connect(HALL_SCREEN) as a, client.websocket_connect(HALL_SCREEN) as b:
        frame(a)
        frame(b)
        assert len(projections()) == 1 and len(hubs) == 1  # one hub for both
        with client.websocket_connect(window_screen("1")) as c:
            frame(c)
            assert len(projections()) == 2 and len(hubs) == 2
            metrics = client.get("/metrics").text
    assert f'hall_screen_connections{{hall="{HALL}",kind="hall"}} 2.0' in metrics
    assert f'hall_screen_connections{{hall="{HALL}",kind="window"}} 1.0' in metrics
    assert f'hall_screen_resyncs_total{{hall="{HALL}",kind="hall"}} 0.0' in metrics
    deadline = time.monotonic() + WAIT
    while len(hubs) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(hubs) == 0 and projections() == []
    issue(client)  # and the hall goes on without them


async def test_websocket_pings_are_answered_and_keep_the_feeds_open(app: Litestar) -> None:
    async with uvicorn_serving(app) as server:
        base = f"ws://127.0.0.1:{server.config.port}"
        for path in (f"/ws/halls/{HALL}/events", HALL_SCREEN):
            async with websockets.connect(base + path) as ws:
                first = json.loads(await ws.recv())
                assert first["type"] in {"snapshot", "view"}
                for _ in range(3):
                    latency = await asyncio.wait_for(await ws.ping(), WAIT)  # the pong came
                    assert latency >= 0
                await app.state.service.engine(HALL).execute(IssueTicket(category="general"))
                after = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                assert after["type"] in {"event", "delta"}  # still open, still fed


async def eventually(done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - no event to wait on
        await asyncio.sleep(0.02)
    return done()


async def test_a_feed_the_server_closed_itself_ends_as_a_disconnect_not_an_error(
    app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn closes a client that answers no keepalive ping, and tells the app only once its
    socket is gone: a send in between must end the feed quietly (and free its place)."""
    async with uvicorn_serving(app, ws_ping_interval=0.5, ws_ping_timeout=0.5) as server:
        await _unread_feed_is_closed_quietly(app, server)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def _unread_feed_is_closed_quietly(app: Litestar, server: uvicorn.Server) -> None:
    port = server.config.port
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # it reads nothing after this
    raw.connect(("127.0.0.1", port))
    try:
        raw.sendall(
            f"GET /ws/halls/{HALL}/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        engine: HallEngine = app.state.service.engine(HALL)
        assert await eventually(lambda: app.state.connections.total == 1)  # admitted
        (feed,) = [c for c in server.server_state.connections if hasattr(c, "close_sent")]
        # Fill the kernel's buffers, so that what follows waits in uvicorn's (below its
        # high-water mark: the feed is never blocked), and the close cannot complete.
        while not feed.transport.get_write_buffer_size():
            await asyncio.gather(
                *(engine.execute(IssueTicket(category="general")) for _ in range(20))
            )
        assert await eventually(lambda: feed.close_sent)
        assert feed.close_sent and not feed.disconnected  # closed by uvicorn; the app not told
        await engine.execute(IssueTicket(category="general"))  # one more frame to send
        assert await eventually(lambda: app.state.connections.total == 0)
    finally:
        raw.close()
