"""The typed hall definition: what a TOML file in ``config/`` describes.

A hall file is decoded by msgspec into the frozen Structs below, then cross-checked (every window's
categories exist, prefixes are unique, hours are well formed...). Any problem raises
:class:`ConfigError` naming the file, the key and the reason, so a bad file stops start-up with a
message a hall technician can act on.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterable
from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

Ident = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Prefix = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{1,2}$")]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config table: unknown keys are typos, so they are refused."""


DEFAULT_POLICY = "reserve"  # the calling policy of a hall file that names none


class HallInfo(Struct, frozen=True):
    id: Ident
    name: str
    name_en: str
    timezone: str = "Asia/Shanghai"
    number_digits: Annotated[int, msgspec.Meta(ge=2, le=5)] = 3
    policy: str = DEFAULT_POLICY  # a name in scheduling.policy.POLICIES (hall.settings.load_hall)
    languages: tuple[str, ...] = ("zh", "en")
    # How far ahead an appointment (预约) slot may be booked; later slots are refused.
    booking_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30
    # The address visitors' phones reach this hall server at, for the QR code on each ticket
    # (e.g. "http://192.168.1.10:8000"). None: the address the printer's agent connected to.
    public_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/?#]+$")] | None = None


class Zone(Struct, frozen=True):
    id: Ident
    name: str
    name_en: str


class Category(Struct, frozen=True):
    """A service category a visitor takes a ticket for; its prefix starts every ticket number."""

    id: Ident
    prefix: Prefix
    name: str
    name_en: str
    zone: Ident
    # Target wait (SLA) in minutes: used by the calling policies and the reports.
    target_wait_minutes: Annotated[int, msgspec.Meta(ge=1, le=480)] = 15
    # Mean service time in minutes, the prior of the running estimate until real data arrive.
    # At least 6 seconds: below that a simulated or forecast day is millions of tickets.
    mean_service_minutes: Annotated[float, msgspec.Meta(ge=0.1, le=480)] = 8.0
    # Tickets per business day; 0 means only the number width limits it.
    daily_quota: Annotated[int, msgspec.Meta(ge=0)] = 0
    # A transaction longer than this is a discipline breach (超时办理); None: the discipline
    # table's ``service_factor`` times the mean service time.
    max_service_minutes: Annotated[float, msgspec.Meta(gt=0, le=600)] | None = None


class PriorityClass(Struct, frozen=True):
    """A priority a ticket can carry (e.g. 绿色通道); a higher rank is served first."""

    id: Ident
    name: str
    name_en: str
    rank: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    # Aging (scheduling/priority.py): a ticket of this class is called as if issued this many
    # minutes earlier, so it never overtakes a ticket that has waited this much longer than it.
    # None: 1.5 minutes per rank point (rank 20 -> 30 minutes), so higher ranks go first.
    head_start_minutes: Annotated[float, msgspec.Meta(ge=0, le=480)] | None = None
    # Appointment classes (预约): the slot length; the class counts only for a ticket issued no
    # later than its slot's end, and only from the slot's start. 0: not an appointment class.
    slot_minutes: Annotated[int, msgspec.Meta(ge=0, le=480)] = 0
    # A visitor this old or older (by the birth date of the ID number entered at the kiosk) gets
    # this class unasked; the highest rank among the classes they qualify for. None: no rule.
    min_age: Annotated[int, msgspec.Meta(ge=1, le=150)] | None = None


class Window(Struct, frozen=True):
    """A window and its work profile: the categories it serves, in the order it prefers them."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
    name: str
    name_en: str
    zone: Ident
    categories: tuple[Ident, ...]
    # Category id -> weight (1-100): under the novosga-weighted policy a heavier category goes first
    # at this window, before priority and arrival (Novo SGA's user-service weight); empty: all 1.
    weights: dict[str, Annotated[int, msgspec.Meta(ge=1, le=100)]] = {}
    # What ``{window}`` says in a spoken call (e.g. "12"); default: the window's id.
    spoken: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None


class Staff(Struct, frozen=True):
    username: Ident
    name: str
    # An argon2 hash (``hall hash-password``); the password itself is never stored.
    password_hash: Annotated[str, msgspec.Meta(pattern=r"^\$argon2(id|i|d)\$")]
    role: Literal["staff", "manager"] = "staff"
    # Windows this person may work at; empty means any.
    windows: tuple[str, ...] = ()
    # 工号, shown on the window screen beside the masked name.
    staff_no: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,16}$")] | None = None


class Device(Struct, frozen=True):
    """A kiosk, caller, pad, printer or speaker; it authenticates with a token hashed here."""

    id: Ident
    kind: Literal["kiosk", "caller", "pad", "printer", "speaker", "screen"]
    token_sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    window: str | None = None  # a pad's (required), a caller's or a window screen's window
    printer: Ident | None = None  # a kiosk's ticket printer: the id of a device of kind printer


class Reason(Struct, frozen=True):
    """A reason to pause a window or cancel a ticket: public views show its code and names only,
    never the free text staff may add to it."""

    code: Ident
    name: str
    name_en: str


OTHER = Reason(code="other", name="其他", name_en="Other")
PAUSE_REASONS = (
    Reason(code="break", name="暂停休息", name_en="Short break"),
    Reason(code="meeting", name="会议培训", name_en="Meeting or training"),
    Reason(code="back-office", name="后台办理", name_en="Back-office work"),
    Reason(code="system", name="系统故障", name_en="System failure"),
    OTHER,
)
CANCEL_REASONS = (
    Reason(code="visitor", name="办事人取消", name_en="Cancelled by the visitor"),
    Reason(code="duplicate", name="重复取号", name_en="Duplicate ticket"),
    Reason(code="wrong-category", name="取错类别", name_en="Wrong category"),
    OTHER,
)


RATING_REASONS = (
    Reason(code="slow", name="办理时间太长", name_en="Took too long"),
    Reason(code="attitude", name="服务态度不好", name_en="Unfriendly service"),
    Reason(code="unclear", name="告知不清楚", name_en="Unclear explanation"),
    Reason(code="runaround", name="多次跑动", name_en="Had to come back again"),
    Reason(code="wait", name="排队太久", name_en="Waited too long"),
    OTHER,
)


class Rating(Struct, frozen=True):
    """好差评: every finished transaction is rated once, on the window's pad or the phone."""

    # Offered for the two lowest levels (不满意, 非常不满意); one at least must be chosen there.
    reasons: tuple[Reason, ...] = RATING_REASONS
    # How long the pad offers the rating after a transaction before recording "not rated".
    pad_seconds: Annotated[float, msgspec.Meta(ge=10, le=600)] = 60.0


REVISIT_RESULTS = (
    Reason(code="satisfied", name="回访满意", name_en="Satisfied on revisit"),
    Reason(code="accepted", name="理解接受", name_en="Understood and accepted"),
    Reason(code="unsatisfied", name="仍不满意", name_en="Still dissatisfied"),
    Reason(code="unreachable", name="联系不上", name_en="Could not be reached"),
)


class Cases(Struct, frozen=True):
    """差评整改: every 不满意/非常不满意 opens a case. Each step's deadline is counted in working
    days (the hall's ``calendar``) from the day of the rating; the case is overdue after it."""

    verify_days: Annotated[int, msgspec.Meta(ge=0, le=60)] = 1  # 核实
    rectify_days: Annotated[int, msgspec.Meta(ge=0, le=60)] = 5  # 整改
    revisit_days: Annotated[int, msgspec.Meta(ge=0, le=60)] = 10  # 回访 (and closing)
    revisit_results: tuple[Reason, ...] = REVISIT_RESULTS


class Calendar(Struct, frozen=True):
    """Working days: the weekdays not in ``weekend``, less ``holidays`` (法定节假日), plus
    ``workdays`` (调休: weekend days worked)."""

    weekend: tuple[Weekday, ...] = ("sat", "sun")
    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()


class Discipline(Struct, frozen=True):
    """Staff discipline rules (纪律): each breach is recorded once, with its evidence. A
    threshold of 0 turns its rule off."""

    # The longest a pause may last, per pause reason code; reasons not listed: pause_minutes.
    pause_limits: dict[str, Annotated[int, msgspec.Meta(ge=0, le=600)]] = {}
    pause_minutes: Annotated[int, msgspec.Meta(ge=0, le=600)] = 30
    pause_total_minutes: Annotated[int, msgspec.Meta(ge=0, le=1440)] = 90  # a window, a day
    # Open and idle while tickets it serves wait, for longer than this (空岗/怠岗).
    idle_seconds: Annotated[int, msgspec.Meta(ge=0, le=7200)] = 120
    # Categories without max_service_minutes: this many times their mean service time.
    service_factor: Annotated[float, msgspec.Meta(ge=0, le=20)] = 3.0
    # ``skips`` no-shows by one window within ``skip_minutes`` (skipping people: 跳号).
    skips: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    skip_minutes: Annotated[int, msgspec.Meta(ge=1, le=600)] = 10
    # Logging in later, or out earlier, than an opening period (the windows' shift) by more.
    shift_grace_minutes: Annotated[int, msgspec.Meta(ge=0, le=240)] = 5
    # A ticket held called (the visitor at the window) this long without service started.
    call_start_seconds: Annotated[int, msgspec.Meta(ge=0, le=7200)] = 300


class Alerts(Struct, frozen=True):
    """The manager's live view raises an alert at these (the discipline rules raise their own)."""

    queue_length: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 30  # waiting in one category
    wait_factor: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0  # longest wait / target
    # An open window idle this long while tickets it may call wait (0: at once). Shorter than
    # the discipline rule's: the manager is told before a breach is recorded.
    idle_seconds: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 30


ASSESSMENT_WEIGHTS = {
    "satisfaction": 40.0,
    "within_target": 20.0,
    "discipline": 20.0,
    "rectification": 10.0,
    "participation": 10.0,
}


class Assessment(Struct, frozen=True):
    """The quarterly assessment (争先创优季季评) of each window and staff member: a weighted
    mean of figures on a 0-100 scale (see the README's Oversight section)."""

    weights: dict[str, Annotated[float, msgspec.Meta(ge=0, le=100)]] = msgspec.field(
        default_factory=lambda: dict(ASSESSMENT_WEIGHTS)
    )
    breach_penalty: Annotated[float, msgspec.Meta(ge=0, le=100)] = 5.0  # points per breach


class Issuing(Struct, frozen=True):
    """How fast one device (a kiosk) may issue tickets: a burst of ``device_burst``, then one
    every ``device_seconds`` (0: no limit). Staff issuing for a visitor are not limited."""

    device_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 3.0
    device_burst: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5


class HallScreen(Struct, frozen=True):
    """The hall screen (综合屏): what it lists and the texts it shows."""

    calls: Annotated[int, msgspec.Meta(ge=1, le=30)] = 8  # the last calls listed
    highlight_seconds: Annotated[float, msgspec.Meta(ge=1, le=60)] = 8.0  # the newest, large
    next_numbers: Annotated[int, msgspec.Meta(ge=0, le=10)] = 5  # per category, in call order
    zones: tuple[Ident, ...] = ()  # the zones shown, in this order; empty: every zone
    title: str | None = None  # default: the hall's name
    title_en: str | None = None
    notice: str = ""  # the scrolling notice until a manager posts another
    notice_en: str = ""


class WindowScreen(Struct, frozen=True):
    """The window screen (窗口屏): how the staff member on duty is named in public."""

    # "masked": 张*伟 / 张* (family name and last character); "full"; "hidden": staff number only.
    staff_name: Literal["masked", "full", "hidden"] = "masked"


class Screens(Struct, frozen=True):
    hall: HallScreen = HallScreen()
    window: WindowScreen = WindowScreen()
    # Refuse screens without a device token of kind "screen" (a token bound to a window opens
    # only that window's screen).
    require_device: bool = False


class Announcement(Struct, frozen=True):
    """One language of the spoken call: ``{number}`` and ``{window}`` are filled in per call."""

    lang: str
    voice: str  # an espeak-ng voice id (pyttsx3), e.g. "sit/cmn-latn-pinyin", "gmw/en"
    template: str
    rate: Annotated[int, msgspec.Meta(ge=80, le=300)] = 150


ANNOUNCEMENTS = (
    Announcement(
        lang="zh-CN", voice="sit/cmn-latn-pinyin", template="请{number}号到{window}号窗口办理"
    ),
    Announcement(
        lang="en", voice="gmw/en", template="Number {number}, please go to window {window}"
    ),
)


class Voice(Struct, frozen=True):
    """Spoken calls: a chime, then each language in order, ``repeat`` times; a recall again."""

    languages: tuple[Announcement, ...] = ANNOUNCEMENTS
    repeat: Annotated[int, msgspec.Meta(ge=1, le=3)] = 1
    chime: bool = True


class Period(Struct, frozen=True):
    days: tuple[Weekday, ...]
    open: ClockTime
    close: ClockTime


class Hours(Struct, frozen=True):
    periods: tuple[Period, ...] = ()
    # A demo or test hall may take tickets at any hour; a real hall refuses them outside periods.
    issue_outside_hours: bool = False


class HallConfig(Struct, frozen=True):
    hall: HallInfo
    zones: tuple[Zone, ...]
    categories: tuple[Category, ...]
    windows: tuple[Window, ...]
    priorities: tuple[PriorityClass, ...] = ()
    staff: tuple[Staff, ...] = ()
    devices: tuple[Device, ...] = ()
    hours: Hours = Hours()
    pause_reasons: tuple[Reason, ...] = PAUSE_REASONS
    cancel_reasons: tuple[Reason, ...] = CANCEL_REASONS
    issuing: Issuing = Issuing()
    rating: Rating = Rating()
    cases: Cases = Cases()
    calendar: Calendar = Calendar()
    discipline: Discipline = Discipline()
    alerts: Alerts = Alerts()
    assessment: Assessment = Assessment()
    screens: Screens = Screens()
    voice: Voice = Voice()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.hall.timezone)

    def category(self, category_id: str) -> Category | None:
        return _indexes(self)[0].get(category_id)

    def window(self, window_id: str) -> Window | None:
        return _indexes(self)[1].get(window_id)

    def staff_member(self, username: str) -> Staff | None:
        return next((s for s in self.staff if s.username == username), None)

    def pause_reason(self, code: str) -> Reason | None:
        return next((r for r in self.pause_reasons if r.code == code), None)

    def cancel_reason(self, code: str) -> Reason | None:
        return next((r for r in self.cancel_reasons if r.code == code), None)

    def rating_reason(self, code: str) -> Reason | None:
        return next((r for r in self.rating.reasons if r.code == code), None)

    def revisit_result(self, code: str) -> Reason | None:
        return next((r for r in self.cases.revisit_results if r.code == code), None)

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def priority_rank(self, priority: str) -> int | None:
        if priority == "normal":
            return 0
        return next((p.rank for p in self.priorities if p.id == priority), None)


_INDEXES: dict[int, tuple[HallConfig, dict[str, Category], dict[str, Window]]] = {}


def _indexes(config: HallConfig) -> tuple[dict[str, Category], dict[str, Window]]:
    """Categories and windows by id (looked up on every command), cached by identity: a config
    is immutable once loaded. The first of duplicate ids wins, as a search in order would."""
    found = _INDEXES.get(id(config))
    if found is None or found[0] is not config:
        categories = {c.id: c for c in reversed(config.categories)}
        windows = {w.id: w for w in reversed(config.windows)}
        found = (config, categories, windows)
        if len(_INDEXES) > 64:  # configs are few; this only stops a leak in long test runs
            _INDEXES.clear()
        _INDEXES[id(config)] = found
    return found[1], found[2]


class ConfigError(Exception):
    """A hall file that cannot run: ``file``, ``key`` (a dotted path) and ``reason``."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file, self.key, self.reason = file, key, reason


def parse_clock(value: str) -> time:
    """``"08:30"`` -> 08:30; ``"24:00"`` (end of day) -> 23:59:59.999999."""
    if value == "24:00":
        return time.max
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


# A hall file of the largest city hall is ~100 KiB; reading more would only let a wrong path
# (a device, a log) eat the memory before the TOML parser refuses it.
MAX_FILE_BYTES = 4 * 1024 * 1024


def load(path: str | Path) -> HallConfig:
    """Read, decode and cross-check a hall file; raise ConfigError on any problem."""
    return loads(read_file(Path(path), "a hall file"), str(path))


def read_file(path: Path, what: str) -> bytes:
    """A config file's bytes: a regular file (or a device, read no further than the limit) of
    at most MAX_FILE_BYTES. Opened without blocking: a FIFO would wait for a writer forever."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(str(path), "-", f"cannot read the file: {exc.strerror}") from exc
    try:
        if stat.S_ISFIFO(os.fstat(descriptor).st_mode):
            raise ConfigError(str(path), "-", f"a pipe, not {what}")
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), "-", f"cannot read the file: {exc.strerror}") from exc
    finally:
        os.close(descriptor)
    if len(raw) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise ConfigError(str(path), "-", f"larger than {limit} MiB: not {what}")
    return raw


def loads(raw: bytes | str, file: str = "<string>") -> HallConfig:
    config = convert(read_toml(raw, file), HallConfig, file)
    for key, reason in _problems(config):
        raise ConfigError(file, key, reason)
    return config


def read_toml(raw: bytes | str, file: str) -> dict[str, object]:
    """The table in a TOML file's text; ConfigError when it is not UTF-8 or not TOML."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "-", f"not UTF-8 text (TOML files are UTF-8): {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from exc


T = TypeVar("T")


def convert(table: dict[str, object], kind: type[T], file: str) -> T:
    """``table`` as a ``kind`` (msgspec Structs); ConfigError naming the key that is wrong."""
    try:
        return msgspec.convert(table, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(file, *_split_validation(str(exc))) from exc


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<key>[^`]*)`)?$", re.S)
# msgspec names an unknown or missing field in the reason and the table holding it in the path.
_FIELD = re.compile(r"^Object (?:contains unknown|missing required) field `(?P<field>[^`]*)`$")


def _split_validation(message: str) -> tuple[str, str]:
    match = _AT.match(message)
    assert match is not None  # the pattern matches any string
    key = (match["key"] or "").lstrip(".")
    field = _FIELD.match(match["reason"])
    if field is not None:  # point at the key itself, not only at its table
        key = f"{key}.{field['field']}" if key else field["field"]
    return key or "-", match["reason"]


def _duplicates(values: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(index, value) of every value seen before it."""
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            yield index, value
        seen.add(value)


def _problems(config: HallConfig) -> Iterable[tuple[str, str]]:
    # The policy's name is checked by hall.settings.load_hall: the policies read this module.
    try:
        config.tz  # noqa: B018 - only checks that the zone exists
    except (ZoneInfoNotFoundError, ValueError):
        yield "hall.timezone", f"unknown time zone {config.hall.timezone!r}"
    for name, items, attr in (
        ("zones", config.zones, "id"),
        ("categories", config.categories, "id"),
        ("categories", config.categories, "prefix"),
        ("windows", config.windows, "id"),
        ("priorities", config.priorities, "id"),
        ("staff", config.staff, "username"),
        ("devices", config.devices, "id"),
        ("pause_reasons", config.pause_reasons, "code"),
        ("cancel_reasons", config.cancel_reasons, "code"),
        ("rating.reasons", config.rating.reasons, "code"),
        ("cases.revisit_results", config.cases.revisit_results, "code"),
    ):
        for index, dup in _duplicates(getattr(item, attr) for item in items):
            yield f"{name}[{index}].{attr}", f"duplicate {attr} {dup!r}"
    if not config.categories:
        yield "categories", "a hall needs at least one category"
    for name, listed in (
        ("pause_reasons", config.pause_reasons),
        ("cancel_reasons", config.cancel_reasons),
        ("rating.reasons", config.rating.reasons),
        ("cases.revisit_results", config.cases.revisit_results),
    ):
        if not listed:
            yield name, 'list at least one reason (e.g. code "other")'
    if any(p.id == "normal" for p in config.priorities):
        yield "priorities", "'normal' is built in and cannot be redefined"
    zones = {z.id for z in config.zones}
    categories = {c.id for c in config.categories}
    windows = {w.id for w in config.windows}
    for i, category in enumerate(config.categories):
        if category.zone not in zones:
            yield f"categories[{i}].zone", f"unknown zone {category.zone!r}"
    for i, window in enumerate(config.windows):
        if window.zone not in zones:
            yield f"windows[{i}].zone", f"unknown zone {window.zone!r}"
        if not window.categories:
            yield f"windows[{i}].categories", "a window must serve at least one category"
        for j, category_id in enumerate(window.categories):
            if category_id not in categories:
                yield f"windows[{i}].categories[{j}]", f"unknown category {category_id!r}"
        for _, dup in _duplicates(window.categories):
            yield f"windows[{i}].categories", f"category {dup!r} listed twice"
        for category_id in window.weights:
            if category_id not in window.categories:
                yield f"windows[{i}].weights.{category_id}", "weight for a category not served"
    for i, staff in enumerate(config.staff):
        for j, window_id in enumerate(staff.windows):
            if window_id not in windows:
                yield f"staff[{i}].windows[{j}]", f"unknown window {window_id!r}"
    for i, device in enumerate(config.devices):
        if device.window is not None and device.window not in windows:
            yield f"devices[{i}].window", f"unknown window {device.window!r}"
        if device.kind == "pad" and device.window is None:
            yield f"devices[{i}].window", "a pad rates one window's transactions: name it"
        if device.printer is not None:
            printer = config.device(device.printer)
            if device.kind != "kiosk":
                yield f"devices[{i}].printer", "only a kiosk has a ticket printer"
            elif printer is None or printer.kind != "printer":
                yield f"devices[{i}].printer", f"no device {device.printer!r} of kind printer"
    numbered = [(i, s.staff_no) for i, s in enumerate(config.staff) if s.staff_no is not None]
    for index, dup in _duplicates(number for _, number in numbered):
        yield f"staff[{numbered[index][0]}].staff_no", f"duplicate staff_no {dup!r}"
    pause_codes = {r.code for r in config.pause_reasons}
    for code in config.discipline.pause_limits:
        if code not in pause_codes:
            yield f"discipline.pause_limits.{code}", f"unknown pause reason {code!r}"
    for name in config.assessment.weights:
        if name not in ASSESSMENT_WEIGHTS:
            known = ", ".join(ASSESSMENT_WEIGHTS)
            yield f"assessment.weights.{name}", f"unknown figure {name!r} (one of {known})"
    if not any(config.assessment.weights.values()):
        yield "assessment.weights", "at least one weight must be above 0"
    if set(WEEKDAYS) <= set(config.calendar.weekend) and not config.calendar.workdays:
        yield "calendar.weekend", "every day is a weekend day: cases would have no deadline"
    for day in set(config.calendar.holidays) & set(config.calendar.workdays):
        yield "calendar", f"{day} is both a holiday and a workday"
    for i, zone_id in enumerate(config.screens.hall.zones):
        if zone_id not in zones:
            yield f"screens.hall.zones[{i}]", f"unknown zone {zone_id!r}"
    for i, spoken in enumerate(config.voice.languages):
        for field in ("{number}", "{window}"):
            if spoken.template.count(field) != 1:
                yield f"voice.languages[{i}].template", f"must contain {field} exactly once"
    for i, period in enumerate(config.hours.periods):
        if not period.days:
            yield f"hours.periods[{i}].days", "a period needs at least one day"
        if parse_clock(period.open) >= parse_clock(period.close):
            yield f"hours.periods[{i}]", f"opens at {period.open} but closes at {period.close}"
