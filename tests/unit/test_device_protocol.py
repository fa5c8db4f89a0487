"""The device link without a socket: message decoding and both session state machines."""

from __future__ import annotations

import json

import pytest

from devices.printing.ticket import PrintTicket
from devices.protocol import (
    MAX_FRAME,
    Ack,
    Error,
    Heartbeat,
    Hello,
    Play,
    Print,
    ProtocolError,
    State,
    Welcome,
    decode,
    encode,
)
from devices.session import (
    Acked,
    AgentSession,
    Close,
    DeviceInfo,
    HallSession,
    Online,
    Perform,
    Reconnect,
    Reported,
    Send,
    backoff,
)

PRINTER = DeviceInfo(device="kiosk1-printer", kind="printer")
TOKENS = {"good-token": PRINTER, "speaker-token": DeviceInfo(device="spk", kind="speaker")}
TICKET = PrintTicket(
    hall_name="政务服务中心",
    hall_name_en="Service Hall",
    number="A001",
    category_name="综合",
    category_name_en="General",
    priority_name=None,
    ahead=3,
    wait_minutes=12.5,
    issued_at="2026-11-30 09:12",
    url="https://hall.example/p/20261130-A001#secret",
    notice="请留意叫号",
    notice_en="Please wait for your call",
)


def job(n: int) -> Print:
    return Print(id=f"20261130-A{n:03d}", ticket=TICKET)


def hall(now: float = 0.0, **options: float) -> HallSession:
    return HallSession(now=now, authenticate=TOKENS.get, kinds={"printer"}, **options)


def welcomed(now: float = 0.0, **options: float) -> HallSession:
    session = hall(now, **options)
    session.receive(Hello(token="good-token", agent="printer-agent/1"), now)
    return session


def sent(effects: list) -> list:
    return [effect.message for effect in effects if isinstance(effect, Send)]


def closed_with(effects: list) -> tuple[str, int]:
    """The error code of the error frame and the close code, checking they come in that order."""
    assert isinstance(effects[0], Send) and isinstance(effects[0].message, Error)
    assert isinstance(effects[-1], Close)
    return effects[0].message.error, effects[-1].code


# -- messages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\xff\xfe",
        "[]",
        "{}",
        '{"type": "launch"}',
        '{"type": "ack"}',
        '{"type": "ack", "id": 7}',
        '{"type": "ack", "id": "a b"}',
        '{"type": "ack", "id": "' + "x" * 65 + '"}',
        '{"type": "ack", "id": "x", "extra": 1}',
        '{"type": "hello", "token": "' + "t" * 201 + '", "agent": "a"}',
        '{"type": "state", "status": "on_fire"}',
        '{"type": "state", "status": "error", "detail": "' + "d" * 201 + '"}',
        '{"type": "play", "id": "call-1", "url": "/'
        + "u" * 300
        + '", "number": "A1", "window": "5"}',
        '{"type": "welcome", "device": "d", "kind": "printer", "window": null, "heartbeat": 0}',
        '{"type": "print", "id": "x", "ticket": {"number": "A001"}}',
    ],
)
def test_decode_refuses_malformed_frames(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    assert caught.value.code == "malformed"
    assert caught.value.close_code == 4400


@pytest.mark.parametrize(
    ("frame", "path"),
    [
        ('{"type": "state", "status": "CANARY"}', "`$.status`"),
        ('{"type": "CANARY"}', "`$.type`"),
        ('{"type": "ack", "id": "x", "CANARY": 1}', "`$`"),
        ('{"type": "ack", "id": "CANARY CANARY"}', "`$.id`"),
        ('{"type": "hello", "token": "x"}', "`$.agent`"),
        ('{"type": "print", "id": "x", "ticket": {"number": "CANARY"}}', "`$.ticket.hall_name`"),
        ('{"type": "CANARY', None),
    ],
)
def test_a_malformed_frame_is_refused_without_quoting_it(frame: str, path: str | None) -> None:
    """The error frame goes back to whoever sent it and into logs: a value or a key the sender
    chose is never in it (msgspec's own message would say "Invalid enum value 'CANARY'")."""
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    assert "CANARY" not in caught.value.message
    if path is not None:
        assert path in caught.value.message, caught.value.message


def test_decode_refuses_a_frame_over_4_kib_even_if_well_formed() -> None:
    frame = '{"type": "state", "status": "ok"' + " " * MAX_FRAME + "}"
    assert decode(frame[: MAX_FRAME - 1] + "}") == State(status="ok")
    with pytest.raises(ProtocolError, match="4096") as caught:
        decode(frame)
    assert caught.value.close_code == 4400


def test_every_message_round_trips_through_its_wire_form() -> None:
    messages = [
        Hello(token="t", agent="printer-agent/1"),
        Welcome(device="p1", kind="printer", window=None, heartbeat=10),
        Heartbeat(),
        job(1),
        Play(id="call-17", url="/api/halls/h/announcements/A012/5.wav", number="A012", window="5"),
        Ack(id="20261130-A001"),
        State(status="paper_out", detail="cover open"),
        Error(error="bad_token", message="unknown device token"),
    ]
    for message in messages:
        assert decode(encode(message)) == message
    assert json.loads(encode(Heartbeat())) == {"type": "heartbeat"}
    assert len(encode(job(1)).encode()) < MAX_FRAME  # a real ticket fits in a frame


# -- the hall's side ------------------------------------------------------------------------------


def test_hello_is_welcomed_and_the_device_is_online() -> None:
    session = hall(heartbeat=7)
    effects = session.receive(encode(Hello(token="good-token", agent="printer-agent/1")), 1.0)
    assert effects == [
        Online(PRINTER),
        Send(Welcome(device="kiosk1-printer", kind="printer", window=None, heartbeat=7)),
    ]


def test_a_wrong_token_is_refused_with_4401() -> None:
    effects = hall().receive(Hello(token="stolen", agent="printer-agent/1"), 1.0)
    assert closed_with(effects) == ("bad_token", 4401)
    assert not any(isinstance(e, Online | Reported) for e in effects)


def test_a_device_of_the_wrong_kind_is_refused_with_4403() -> None:
    effects = hall().receive(Hello(token="speaker-token", agent="speaker-agent/1"), 1.0)
    assert closed_with(effects) == ("wrong_kind", 4403)
    assert "printer" in effects[0].message.message


def test_no_hello_in_time_closes_with_4408() -> None:
    session = hall(now=100.0)
    assert session.deadline() == 105.0
    assert session.tick(104.9) == []
    assert closed_with(session.tick(105.0)) == ("timeout", 4408)
    assert session.tick(200.0) == [] and session.receive(Heartbeat(), 200.0) == []


def test_anything_before_hello_is_a_protocol_error() -> None:
    assert closed_with(hall().receive(Ack(id="x"), 1.0)) == ("protocol", 1008)


def test_malformed_frame_closes_with_4400_and_an_online_device_goes_offline() -> None:
    assert closed_with(hall().receive("{nope", 1.0)) == ("malformed", 4400)
    effects = welcomed().receive('{"type": "ack"}', 1.0)
    assert closed_with(effects) == ("malformed", 4400)
    assert Reported("offline") in effects


@pytest.mark.parametrize(
    "message",
    [
        Hello(token="good-token", agent="a"),
        Welcome(device="d", kind="k", window=None, heartbeat=1),
        job(1),
    ],
)
def test_a_message_out_of_place_after_the_welcome_is_a_protocol_error(message) -> None:
    assert closed_with(welcomed().receive(message, 1.0)) == ("protocol", 1008)


def test_heartbeats_out_and_silence_marks_the_device_offline() -> None:
    session = welcomed(now=0.0, heartbeat=10)
    assert session.tick(9.9) == []
    assert sent(session.tick(10.0)) == [Heartbeat()]
    assert session.receive(Heartbeat(), 25.0) == []  # heard: the silence clock restarts
    assert sent(session.tick(54.9)) == [Heartbeat()]
    effects = session.tick(55.0)  # 3 x 10 s since the device's last frame
    assert closed_with(effects) == ("timeout", 4408)
    assert Reported("offline") in effects


def test_jobs_go_one_at_a_time_in_order_and_an_ack_moves_on() -> None:
    session = hall()
    assert session.offer(job(1), 0.0) == []  # queued until the welcome
    session.offer(job(2), 0.0)
    effects = session.receive(Hello(token="good-token", agent="a"), 1.0)
    assert sent(effects)[1:] == [job(1)]
    assert session.offer(job(3), 1.5) == []  # job 1 is in flight
    assert session.receive(Ack(id="20261130-A001"), 2.0) == [Acked("20261130-A001"), Send(job(2))]
    assert session.receive(Ack(id="20261130-A002"), 3.0) == [Acked("20261130-A002"), Send(job(3))]
    assert session.receive(Ack(id="20261130-A003"), 4.0) == [Acked("20261130-A003")]
    assert session.pending == [] and session.in_flight is None
    assert session.offer(job(4), 5.0) == [Send(job(4))]  # the queue was empty: straight out


def test_duplicate_unknown_and_early_acks_are_ignored() -> None:
    session = welcomed()
    session.offer(job(1), 0.0)
    session.offer(job(2), 0.0)
    assert session.receive(Ack(id="20261130-A001"), 1.0) == [Acked("20261130-A001"), Send(job(2))]
    assert session.receive(Ack(id="20261130-A001"), 1.1) == []  # duplicate
    assert session.receive(Ack(id="20261130-A999"), 1.2) == []  # never offered
    assert session.in_flight == "20261130-A002"
    session.offer(job(3), 1.3)
    assert session.receive(Ack(id="20261130-A003"), 1.4) == []  # queued, not yet sent
    assert session.pending == ["20261130-A002", "20261130-A003"]


def test_offers_are_deduplicated_by_id() -> None:
    session = welcomed()
    assert session.offer(job(1), 0.0) == [Send(job(1))]
    assert session.offer(job(1), 0.1) == []
    session.receive(Ack(id="20261130-A001"), 0.2)
    assert session.offer(job(1), 0.3) == []  # acked on this connection: the endpoint was late
    assert session.pending == []


def test_an_unacked_job_is_sent_again_after_retry() -> None:
    session = welcomed(now=0.0, heartbeat=10, retry=5)
    session.offer(job(1), 1.0)
    assert session.deadline() == 6.0
    assert session.tick(5.9) == []
    assert sent(session.tick(6.0)) == [job(1)]
    assert sent(session.tick(10.9)) == []
    assert sent(session.tick(11.0)) == [job(1)]  # and again, same id
    assert session.receive(Ack(id="20261130-A001"), 12.0) == [Acked("20261130-A001")]
    assert sent(session.tick(17.0)) == []


def test_state_becomes_a_report() -> None:
    session = welcomed()
    assert session.receive(State(status="paper_out", detail="cover"), 1.0) == [
        Reported("paper_out", "cover")
    ]


def test_only_printers_and_speakers_report_hardware_state() -> None:
    pad = DeviceInfo(device="pad-1", kind="pad")
    session = HallSession(now=0.0, authenticate={"pad": pad}.get, kinds={"pad", "speaker"})
    session.receive(Hello(token="pad", agent="device-page/1"), 0.0)
    effects = session.receive(State(status="paper_out"), 1.0)
    assert closed_with(effects) == ("protocol", 1008)
    assert "a pad has no hardware state" in effects[0].message.message
    assert [e for e in effects if isinstance(e, Reported)] == [Reported("offline")]  # not the state
    speaker = HallSession(now=0.0, authenticate=TOKENS.get, kinds={"pad", "speaker"})
    speaker.receive(Hello(token="speaker-token", agent="speaker-agent/1"), 0.0)
    assert speaker.receive(State(status="error"), 1.0) == [Reported("error")]


def test_a_lost_connection_reports_offline_once_and_only_if_online() -> None:
    assert hall().connection_lost() == []
    session = welcomed()
    assert session.connection_lost() == [Reported("offline")]
    assert session.connection_lost() == [] and session.tick(100.0) == []


# -- the agent's side -----------------------------------------------------------------------------


def agent(done: set[str] | None = None, now: float = 0.0) -> AgentSession:
    session = AgentSession(token="good-token", agent="printer-agent/1", done=done or set())
    assert sent(session.connected(now)) == [Hello(token="good-token", agent="printer-agent/1")]
    session.receive(Welcome(device="p", kind="printer", window=None, heartbeat=2), now)
    return session


def test_agent_and_hall_sessions_talk_to_each_other() -> None:
    """Frames from one fed to the other, through their wire form, until both are quiet."""
    the_hall, the_agent = hall(), AgentSession(token="good-token", agent="printer-agent/1")
    for n in (1, 2, 3):
        the_hall.offer(job(n), 0.0)
    performed, acked = [], []
    to_hall = [encode(e.message) for e in the_agent.connected(0.0) if isinstance(e, Send)]
    while to_hall:
        to_agent = []
        for frame in to_hall:
            for effect in the_hall.receive(frame, 1.0):
                if isinstance(effect, Send):
                    to_agent.append(encode(effect.message))
                elif isinstance(effect, Acked):
                    acked.append(effect.job_id)
        to_hall = []
        for frame in to_agent:
            for effect in the_agent.receive(frame, 1.0):
                if isinstance(effect, Perform):
                    performed.append(effect.job.id)
                    effects = the_agent.done(effect.job.id, 1.0)
                else:
                    effects = [effect]
                to_hall += [encode(e.message) for e in effects if isinstance(e, Send)]
    ids = ["20261130-A001", "20261130-A002", "20261130-A003"]
    assert performed == ids and acked == ids


def test_agent_performs_a_job_then_acks_it() -> None:
    session = agent()
    assert session.receive(job(1), 1.0) == [Perform(job(1))]
    assert session.done("20261130-A001", 2.0) == [Send(Ack(id="20261130-A001"))]
    assert session.receive(job(1), 3.0) == [Send(Ack(id="20261130-A001"))]  # resent: ack only


def test_agent_acks_a_job_done_before_it_started_without_performing_it() -> None:
    session = agent(done={"20261130-A001"})
    assert session.receive(encode(job(1)), 1.0) == [Send(Ack(id="20261130-A001"))]


def test_agent_performs_one_job_at_a_time_and_ignores_resends_meanwhile() -> None:
    session = agent()
    assert session.receive(job(1), 1.0) == [Perform(job(1))]
    assert session.receive(job(1), 2.0) == []
    assert session.receive(job(2), 2.0) == []  # the hall sends it again after its retry
    assert session.performing == "20261130-A001"


def test_a_failed_job_reports_the_state_once_and_is_performed_again() -> None:
    session = agent()
    session.receive(job(1), 1.0)
    assert sent(session.failed("20261130-A001", "paper_out", 2.0, "no paper")) == [
        State(status="paper_out", detail="no paper")
    ]
    assert session.receive(job(1), 7.0) == [Perform(job(1))]  # not done: again
    assert session.failed("20261130-A001", "paper_out", 8.0) == []  # the hall knows already
    session.receive(job(1), 13.0)
    assert sent(session.done("20261130-A001", 14.0)) == [
        State(status="ok"),
        Ack(id="20261130-A001"),
    ]


def test_agent_reports_hardware_changes_and_repeats_the_state_after_a_reconnect() -> None:
    session = agent()
    assert sent(session.hardware("paper_low", 1.0)) == [State(status="paper_low")]
    assert session.hardware("paper_low", 2.0) == []
    session.disconnected()
    assert session.hardware("paper_out", 3.0) == []  # nobody to tell yet
    session.connected(4.0)
    welcome = Welcome(device="p", kind="printer", window=None, heartbeat=2)
    assert sent(session.receive(welcome, 4.1)) == [State(status="paper_out")]


def test_agent_heartbeats_and_reconnects_when_the_hall_goes_silent() -> None:
    session = agent(now=0.0)  # the welcome set a 2 s heartbeat
    assert session.deadline() == 2.0
    assert sent(session.tick(2.0)) == [Heartbeat()]
    session.receive(Heartbeat(), 3.0)
    assert sent(session.tick(4.0)) == [Heartbeat()]
    assert session.tick(8.9) == [Send(Heartbeat())]
    assert session.tick(9.0) == [Reconnect("the hall went silent")]
    assert session.tick(20.0) == [] and session.deadline() is None


def test_agent_reconnects_when_no_welcome_comes() -> None:
    session = AgentSession(token="t", agent="a", heartbeat=10)
    session.connected(0.0)
    assert session.tick(29.9) == []  # no heartbeats before the welcome
    assert isinstance(session.tick(30.0)[0], Reconnect)


@pytest.mark.parametrize(
    "frame",
    [
        "garbage",
        encode(Ack(id="x")),
        encode(Error(error="bad_token", message="unknown device token")),
    ],
)
def test_agent_reconnects_on_a_malformed_frame_a_wrong_message_or_a_refusal(frame: str) -> None:
    effects = agent().receive(frame, 1.0)
    assert len(effects) == 1 and isinstance(effects[0], Reconnect)


def test_a_job_before_the_welcome_makes_the_agent_reconnect() -> None:
    session = AgentSession(token="t", agent="a")
    session.connected(0.0)
    assert isinstance(session.receive(job(1), 1.0)[0], Reconnect)


def test_a_job_finished_while_disconnected_is_acked_when_the_hall_sends_it_again() -> None:
    session = agent()
    session.receive(job(1), 1.0)
    session.disconnected()
    assert session.done("20261130-A001", 2.0) == []
    session.connected(3.0)
    session.receive(Welcome(device="p", kind="printer", window=None, heartbeat=2), 3.0)
    assert session.receive(job(1), 3.1) == [Send(Ack(id="20261130-A001"))]


def test_backoff_doubles_from_half_a_second_to_ten_with_full_jitter() -> None:
    caps = [backoff(attempt, 0.999999) for attempt in range(8)]
    assert caps == pytest.approx([0.5, 1, 2, 4, 8, 10, 10, 10], rel=1e-5)
    assert backoff(0, 0.0) == 0.0 and backoff(3, 0.5) == 2.0
    assert all(0 <= backoff(a, r) < 10 for a in (0, 5, 10_000) for r in (0.0, 0.3, 0.99))
