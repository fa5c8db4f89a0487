"""The devices' and ratings' rules in the pure domain: one rating per finished transaction,
bound to the window that finished it; one live ticket per person and category; age rules; print
jobs; device health."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from hall.config import loads
from hall.domain import errors
from hall.domain.commands import (
    CallNext,
    CancelTicket,
    Finish,
    IssueTicket,
    Login,
    MarkPrinted,
    NoShow,
    Rate,
    ReportDevice,
    Start,
)
from hall.domain.events import TicketIssued, TicketRated
from hall.domain.state import fold
from hall.identity import InvalidIdNumber, age_on, birth_date, person_hash
from tests.unit.conftest import NEXT_LOCAL_MIDNIGHT, Driver, small_hall_toml

DEVICES = """
[[devices]]
id = "kiosk-1"
kind = "kiosk"
printer = "printer-1"
token_sha256 = "{0}"

[[devices]]
id = "printer-1"
kind = "printer"
token_sha256 = "{0}"

[[devices]]
id = "pad-1"
kind = "pad"
window = "1"
token_sha256 = "{0}"
""".format("0" * 64)


@pytest.fixture
def hall() -> Driver:
    text = small_hall_toml().replace("rank = 20\n", "rank = 20\nmin_age = 70\n") + DEVICES
    return Driver(loads(text, "<devices hall>"))


def served(hall: Driver, window: str = "1", staff: str = "alice") -> str:
    """A ticket issued, called, served and finished at ``window``; its id."""
    issued = hall.do(IssueTicket(category="general", secret="s3cret"))[-1]
    assert isinstance(issued, TicketIssued)
    if hall.state.windows[window].staff is None:
        hall.do(Login(window=window, by=staff))
    hall.do(CallNext(window=window, by=staff))
    hall.do(Start(window=window, by=staff))
    hall.do(Finish(window=window, by=staff))
    return issued.ticket


def test_a_finished_transaction_is_rated_once_bound_to_its_window_and_staff(hall: Driver) -> None:
    ticket = served(hall)
    rated = hall.do(Rate(ticket=ticket, level=5, by="pad-1", window="1"))[-1]
    assert isinstance(rated, TicketRated)
    assert (rated.window, rated.staff, rated.level, rated.channel) == ("1", "alice", 5, "pad")
    with pytest.raises(errors.AlreadyRated):
        hall.do(Rate(ticket=ticket, level=4, by="pad-1", window="1"))
    with pytest.raises(errors.AlreadyRated):  # nor from the phone
        hall.do(Rate(ticket=ticket, level=4, by="visitor", secret="s3cret"))


def test_a_pad_rates_only_its_own_windows_transactions(hall: Driver) -> None:
    ticket = served(hall, window="2", staff="bob")
    with pytest.raises(errors.NotServedHere):
        hall.do(Rate(ticket=ticket, level=5, by="pad-1", window="1"))
    assert hall.state.tickets[ticket].rating is None


def test_only_a_finished_transaction_is_rated(hall: Driver) -> None:
    hall.do(Login(window="1", by="alice"))
    issued = hall.do(IssueTicket(category="general"))[-1]
    assert isinstance(issued, TicketIssued)
    with pytest.raises(errors.NotRatable):  # waiting
        hall.do(Rate(ticket=issued.ticket, level=5, by="pad-1", window="1"))
    hall.do(CallNext(window="1", by="alice"))
    hall.do(NoShow(window="1", by="alice"))
    with pytest.raises(errors.NotRatable):  # nobody came: no transaction
        hall.do(Rate(ticket=issued.ticket, level=5, by="pad-1", window="1"))
    with pytest.raises(errors.UnknownTicket):
        hall.do(Rate(ticket="20240304-A999", level=5, by="pad-1", window="1"))


def test_low_ratings_need_known_reasons_and_others_take_none(hall: Driver) -> None:
    ticket = served(hall)
    for level, reasons, error in (
        (2, (), errors.InvalidInput),
        (1, ("nonsense",), errors.UnknownReason),
        (1, ("slow", "slow"), errors.InvalidInput),
        (4, ("slow",), errors.InvalidInput),
        (6, (), errors.InvalidInput),
    ):
        with pytest.raises(error):
            hall.do(Rate(ticket=ticket, level=level, reasons=reasons, by="pad-1", window="1"))
    rated = hall.do(
        Rate(
            ticket=ticket, level=1, reasons=("slow", "unclear"), comment="…", by="pad-1", window="1"
        )
    )[-1]
    assert isinstance(rated, TicketRated) and rated.reasons == ("slow", "unclear")


def test_not_rated_is_recorded_once_and_the_phone_may_still_rate(hall: Driver) -> None:
    ticket = served(hall)
    hall.do(Rate(ticket=ticket, level=None, by="pad-1", window="1"))
    assert hall.state.tickets[ticket].not_rated and hall.state.tickets[ticket].rating is None
    with pytest.raises(errors.AlreadyRated):
        hall.do(Rate(ticket=ticket, level=None, by="pad-1", window="1"))
    with pytest.raises(errors.AlreadyRated):  # the pad had its turn
        hall.do(Rate(ticket=ticket, level=5, by="pad-1", window="1"))
    with pytest.raises(errors.InvalidInput):  # only a pad records "not rated"
        hall.do(Rate(ticket=ticket, level=None, by="visitor", secret="s3cret"))
    with pytest.raises(errors.WrongSecret):
        hall.do(Rate(ticket=ticket, level=3, by="visitor", secret="guess"))
    rated = hall.do(Rate(ticket=ticket, level=3, by="visitor", secret="s3cret"))[-1]
    assert isinstance(rated, TicketRated) and rated.channel == "phone"
    assert hall.state.tickets[ticket].rating == 3


def test_one_live_ticket_per_person_and_category(hall: Driver) -> None:
    person = person_hash(b"k" * 32, "11010519491231002X")
    first = hall.do(IssueTicket(category="general", person=person))[-1]
    assert isinstance(first, TicketIssued)
    with pytest.raises(errors.AlreadyHolding) as held:
        hall.do(IssueTicket(category="general", person=person))
    assert held.value.detail["number"] == first.number
    hall.do(IssueTicket(category="tax", person=person))  # another category is another queue
    hall.do(Login(window="1", by="alice"))
    hall.do(CallNext(window="1", by="alice"))
    hall.do(NoShow(window="1", by="alice"))
    hall.do(IssueTicket(category="general", person=person))  # no longer live: a new one


def test_age_gives_the_green_lane_unasked(hall: Driver) -> None:
    old = hall.do(IssueTicket(category="general", age=70))[-1]
    young = hall.do(IssueTicket(category="general", age=69))[-1]
    asked = hall.do(IssueTicket(category="general", priority="green", age=20))[-1]
    assert isinstance(old, TicketIssued) and old.priority == "green"
    assert isinstance(young, TicketIssued) and young.priority == "normal"
    assert isinstance(asked, TicketIssued) and asked.priority == "green"  # asked: kept


def test_print_jobs_wait_until_acked_and_leave_at_the_days_end(hall: Driver) -> None:
    a = hall.do(IssueTicket(category="general", printer="printer-1"))[-1]
    b = hall.do(IssueTicket(category="general", printer="printer-1"))[-1]
    assert isinstance(a, TicketIssued) and isinstance(b, TicketIssued)
    assert hall.state.printing == {"printer-1": [a.ticket, b.ticket]}
    assert len(hall.do(MarkPrinted(ticket=a.ticket, printer="printer-1"))) == 1
    assert hall.do(MarkPrinted(ticket=a.ticket, printer="printer-1")) == []  # acked again
    assert hall.state.printing == {"printer-1": [b.ticket]}
    assert fold(hall.config, hall.log).printing == hall.state.printing
    hall.do(IssueTicket(category="general"), NEXT_LOCAL_MIDNIGHT)
    assert hall.state.printing == {}


def test_a_ticket_over_before_it_was_printed_leaves_the_print_queue(hall: Driver) -> None:
    hall.do(Login(window="1", by="alice"))
    a = hall.do(IssueTicket(category="general", printer="printer-1"))[-1]
    b = hall.do(IssueTicket(category="general", printer="printer-1"))[-1]
    c = hall.do(IssueTicket(category="general", printer="printer-1"))[-1]
    assert isinstance(a, TicketIssued) and isinstance(b, TicketIssued)
    assert isinstance(c, TicketIssued)
    hall.do(CancelTicket(ticket=c.ticket, reason="visitor", by="visitor", waiting_only=True))
    hall.do(CallNext(window="1", by="alice"))  # a: called, still printed (the visitor waits)
    assert hall.state.printing == {"printer-1": [a.ticket, b.ticket]}
    hall.do(NoShow(window="1", by="alice"))
    assert hall.state.printing == {"printer-1": [b.ticket]}
    assert fold(hall.config, hall.log).printing == hall.state.printing


def test_device_reports_are_events_only_when_the_status_changes(hall: Driver) -> None:
    hall.do(IssueTicket(category="general"))  # the day's turn, out of the way
    assert len(hall.do(ReportDevice(device="printer-1", status="online"))) == 1
    assert hall.do(ReportDevice(device="printer-1", status="online")) == []
    assert len(hall.do(ReportDevice(device="printer-1", status="paper_out"))) == 1
    assert hall.state.devices["printer-1"].status == "paper_out"
    with pytest.raises(errors.InvalidInput):
        hall.do(ReportDevice(device="nobody", status="online"))


# -- ID numbers (GB 11643-1999) ------------------------------------------------------------------

TODAY = date(2024, 3, 4)


def test_a_valid_id_number_gives_its_birth_date() -> None:
    assert birth_date("11010519491231002X", TODAY) == date(1949, 12, 31)
    assert birth_date("11010519491231002x", TODAY) == date(1949, 12, 31)  # a lower-case x
    assert age_on(date(1949, 12, 31), TODAY) == 74
    assert age_on(date(1954, 3, 4), TODAY) == 70 and age_on(date(1954, 3, 5), TODAY) == 69


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002",  # 17 characters
        "110105194912310021",  # a wrong check digit
        "1101051949123100XX",
        "11010519491331002X",  # month 13 (check digit recomputed would still fail on the date)
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "",
    ],
)
def test_a_bad_id_number_is_refused_without_repeating_it(number: str) -> None:
    with pytest.raises(InvalidIdNumber) as refused:
        birth_date(number, TODAY)
    assert number[:6] not in refused.value.message or not number
    assert "110105" not in str(refused.value.detail)


def test_a_future_birth_date_is_refused() -> None:
    with pytest.raises(InvalidIdNumber):
        birth_date("110105194912310021", TODAY - timedelta(days=365 * 100))


def test_the_kept_hash_is_keyed() -> None:
    number = "11010519491231002X"
    assert person_hash(b"a" * 32, number) != person_hash(b"b" * 32, number)
    assert person_hash(b"a" * 32, number) == person_hash(b"a" * 32, number.lower())
    assert number not in person_hash(b"a" * 32, number)
