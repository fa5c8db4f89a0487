"""Prometheus metrics of a hall server, served at ``/metrics``.

Two kinds of series. Events counted as they happen, through the engine's observer hooks
(hall/observe.py): each command's latency by kind and outcome (a histogram, so its ``_count`` is
the number of commands), each append's latency and size. And gauges read from the halls' state at
scrape time by a collector (queue lengths and longest waits per category, windows by state, feed
connections): nothing is updated per command for them, and they cannot drift from the state.

Labels carry hall, category, window-state and command names only, never a person or a ticket.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any

from litestar.types import Scope
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hall.api.errors import TooManyAttempts, Unauthorized
from hall.bus import Bus
from hall.domain.errors import HallError
from hall.domain.state import TicketState, WindowState
from hall.engine import HallEngine
from hall.journal.base import JournalError
from hall.observe import AppendTimer, Observer

# Seconds: a command is a few ms when the hall is well; the top buckets show a stalled journal.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def outcome_of(future: asyncio.Future[Any]) -> str:
    """``ok``, a refusal's code (``quota_reached``...), ``unavailable`` or ``cancelled``."""
    if future.cancelled():
        return "cancelled"
    error = future.exception()
    if error is None:
        return "ok"
    if isinstance(error, HallError):
        return error.code
    return "unavailable" if isinstance(error, JournalError) else "error"


class _Timer(AppendTimer):
    __slots__ = ("histogram", "started")

    def __init__(self, histogram: Histogram) -> None:
        self.histogram, self.started = histogram, time.perf_counter()

    def done(self) -> None:
        self.histogram.observe(time.perf_counter() - self.started)


class Metrics(Observer):
    """The server's series, in a registry of its own (several apps in one test process)."""

    def __init__(self, engines: Mapping[str, HallEngine], bus: Bus) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.command_seconds = Histogram(
            "hall_command_seconds",
            "Commands from queued to durable (or refused), by kind and outcome",
            ["hall", "kind", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.append_seconds = Histogram(
            "hall_append_seconds",
            "Journal appends (one per batch of commands)",
            ["hall"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.append_events = Histogram(
            "hall_append_events",
            "Events per journal append",
            ["hall"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.append_commands = Histogram(
            "hall_append_commands",
            "Commands per journal append (group commit)",
            ["hall"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.login_failures = Counter(
            "hall_login_failures",
            "Refused staff logins: wrong_password (401) or locked (429)",
            ["hall", "reason"],
            registry=self.registry,
        )
        self.registry.register(_HallCollector(engines, bus))
        self._halls = engines
        # Labelled children by their labels: ``labels()`` costs more than the observation itself
        # (~4x, measured), and this runs for every command.
        self._commands: dict[tuple[str, str, str], Histogram] = {}
        self._appends: dict[str, tuple[Histogram, Histogram, Histogram]] = {}

    # ------------------------------------------------------------------ engine hooks

    def command(self, hall: str, command: object, future: asyncio.Future[Any]) -> None:
        kind, started = type(command).__name__, time.perf_counter()

        def finished(done: asyncio.Future[Any]) -> None:
            seconds = time.perf_counter() - started
            key = (hall, kind, outcome_of(done))
            child = self._commands.get(key)
            if child is None:
                child = self._commands[key] = self.command_seconds.labels(*key)
            child.observe(seconds)

        future.add_done_callback(finished)

    def append(self, hall: str, events: int, commands: int) -> AppendTimer:
        children = self._appends.get(hall)
        if children is None:
            children = self._appends[hall] = (
                self.append_seconds.labels(hall),
                self.append_events.labels(hall),
                self.append_commands.labels(hall),
            )
        seconds, sizes, batches = children
        sizes.observe(events)
        batches.observe(commands)
        return _Timer(seconds)

    # ------------------------------------------------------------------ HTTP

    def after_exception(self, exc: Exception, scope: Scope) -> None:
        """Litestar's after_exception hook: count refused logins (by hall, never by username)."""
        if not isinstance(exc, Unauthorized | TooManyAttempts):
            return
        parts = scope["path"].split("/")  # /api/halls/{hall}/.../login
        if parts[-1] == "login" and len(parts) > 3 and parts[3] in self._halls:
            reason = "locked" if isinstance(exc, TooManyAttempts) else "wrong_password"
            self.login_failures.labels(parts[3], reason).inc()


class _HallCollector(Collector):
    """Gauges computed from each hall's live state when Prometheus scrapes."""

    def __init__(self, engines: Mapping[str, HallEngine], bus: Bus) -> None:
        self.engines, self.bus = engines, bus

    def describe(self) -> list[Metric]:
        return []  # the series depend on the halls; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "hall_waiting_tickets", "Tickets waiting, per category", labels=["hall", "category"]
        )
        longest = GaugeMetricFamily(
            "hall_longest_wait_seconds",
            "How long the longest-waiting ticket of a category has waited",
            labels=["hall", "category"],
        )
        windows = GaugeMetricFamily(
            "hall_windows", "Windows by state (closed, open, ...)", labels=["hall", "state"]
        )
        feeds = GaugeMetricFamily(
            "hall_feed_connections", "Live event feeds (screens, devices)", labels=["hall"]
        )
        writing = GaugeMetricFamily(
            "hall_writer",
            "1 where this process writes the hall (holds its lease), 0 where it follows",
            labels=["hall"],
        )
        version = GaugeMetricFamily(
            "hall_version",
            "The journal version this process's copy of the hall is at",
            labels=["hall"],
        )
        for hall, engine in list(self.engines.items()):
            # Read between two awaits of the writer: a consistent state, possibly holding a
            # batch whose append is in flight (a gauge may lead the journal by a few ms).
            state, now = engine.state, engine.clock()
            counts: Tally[str] = Tally()
            oldest: dict[str, float] = {}
            for queue in state.queues.values():
                for ticket_id in queue:
                    ticket = state.tickets[ticket_id]
                    if ticket.state is not TicketState.WAITING:
                        continue
                    counts[ticket.category] += 1
                    waited = (now - ticket.issued_at).total_seconds()
                    oldest[ticket.category] = max(oldest.get(ticket.category, 0.0), waited)
            for category in engine.config.categories:
                waiting.add_metric([hall, category.id], counts[category.id])
                longest.add_metric([hall, category.id], max(0.0, oldest.get(category.id, 0.0)))
            by_state = Tally(window.state for window in state.windows.values())
            for window_state in WindowState:
                windows.add_metric([hall, window_state.value], by_state[window_state])
            feeds.add_metric([hall], self.bus.subscribers(hall))
            writing.add_metric([hall], 1 if engine.leading else 0)
            version.add_metric([hall], state.version)
        yield from (waiting, longest, windows, feeds, writing, version)
