"""What the manager's live view shows (``/manage/{hall}``): the load per zone and category against
its targets, every window with who is there, today's figures so far, devices in trouble, and the
alerts a manager acknowledges.

Pure, like :mod:`displays.projection`: the state and ``now`` in, the view out. Manager-only: staff
appear by name and username. Times are sent as instants (the page counts the minutes on the
server's clock), so the view changes with time alone only when an alert starts or ends; the hub
projects it again every ``REFRESH_SECONDS`` for that (:mod:`displays.hub`). Delta ``changes``:
the top-level keys that changed, whole.

Alerts, each with an id that stays while its condition lasts and is new when it comes back (an
acknowledgement is for one occurrence): ``queue:<category>:<since>`` (more than
``[alerts] queue_length`` waiting), ``wait:<category>:<since>`` (someone has waited over
``wait_factor`` × the target), ``unserved:<category>:<ticket>`` (people wait, the
ticket longest, and no open window serves it), ``idle:<window>:<since>`` (open, not paused, for
``[alerts] idle_seconds`` while tickets it may call wait), ``breach:<id>`` (recorded today, not
excused), ``case:<ticket>`` (a new bad rating) and ``overdue:<ticket>:<stage>``, and
``device:<id>:<since>`` (offline or out of paper). When a queue or a wait began is read from the
tickets' own times, so the id does not depend on when anybody looked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import msgspec

from displays.projection import _View, changed_fields
from hall.config import HallConfig
from hall.domain.oversight import RULES, Stage, overdue
from hall.domain.state import HallState, Ticket, TicketState, WindowState
from hall.journal.base import Recorded
from scheduling.calendar import business_day
from scheduling.estimate import ServiceTimes
from scheduling.forecast import forecast_new
from scheduling.lookahead import callable_count
from scheduling.policy import policy_named
from scheduling.topology import topology

REFRESH_SECONDS = 1.0  # an idle window's alert shows within a second, with no event
SEVERITY = {"high": 0, "medium": 1, "low": 2}
# Device states worth a manager's walk; "paper_low" only as a low alert.
DEVICE_TROUBLE = {"offline": "medium", "printer_offline": "medium", "paper_out": "high"}
DEVICE_TROUBLE |= {"error": "medium", "paper_low": "low"}
DEVICE_NAMES = {
    "offline": ("离线", "offline"),
    "printer_offline": ("打印机离线", "printer offline"),
    "paper_out": ("缺纸", "out of paper"),
    "paper_low": ("纸将用完", "paper low"),
    "error": ("故障", "error"),
}


class HallName(_View, frozen=True):
    id: str
    name: str
    name_en: str


class CategoryLoad(_View, frozen=True):
    id: str
    prefix: str
    name: str
    name_en: str
    waiting: int
    oldest: datetime | None  # the issue time of the one waiting longest
    target_minutes: int
    estimate_minutes: float | None  # a ticket taken now (None: no open window serves it)
    windows: int  # open windows serving it
    over_length: bool  # over [alerts] queue_length
    over_target: bool  # someone has waited over wait_factor × the target


class ZoneLoad(_View, frozen=True):
    id: str
    name: str
    name_en: str
    waiting: int
    categories: list[CategoryLoad]


class WindowLive(_View, frozen=True):
    id: str
    name: str
    name_en: str
    zone: str
    state: str
    since: datetime | None
    staff: str | None  # username
    staff_name: str | None  # in full: this view is for managers only
    number: str | None  # called or served
    pause_reason: str | None
    pause_name: str | None
    pause_name_en: str | None
    profile: list[str]
    callable: int  # tickets waiting that it may call


class DayFigures(_View, frozen=True):
    issued: int
    served: int
    no_shows: int
    waiting: int
    wait_mean_minutes: float | None  # issue to call, of today's called tickets
    within_target: float | None  # share of them called within their category's target
    rated: int
    satisfaction: float | None  # 非常满意 + 满意, of the rated
    bad: int  # 不满意 + 非常不满意
    cases_open: int
    cases_overdue: int
    breaches: int  # recorded today
    breaches_excused: int


class DeviceTrouble(_View, frozen=True):
    id: str
    kind: str
    window: str | None
    status: str
    since: datetime


class Alert(_View, frozen=True):
    id: str
    kind: str  # queue, wait, unserved, idle, breach, case, overdue, device
    severity: str  # high, medium, low
    text: str
    text_en: str
    since: datetime | None
    acknowledged: bool = False  # set from the state's acknowledgements, once all are found
    by: str | None = None  # who acknowledged it
    window: str | None = None
    category: str | None = None


class ManagerView(_View, frozen=True):
    hall: HallName
    day: date | None
    zones: list[ZoneLoad]
    windows: list[WindowLive]
    figures: DayFigures
    devices: list[DeviceTrouble]
    alerts: list[Alert]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def onset(
    spans: Sequence[tuple[datetime, datetime | None]], above: int, now: datetime
) -> datetime | None:
    """When the count of open ``spans`` (start, end or None: still open) last rose above
    ``above`` and has stayed so until ``now``; None if it is not above it now."""
    points: list[tuple[datetime, int]] = []
    for start, end in spans:
        if start > now or (end is not None and end <= start):
            continue
        points.append((start, 1))
        if end is not None and end <= now:
            points.append((end, -1))
    points.sort()  # at one instant, ends (-1) before starts: no false peak
    count, began = 0, None
    for at, step in points:
        before, count = count, count + step
        if before <= above < count:
            began = at
    return began if count > above else None


def _left(ticket: Ticket) -> datetime | None:
    """When a ticket left its queue (called, or over without a call); None: it waits still."""
    if ticket.state is TicketState.WAITING:
        return None
    return ticket.called_at or ticket.finished_at


class ManagerScreen:
    """The live view's projection (see the module); ``times``: the engine's running service
    times, read at each view."""

    refresh_seconds = REFRESH_SECONDS

    def __init__(
        self, config: HallConfig, times: Callable[[], ServiceTimes], *, forecasts: bool = True
    ) -> None:
        self.config = config
        self.times = times
        # A new ticket's forecast per category is most of a view's cost (forward runs of the
        # hall): the city view, which shows none, reads hundreds of halls without them.
        self.forecasts = forecasts
        self.policy = policy_named(config.hall.policy)
        self.hall = HallName(id=config.hall.id, name=config.hall.name, name_en=config.hall.name_en)

    def view(self, state: HallState, now: datetime) -> ManagerView:
        by_category: dict[str, list[Ticket]] = {}
        for ticket in state.tickets.values():
            by_category.setdefault(ticket.category, []).append(ticket)
        alerts: list[Alert] = []
        loads = {
            c.id: self._load(state, c.id, by_category.get(c.id, []), now, alerts)
            for c in self.config.categories
        }
        zones = [
            ZoneLoad(
                id=z.id,
                name=z.name,
                name_en=z.name_en,
                waiting=sum(loads[c.id].waiting for c in self.config.categories if c.zone == z.id),
                categories=[loads[c.id] for c in self.config.categories if c.zone == z.id],
            )
            for z in self.config.zones
        ]
        windows = [self._window(state, w.id, now, alerts) for w in self.config.windows]
        devices = self._devices(state, alerts)
        figures = self._figures(state, now, alerts)
        acked = state.acknowledged
        alerts = [
            msgspec.structs.replace(a, acknowledged=a.id in acked, by=acked.get(a.id))
            for a in alerts
        ]
        alerts.sort(key=lambda a: (a.acknowledged, SEVERITY[a.severity], a.since or now, a.id))
        return ManagerView(
            hall=self.hall,
            day=state.day,
            zones=zones,
            windows=windows,
            figures=figures,
            devices=devices,
            alerts=alerts,
        )

    def changes(
        self,
        old: ManagerView,
        new: ManagerView,
        state: HallState,
        records: Sequence[Recorded],
        after: int | None = None,
    ) -> dict[str, Any]:
        return changed_fields(old, new)

    def _load(
        self,
        state: HallState,
        category: str,
        tickets: list[Ticket],
        now: datetime,
        alerts: list[Alert],
    ) -> CategoryLoad:
        config = self.config
        defined = config.category(category)
        assert defined is not None
        queue = state.queues.get(category) or []
        oldest = state.tickets[queue[0]].issued_at if queue else None
        estimate = None
        if self.forecasts:
            forecast = forecast_new(state, category, "normal", now, self.times(), self.policy)
            estimate = None if forecast.minutes is None else round(forecast.minutes, 1)
        windows = topology(state).count(category)
        limit = timedelta(minutes=defined.target_wait_minutes * config.alerts.wait_factor)
        over_length = len(queue) > config.alerts.queue_length
        over_target = oldest is not None and now - oldest > limit
        if over_length:
            began = onset(
                [(t.issued_at, _left(t)) for t in tickets], config.alerts.queue_length, now
            )
            alerts.append(
                Alert(
                    id=f"queue:{category}:{_iso(began or now)}",
                    kind="queue",
                    severity="medium",
                    text=f"{defined.name}：{len(queue)} 人等候"
                    f"（上限 {config.alerts.queue_length}）",
                    text_en=f"{defined.name_en}: {len(queue)} waiting "
                    f"(limit {config.alerts.queue_length})",
                    since=began,
                    category=category,
                )
            )
        if queue and not windows:
            # Keyed by the one waiting longest: it stays until someone serves the category.
            alerts.append(
                Alert(
                    id=f"unserved:{category}:{queue[0]}",
                    kind="unserved",
                    severity="high",
                    text=f"{defined.name}：{len(queue)} 人等候，无窗口办理",
                    text_en=f"{defined.name_en}: {len(queue)} waiting, no open window serves it",
                    since=oldest,
                    category=category,
                )
            )
        if over_target and oldest is not None:
            spans = [(t.issued_at + limit, _left(t)) for t in tickets]
            began = onset(spans, 0, now)
            waited = int(_minutes(now - oldest))  # whole minutes, as the load table shows it
            alerts.append(
                Alert(
                    id=f"wait:{category}:{_iso(began or now)}",
                    kind="wait",
                    severity="high",
                    text=f"{defined.name}：最长已等 {waited} 分钟"
                    f"（目标 {defined.target_wait_minutes}）",
                    text_en=f"{defined.name_en}: longest wait {waited} min "
                    f"(target {defined.target_wait_minutes})",
                    since=began,
                    category=category,
                )
            )
        return CategoryLoad(
            id=category,
            prefix=defined.prefix,
            name=defined.name,
            name_en=defined.name_en,
            waiting=len(queue),
            oldest=oldest,
            target_minutes=defined.target_wait_minutes,
            estimate_minutes=estimate,
            windows=windows,
            over_length=over_length,
            over_target=over_target,
        )

    def _window(
        self, state: HallState, window: str, now: datetime, alerts: list[Alert]
    ) -> WindowLive:
        defined = self.config.window(window)
        assert defined is not None
        status = state.windows[window]
        member = self.config.staff_member(status.staff) if status.staff else None
        held = state.tickets.get(status.ticket) if status.ticket else None
        reason = (
            self.config.pause_reason(status.pause_reason)
            if status.state is WindowState.PAUSED and status.pause_reason
            else None
        )
        waiting = callable_count(state, window)
        if status.state is WindowState.OPEN and waiting and status.since is not None:
            self._idle(state, window, defined.name, defined.name_en, waiting, now, alerts)
        return WindowLive(
            id=window,
            name=defined.name,
            name_en=defined.name_en,
            zone=defined.zone,
            state=status.state.value,
            since=status.since,
            staff=status.staff,
            staff_name=member.name if member else None,
            number=held.number if held else None,
            pause_reason=status.pause_reason if status.state is WindowState.PAUSED else None,
            pause_name=reason.name if reason else None,
            pause_name_en=reason.name_en if reason else None,
            profile=list(status.categories),
            callable=waiting,
        )

    def _idle(
        self,
        state: HallState,
        window: str,
        name: str,
        name_en: str,
        waiting: int,
        now: datetime,
        alerts: list[Alert],
    ) -> None:
        """An open window (not calling, serving or paused) while people it may call wait: an
        alert once both have been so for ``[alerts] idle_seconds``."""
        status = state.windows[window]
        assert status.since is not None
        queues = (f"@{window}", *status.categories)
        heads = [state.tickets[q[0]].issued_at for k in queues if (q := state.queues.get(k))]
        began = max(status.since, min(heads)) if heads else status.since
        if now - began < timedelta(seconds=self.config.alerts.idle_seconds):
            return
        # As the page's age badge counts it: from ``began``, whole minutes gone.
        idle = int(_minutes(now - began))
        alerts.append(
            Alert(
                id=f"idle:{window}:{_iso(status.since)}",
                kind="idle",
                severity="high",
                text=f"{name}空闲，{waiting} 人可叫（已 {idle} 分钟）",
                text_en=f"{name_en} idle with {waiting} waiting it may call ({idle} min)",
                since=began,
                window=window,
            )
        )

    def _devices(self, state: HallState, alerts: list[Alert]) -> list[DeviceTrouble]:
        found = []
        for device_id, health in sorted(state.devices.items()):
            severity = DEVICE_TROUBLE.get(health.status)
            device = self.config.device(device_id)
            if severity is None or device is None:
                continue
            found.append(
                DeviceTrouble(
                    id=device_id,
                    kind=device.kind,
                    window=device.window,
                    status=health.status,
                    since=health.since,
                )
            )
            zh, en = DEVICE_NAMES[health.status]
            alerts.append(
                Alert(
                    id=f"device:{device_id}:{_iso(health.since)}",
                    kind="device",
                    severity=severity,
                    text=f"设备 {device_id}（{device.kind}）{zh}",
                    text_en=f"Device {device_id} ({device.kind}) {en}",
                    since=health.since,
                    window=device.window,
                )
            )
        return found

    def _figures(self, state: HallState, now: datetime, alerts: list[Alert]) -> DayFigures:
        config, day = self.config, state.day
        issued = served = no_shows = waiting = rated = satisfied = bad = within = 0
        waits: list[float] = []
        for ticket in state.tickets.values():
            if ticket.state is TicketState.WAITING:
                waiting += 1
            if ticket.day != day:
                continue
            issued += 1
            served += ticket.state is TicketState.FINISHED
            no_shows += ticket.state is TicketState.NO_SHOW
            if ticket.called_at is not None:
                waited = _minutes(ticket.called_at - ticket.issued_at)
                waits.append(waited)
                category = config.category(ticket.category)
                within += category is None or waited <= category.target_wait_minutes
            if ticket.rating is not None:
                rated += 1
                satisfied += ticket.rating >= 4
                bad += ticket.rating <= 2
        late = 0
        for case in state.cases.values():
            late_now = overdue(config, case, now)
            late += late_now
            if late_now:
                alerts.append(self._case_alert(case.id, case, "overdue", now))
            elif case.stage is Stage.VERIFY:
                alerts.append(self._case_alert(case.id, case, "case", now))
        breaches = excused = 0
        for breach in state.breaches.values():
            if business_day(config, breach.at) != day:
                continue
            breaches += 1
            excused += breach.excused
            if breach.excused:
                continue
            zh, en, _ = RULES.get(breach.rule, (breach.rule, breach.rule, ""))
            window = config.window(breach.window)
            member = config.staff_member(breach.staff) if breach.staff else None
            who = member.name if member else (breach.staff or "")
            alerts.append(
                Alert(
                    id=f"breach:{breach.id}",
                    kind="breach",
                    severity="medium",
                    text=f"{window.name if window else breach.window} {who}：{zh}",
                    text_en=f"{window.name_en if window else breach.window} {who}: {en}",
                    since=breach.at,
                    window=breach.window,
                )
            )
        return DayFigures(
            issued=issued,
            served=served,
            no_shows=no_shows,
            waiting=waiting,
            wait_mean_minutes=round(sum(waits) / len(waits), 1) if waits else None,
            within_target=round(within / len(waits), 3) if waits else None,
            rated=rated,
            satisfaction=round(satisfied / rated, 3) if rated else None,
            bad=bad,
            cases_open=len(state.cases),
            cases_overdue=late,
            breaches=breaches,
            breaches_excused=excused,
        )

    def _case_alert(self, ticket: str, case: Any, kind: str, now: datetime) -> Alert:
        window = self.config.window(case.window)
        where = window.name if window else case.window
        where_en = window.name_en if window else case.window
        if kind == "overdue":
            return Alert(
                id=f"overdue:{ticket}:{case.stage.value}",
                kind="overdue",
                severity="high",
                text=f"差评 {case.number}（{where}）整改逾期：待{STAGE_NAMES[case.stage][0]}",
                text_en=f"Bad rating {case.number} ({where_en}) overdue: "
                f"{STAGE_NAMES[case.stage][1]}",
                since=case.rated_at,
                window=case.window,
            )
        return Alert(
            id=f"case:{ticket}",
            kind="case",
            severity="medium",
            text=f"新差评 {case.number}（{where}，{case.level} 级）待核实",
            text_en=f"New bad rating {case.number} ({where_en}, level {case.level}) to verify",
            since=case.rated_at,
            window=case.window,
        )


STAGE_NAMES = {
    Stage.VERIFY: ("核实", "verify"),
    Stage.CONFIRM: ("复核", "confirm"),
    Stage.RECTIFY: ("整改", "rectify"),
    Stage.REVISIT: ("回访", "revisit"),
    Stage.CLOSE: ("办结", "close"),
}
