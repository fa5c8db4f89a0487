"""What people ask a hall to do. Edges build these after authentication; ``by`` is who asks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from hall.domain.events import Outcome

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=500)]


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=str.lower):
    pass


class IssueTicket(Command, frozen=True, tag="issue_ticket"):
    category: str
    priority: str = "normal"
    # The start of the visitor's appointment slot (预约), if they hold one; aware datetime.
    appointment: datetime | None = None
    secret: str = ""  # printed on the ticket, drawn at the edge (randomness is an input)
    person: str = ""  # a keyed hash of the visitor's ID number (see TicketIssued)
    age: int | None = None  # the visitor's age from that ID number, for the age rules
    printer: str | None = None  # the issuing kiosk's printer


class CancelTicket(Command, frozen=True, tag="cancel_ticket"):
    ticket: str
    reason: Reason = "other"  # a code of the hall's cancel_reasons
    note: Note | None = None
    by: str | None = None
    # A kiosk (or the visitor) may cancel only a ticket still waiting, not one at a window.
    waiting_only: bool = False
    # The visitor proves the ticket is theirs by the secret printed on it; None: not the visitor.
    secret: str | None = None


class MarkPrinted(Command, frozen=True, tag="mark_printed"):
    ticket: str
    printer: str


class Rate(Command, frozen=True, kw_only=True, tag="rate"):
    """A rating of a finished transaction, from the pad of ``window`` (which must be where it
    was finished) or from the visitor's phone (``secret``: the one printed on the ticket)."""

    ticket: str
    level: int | None  # 1..5; None: "not rated" (pads only)
    reasons: tuple[str, ...] = ()
    comment: str | None = None
    by: str
    window: str | None = None  # the pad's window; None from the phone
    secret: str | None = None  # the phone's proof; None from a pad


class ReportDevice(Command, frozen=True, tag="report_device"):
    device: str
    status: str


class WindowCommand(Command, frozen=True):
    """A command at a window, by the staff member ``by`` (who must be logged in there)."""

    window: str
    by: str


class Login(WindowCommand, frozen=True, tag="login"):
    pass


class CallNext(WindowCommand, frozen=True, tag="call_next"):
    pass


class Recall(WindowCommand, frozen=True, tag="recall"):
    pass


class Start(WindowCommand, frozen=True, tag="start"):
    pass


class Finish(WindowCommand, frozen=True, tag="finish"):
    outcome: Outcome = Outcome.DONE


class NoShow(WindowCommand, frozen=True, tag="no_show"):
    pass


class Transfer(WindowCommand, frozen=True, tag="transfer"):
    """To another category, or to a named window (then the category is that window's choice)."""

    category: str | None = None
    to_window: str | None = None


class Pause(WindowCommand, frozen=True, tag="pause"):
    reason: Reason  # a code of the hall's pause_reasons
    note: Note | None = None


class Resume(WindowCommand, frozen=True, tag="resume"):
    pass


class Logout(WindowCommand, frozen=True, tag="logout"):
    pass


class OpenDay(Command, frozen=True, tag="open_day"):
    """Nothing but the turn of the day: the engine sends it when a new business day has begun
    and no command has come yet, so screens stop showing yesterday's queue at midnight."""


class ChangeProfile(Command, frozen=True, tag="change_profile"):
    """A manager sets the categories a window serves, in order."""

    window: str
    categories: tuple[str, ...]
    by: str


class ForceClose(Command, frozen=True, tag="force_close"):
    """A manager closes a window whoever is (or was) logged in there."""

    window: str
    by: str
    note: Note | None = None


class ChangePassword(Command, frozen=True, tag="change_password"):
    staff: str
    password_hash: str  # argon2, computed at the edge


class PostNotice(Command, frozen=True, tag="post_notice"):
    """A manager sets the hall screen's notice; both texts empty: the hall file's again."""

    text: str
    text_en: str
    by: str


class OpenWindow(Command, frozen=True, tag="open_window"):
    """A manager opens a window for a staff member (in a peak, before they reach the desk):
    the same rules as the staff member's own login."""

    window: str
    staff: str
    by: str


class RecordBreach(Command, frozen=True, kw_only=True, tag="record_breach"):
    """The discipline watcher's finding (see BreachRecorded); recorded once per ``breach``."""

    breach: str
    rule: str
    window: str
    staff: str | None
    since: datetime
    measured: float
    limit: float
    evidence: tuple[int, ...] = ()


class ExcuseBreach(Command, frozen=True, tag="excuse_breach"):
    breach: str
    reason: Reason
    by: str


class StepCase(Command, frozen=True, kw_only=True, tag="step_case"):
    """A manager's step in a bad rating's follow-up (see CaseStepped)."""

    case: str
    step: str
    by: str
    valid: bool | None = None
    result: str | None = None
    text: Note = ""


class AcknowledgeAlert(Command, frozen=True, tag="acknowledge_alert"):
    alert: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    by: str


AnyCommand = (
    IssueTicket
    | CancelTicket
    | Login
    | CallNext
    | Recall
    | Start
    | Finish
    | NoShow
    | Transfer
    | Pause
    | Resume
    | Logout
    | ChangeProfile
    | OpenDay
    | ForceClose
    | ChangePassword
    | PostNotice
    | MarkPrinted
    | Rate
    | ReportDevice
    | OpenWindow
    | RecordBreach
    | ExcuseBreach
    | StepCase
    | AcknowledgeAlert
)
