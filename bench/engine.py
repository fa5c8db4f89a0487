"""Durable commands per second: through HallEngine and through HTTP, on SQLite and on Redis.

    .venv/bin/python bench/engine.py            # full run, about 2-3 minutes
    .venv/bin/python bench/engine.py --quick    # shorter runs, for a smoke test
    .venv/bin/python bench/engine.py --backends sqlite --layers http --profile
    .venv/bin/python bench/engine.py --wait-quiet 60  # on a shared machine: wait for idle

What runs (each on fresh data in a temporary directory, removed afterwards):

* backends: SQLite (WAL, ``synchronous=FULL``: the commit returns after the WAL is fsynced) and a
  private ``redis-server`` with ``appendonly yes, appendfsync always``.
* layers: ``engine`` (``HallEngine.execute`` in this process; the load generator shares its event
  loop) and ``http`` (``hall`` app on uvicorn, one server process, as ``hall serve`` runs it; the
  load generator is a separate process speaking raw HTTP/1.1 over keep-alive connections).
* the mix: a busy hall at peak. Kiosks issue tickets (5 % green lane) while every window runs
  call-next -> start -> finish; one issue for every three window commands, so the waiting line
  stays at its pre-filled length (a realistic peak queue, not an empty hall, not an ever-growing
  one). Windows are comprehensive (every category, in rotated profile orders), so any window can
  take any ticket. Logins and the pre-fill are set-up, not measured.
* modes:
  - ``group commit, open loop``: a fixed offered rate, each kiosk and window its own Poisson
    stream; a stream whose previous command is still in flight sends the next as soon as it is
    acknowledged, and latency is measured from the *scheduled* send time, so a stall shows in the
    latency instead of silently lowering the load (no coordinated omission). This is the row the
    target is checked against.
  - ``group commit, closed loop``: every window and kiosk sends its next command as soon as the
    previous one is acknowledged, no think time: the saturation throughput, and its latency.
  - ``no batching``: ``max_batch=1`` and one client sending one command at a time: the cost of a
    single durable command (one fsync each) when there is nothing to batch.

Latency is from submit (or scheduled submit) to acknowledgement, i.e. after the events are durable.
``cmds/append`` is how many events one journal append (one fsync) carried on average; ``append
ms`` is how long the append calls took. CPU is measured per process from /proc (server or engine
process, HTTP load generator, redis-server) and for the whole machine, so that the work of other
processes on a shared machine shows in the ``other`` column instead of silently in the figures.

The HTTP server process is started by this file (``_server`` entry below) so that it can count
journal appends and, for the no-batching mode, build engines with ``max_batch=1``; otherwise it is
``hall serve``: same ``create_app``, same uvicorn settings, access log off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import hashlib
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

ROOT = Path(__file__).resolve().parent.parent
HALL = "bench-hall"
PASSWORD = "bench-password"
KIOSK_TOKEN = "bench-kiosk-token"

TARGET_RATE = 1000.0  # durable commands/s (the issue's target, SQLite)
TARGET_P99_MS = 20.0
OFFERED_RATE = 1100.0  # open-loop offered load: the target plus 10 % so a pass is not marginal
WINDOWS = 32
KIOSKS = 16
BACKLOG = 200  # tickets waiting when the measurement starts, held there by the 1:3 mix
GREEN_SHARE = 0.05
IDLE_RECONNECT = 3.0  # uvicorn drops keep-alive connections idle for 5 s


# ------------------------------------------------------------------------------- hall config


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def staff_name(window: int) -> str:
    return f"staff{window + 1:02d}"


def window_id(window: int) -> str:
    return str(window + 1)


def bench_config(windows: int) -> tuple[str, list[str]]:
    """A hall file: the demo hall's zones, categories and priorities; ``windows`` comprehensive
    windows (every category, profile orders rotated) with one staff member each; one kiosk.

    Ticket numbers get 5 digits so that no category runs out of numbers during a run. The staff
    hash uses cheap argon2 parameters: logins are set-up here, not part of the measured mix.
    """
    from argon2 import PasswordHasher

    password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    demo = tomllib.loads((ROOT / "config" / "default.toml").read_text(encoding="utf-8"))
    categories = [c["id"] for c in demo["categories"]]
    lines = [
        "[hall]",
        f"id = {_toml(HALL)}",
        'name = "基准测试大厅"',
        'name_en = "Benchmark hall"',
        'timezone = "Asia/Shanghai"',
        "number_digits = 5",
        'policy = "profile-order"',
        "",
    ]
    for table in ("zones", "categories", "priorities"):
        for item in demo.get(table, []):
            lines += [f"[[{table}]]", *(f"{k} = {_toml(v)}" for k, v in item.items()), ""]
    for i in range(windows):
        shift = i % len(categories)
        profile = categories[shift:] + categories[:shift]
        lines += [
            "[[windows]]",
            f"id = {_toml(window_id(i))}",
            f'name = "{i + 1}号窗口"',
            f'name_en = "Window {i + 1}"',
            'zone = "general"',
            f"categories = {_toml(profile)}",
            "",
            "[[staff]]",
            f"username = {_toml(staff_name(i))}",
            f'name = "Staff {i + 1}"',
            f"password_hash = {_toml(password_hash)}",
            "",
        ]
    digest = hashlib.sha256(KIOSK_TOKEN.encode()).hexdigest()
    lines += ["[[devices]]", 'id = "kiosk-1"', 'kind = "kiosk"', f'token_sha256 = "{digest}"', ""]
    lines += ["[hours]", "issue_outside_hours = true", ""]
    lines += ["[issuing]", "device_seconds = 0", ""]  # 16 simulated kiosks share one token
    return "\n".join(lines), categories


# ------------------------------------------------------------------------------- measurement


def system_busy() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat; 0 if unavailable)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.25) -> str:
    """Wait (at most ``max_wait`` s) for a second in which the machine used < ``threshold`` of a
    core: on a shared machine this keeps other people's jobs out of the figures where possible."""
    deadline = time.monotonic() + max_wait
    while True:
        before, started = system_busy(), time.monotonic()
        time.sleep(1.0)
        busy = (system_busy() - before) / (time.monotonic() - started)
        if busy < threshold:
            return f"quiet ({busy:.0%} of a core busy)"
        if time.monotonic() >= deadline:
            return f"still busy after {max_wait:g} s ({busy:.0%} of a core), running anyway"


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid``; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Snapshot:
    """Counters read at the start and at the end of a measured window."""

    at: float = 0.0
    appends: int = 0
    events: int = 0
    server_cpu: float = 0.0  # the engine's process (this one, or the HTTP server)
    client_cpu: float = 0.0  # the HTTP load generator (0 for the engine layer: same process)
    redis_cpu: float = 0.0
    system_cpu: float = 0.0  # every process on the machine, ours included


class Probe(Protocol):
    async def snapshot(self) -> Snapshot: ...

    async def append_times(self, start: int, end: int) -> list[float]:
        """Durations (s) of the journal appends numbered ``start`` to ``end - 1``."""
        ...


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    first_error: str | None = None
    empty_calls: int = 0

    def record(self, kind: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.kinds[kind] += 1
        if kind == "call (none waiting)":
            self.empty_calls += 1

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(
    stats: Stats, before: Snapshot, after: Snapshot, append_times: list[float]
) -> dict[str, Any]:
    ordered = sorted(stats.latencies)
    appends_ordered = sorted(append_times)
    elapsed = max(after.at - before.at, 1e-9)
    appends = after.appends - before.appends
    ours = sum(
        getattr(after, name) - getattr(before, name)
        for name in ("server_cpu", "client_cpu", "redis_cpu")
    )
    return {
        "commands": len(ordered),
        "seconds": elapsed,
        "rate": len(ordered) / elapsed,
        "p50": percentile(ordered, 0.50) * 1000,
        "p99": percentile(ordered, 0.99) * 1000,
        "max": (ordered[-1] * 1000) if ordered else math.nan,
        "per_append": (after.events - before.events) / appends if appends else math.nan,
        "server_cpu": 100 * (after.server_cpu - before.server_cpu) / elapsed,
        "client_cpu": 100 * (after.client_cpu - before.client_cpu) / elapsed,
        "redis_cpu": 100 * (after.redis_cpu - before.redis_cpu) / elapsed,
        "others_cpu": max(0.0, 100 * (after.system_cpu - before.system_cpu - ours) / elapsed),
        "append_p50": percentile(appends_ordered, 0.50) * 1000,
        "append_p99": percentile(appends_ordered, 0.99) * 1000,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "empty_calls": stats.empty_calls,
        "kinds": dict(stats.kinds),
    }


# ------------------------------------------------------------------------------- the workload


class Driver(Protocol):
    """One way of sending the hall's commands (in process, or over HTTP)."""

    async def login(self, window: int) -> None: ...
    async def issue(self, kiosk: int, category: str, priority: str) -> None: ...
    async def call_next(self, window: int) -> bool: ...  # False: nothing was waiting
    async def start(self, window: int) -> None: ...
    async def finish(self, window: int) -> None: ...


class Workload:
    """Kiosks and windows of a busy hall, driven in one of three modes.

    Each window remembers where it is in its call -> start -> finish cycle across modes, so one
    engine (or server) can run several modes one after the other.
    """

    def __init__(
        self,
        driver: Driver,
        probe: Probe,
        categories: list[str],
        *,
        windows: int,
        kiosks: int,
        backlog: int,
        seed: int = 1,
    ) -> None:
        self.driver, self.probe, self.categories = driver, probe, categories
        self.windows, self.kiosks, self.backlog = windows, kiosks, backlog
        self.rng = random.Random(seed)
        self.phase = [0] * windows  # 0: idle (next: call), 1: calling (start), 2: serving (finish)
        self.waiting = 0  # tickets waiting, as far as acknowledgements tell
        self._taken = asyncio.Event()

    async def setup(self) -> None:
        await asyncio.gather(*(self.driver.login(w) for w in range(self.windows)))
        for first in range(0, self.backlog, self.kiosks):  # one request per kiosk at a time
            count = min(self.kiosks, self.backlog - first)
            await asyncio.gather(*(self.issue(k) for k in range(count)))

    async def issue(self, kiosk: int) -> str:
        category = self.rng.choice(self.categories)
        priority = "green" if self.rng.random() < GREEN_SHARE else "normal"
        await self.driver.issue(kiosk, category, priority)
        self.waiting += 1
        return "issue"

    async def window_step(self, window: int) -> str:
        phase = self.phase[window]
        if phase == 0:
            if not await self.driver.call_next(window):
                return "call (none waiting)"
            self.phase[window] = 1
            self.waiting -= 1
            self._taken.set()
            return "call"
        if phase == 1:
            await self.driver.start(window)
            self.phase[window] = 2
            return "start"
        await self.driver.finish(window)
        self.phase[window] = 0
        return "finish"

    async def _timed(
        self, step: Callable[[int], Awaitable[str]], who: int, since: float, stats: Stats | None
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            kind = await step(who)
        except Exception as exc:  # counted and shown; the stream carries on
            if stats is not None:
                stats.error(exc)
            return
        if stats is not None:
            stats.record(kind, loop.time() - since)

    async def _summary(self, stats: Stats, start: Snapshot, after: Snapshot) -> dict[str, Any]:
        return summary(
            stats, start, after, await self.probe.append_times(start.appends, after.appends)
        )

    async def _snapshot_at(self, moment: float) -> Snapshot:
        await asyncio.sleep(max(0.0, moment - asyncio.get_running_loop().time()))
        return await self.probe.snapshot()

    async def open_loop(self, rate: float, seconds: float, warmup: float) -> dict[str, Any]:
        """Poisson arrivals at ``rate`` (a quarter issues, the rest window commands), latency
        from each command's scheduled time. Counted: commands scheduled in the measured window."""
        loop = asyncio.get_running_loop()
        begin = loop.time() + 0.05
        measure_from, end = begin + warmup, begin + warmup + seconds
        give_up = end + max(2.0, seconds)  # an overloaded system stops being fed here
        stats = Stats()
        last_ack = [end]

        async def stream(step: Callable[[int], Awaitable[str]], who: int, rate: float) -> None:
            rng = random.Random(self.rng.random())
            due = begin + rng.expovariate(rate)
            while due < end and loop.time() < give_up:
                await asyncio.sleep(max(0.0, due - loop.time()))
                measured = due >= measure_from
                await self._timed(step, who, due, stats if measured else None)
                if measured:
                    last_ack[0] = max(last_ack[0], loop.time())
                due += rng.expovariate(rate)

        before = asyncio.create_task(self._snapshot_at(measure_from))
        streams = [stream(self.issue, k, rate / 4 / self.kiosks) for k in range(self.kiosks)]
        streams += [
            stream(self.window_step, w, rate * 3 / 4 / self.windows) for w in range(self.windows)
        ]
        await asyncio.gather(*streams)
        start = await before
        after = await self.probe.snapshot()
        start.at, after.at = measure_from, last_ack[0]
        return await self._summary(stats, start, after)

    async def closed_loop(self, seconds: float, warmup: float) -> dict[str, Any]:
        """Every window and kiosk sends its next command when the previous is acknowledged.
        Kiosks pause while the line is at its pre-filled length (else it would grow forever)."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        measure_from, end = begin + warmup, begin + warmup + seconds
        stats = Stats()

        async def window(w: int) -> None:
            while (now := loop.time()) < end:
                await self._timed(self.window_step, w, now, stats if now >= measure_from else None)

        async def kiosk(k: int) -> None:
            while loop.time() < end:
                while self.waiting >= self.backlog and loop.time() < end:
                    self._taken.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._taken.wait(), timeout=0.1)
                now = loop.time()
                if now >= end:
                    break
                await self._timed(self.issue, k, now, stats if now >= measure_from else None)

        before = asyncio.create_task(self._snapshot_at(measure_from))
        after_task = asyncio.create_task(self._snapshot_at(end))
        await asyncio.gather(
            *(window(w) for w in range(self.windows)), *map(kiosk, range(self.kiosks))
        )
        start, after = await before, await after_task
        start.at, after.at = measure_from, end
        # Counted: the commands sent inside the measured window (in a steady state, as many as
        # were acknowledged in it), with their latencies even if the reply came after the end.
        return await self._summary(stats, start, after)

    async def sequential(self, seconds: float, warmup: float) -> dict[str, Any]:
        """One client, one command at a time: issue, then window 1's call, start, finish."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        measure_from, end = begin + warmup, begin + warmup + seconds
        stats = Stats()
        before = asyncio.create_task(self._snapshot_at(measure_from))
        steps = 0
        while (now := loop.time()) < end:
            step = self.issue if steps % 4 == 0 else self.window_step
            await self._timed(step, 0, now, stats if now >= measure_from else None)
            steps += 1
        after = await self.probe.snapshot()
        start = await before
        start.at, after.at = measure_from, end
        return await self._summary(stats, start, after)

    async def run(self, mode: dict[str, Any]) -> dict[str, Any]:
        if mode["kind"] == "open":
            return await self.open_loop(mode["rate"], mode["seconds"], mode["warmup"])
        if mode["kind"] == "closed":
            return await self.closed_loop(mode["seconds"], mode["warmup"])
        return await self.sequential(mode["seconds"], mode["warmup"])


# ------------------------------------------------------------------------------- engine layer


class CountingJournal:
    """A journal that counts appends and appended events, delegating everything to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.appends = 0
        self.events = 0
        self.durations: list[float] = []  # of every append, in seconds

    async def append(self, hall: str, events: Any, expected_version: int) -> int:
        started = time.perf_counter()
        version: int = await self.inner.append(hall, events, expected_version)
        self.durations.append(time.perf_counter() - started)
        self.appends += 1
        self.events += len(events)
        return version

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class EngineDriver:
    def __init__(self, engine: Any) -> None:
        from hall.domain import commands

        self.engine, self.cmd = engine, commands

    async def login(self, window: int) -> None:
        await self.engine.execute(self.cmd.Login(window=window_id(window), by=staff_name(window)))

    async def issue(self, kiosk: int, category: str, priority: str) -> None:
        await self.engine.execute(self.cmd.IssueTicket(category=category, priority=priority))

    async def call_next(self, window: int) -> bool:
        command = self.cmd.CallNext(window=window_id(window), by=staff_name(window))
        return bool((await self.engine.execute(command)).records)

    async def start(self, window: int) -> None:
        await self.engine.execute(self.cmd.Start(window=window_id(window), by=staff_name(window)))

    async def finish(self, window: int) -> None:
        await self.engine.execute(self.cmd.Finish(window=window_id(window), by=staff_name(window)))


class EngineProbe:
    def __init__(self, journal: CountingJournal, redis_pid: int | None) -> None:
        self.journal, self.redis_pid = journal, redis_pid

    async def snapshot(self) -> Snapshot:
        return Snapshot(
            at=asyncio.get_running_loop().time(),
            appends=self.journal.appends,
            events=self.journal.events,
            server_cpu=time.process_time(),
            redis_cpu=proc_cpu(self.redis_pid),
            system_cpu=system_busy(),
        )

    async def append_times(self, start: int, end: int) -> list[float]:
        return self.journal.durations[start:end]


async def engine_phase(
    config_text: str,
    categories: list[str],
    journal_target: str,
    *,
    max_batch: int,
    windows: int,
    modes: list[dict[str, Any]],
    redis_pid: int | None,
    profile: cProfile.Profile | None,
) -> list[dict[str, Any]]:
    from hall.bus import Bus
    from hall.config import loads
    from hall.engine import HallEngine

    if journal_target.startswith("redis://"):
        from hall.journal.redis import RedisJournal

        inner: Any = RedisJournal(journal_target, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    else:
        from hall.journal.sqlite import SqliteJournal

        inner = SqliteJournal(Path(journal_target))
    journal = CountingJournal(inner)
    engine = HallEngine(loads(config_text), journal, Bus(), max_batch=max_batch)  # type: ignore[arg-type]
    await engine.start()
    try:
        workload = Workload(
            EngineDriver(engine),
            EngineProbe(journal, redis_pid),
            categories,
            windows=windows,
            kiosks=KIOSKS,
            backlog=BACKLOG,
        )
        await workload.setup()
        results = []
        for mode in modes:
            if profile is not None:
                profile.enable()
            results.append(await workload.run(mode))
            if profile is not None:
                profile.disable()
        return results
    finally:
        await engine.stop()
        await inner.close()


# ------------------------------------------------------------------------------- HTTP layer


class HttpError(Exception):
    pass


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: one request at a time, Content-Length bodies only."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def _connect(self) -> None:
        self.close()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, body: bytes = b"", token: str | None = None
    ) -> tuple[int, bytes]:
        if self._writer is None or time.monotonic() - self._used > IDLE_RECONNECT:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + body)
        raw = await self._reader.readuntil(b"\r\n\r\n")
        status, length, close = int(raw[9:12]), 0, False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise HttpError("chunked responses are not supported by this client")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self._reader.readexactly(length) if length else b""
        self._used = time.monotonic()
        if close:
            self.close()
        return status, data


class _Called(msgspec.Struct):
    ticket: dict[str, Any] | None = None


class _Token(msgspec.Struct):
    token: str


class HttpDriver:
    def __init__(self, host: str, port: int, windows: int, kiosks: int) -> None:
        self.base = f"/api/halls/{HALL}"
        self.window_conns = [HttpConnection(host, port) for _ in range(windows)]
        self.kiosk_conns = [HttpConnection(host, port) for _ in range(kiosks)]
        self.tokens = [""] * windows

    async def _post(
        self, conn: HttpConnection, path: str, body: bytes, token: str, ok: int = 200
    ) -> bytes:
        status, data = await conn.request("POST", path, body, token)
        if status != ok:
            raise HttpError(f"POST {path}: {status} {data[:200]!r}")
        return data

    def _window(self, window: int, action: str) -> str:
        return f"{self.base}/windows/{window_id(window)}/{action}"

    async def login(self, window: int) -> None:
        body = json.dumps({"username": staff_name(window), "password": PASSWORD}).encode()
        data = await self._post(self.window_conns[window], self._window(window, "login"), body, "")
        self.tokens[window] = msgspec.json.decode(data, type=_Token).token

    async def issue(self, kiosk: int, category: str, priority: str) -> None:
        body = json.dumps({"category": category, "priority": priority}).encode()
        await self._post(self.kiosk_conns[kiosk], f"{self.base}/tickets", body, KIOSK_TOKEN, 201)

    async def call_next(self, window: int) -> bool:
        path, token = self._window(window, "call-next"), self.tokens[window]
        data = await self._post(self.window_conns[window], path, b"", token)
        return msgspec.json.decode(data, type=_Called).ticket is not None

    async def start(self, window: int) -> None:
        path = self._window(window, "start")
        await self._post(self.window_conns[window], path, b"", self.tokens[window])

    async def finish(self, window: int) -> None:
        path = self._window(window, "finish")
        await self._post(self.window_conns[window], path, b"{}", self.tokens[window])


class _ServerStats(msgspec.Struct):
    appends: int
    events: int
    cpu: float


class HttpProbe:
    def __init__(self, host: str, port: int, redis_pid: int | None) -> None:
        self.conn = HttpConnection(host, port)
        self.redis_pid = redis_pid

    async def snapshot(self) -> Snapshot:
        at = asyncio.get_running_loop().time()
        client_cpu = time.process_time()
        status, data = await self.conn.request("GET", "/_bench/stats")
        if status != 200:
            raise HttpError(f"stats: {status} {data[:200]!r}")
        found = msgspec.json.decode(data, type=_ServerStats)
        return Snapshot(
            at=at,
            appends=found.appends,
            events=found.events,
            server_cpu=found.cpu,
            client_cpu=client_cpu,
            redis_cpu=proc_cpu(self.redis_pid),
            system_cpu=system_busy(),
        )

    async def append_times(self, start: int, end: int) -> list[float]:
        status, data = await self.conn.request("GET", f"/_bench/appends/{start}/{end}")
        if status != 200:
            raise HttpError(f"appends: {status} {data[:200]!r}")
        return msgspec.json.decode(data, type=list[float])


async def client_main(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The HTTP load generator (its own process): set up, run the modes, return summaries."""
    host, port = "127.0.0.1", spec["port"]
    driver = HttpDriver(host, port, spec["windows"], KIOSKS)
    workload = Workload(
        driver,
        HttpProbe(host, port, spec["redis_pid"]),
        spec["categories"],
        windows=spec["windows"],
        kiosks=KIOSKS,
        backlog=BACKLOG,
    )
    await workload.setup()
    return [await workload.run(mode) for mode in spec["modes"]]


def server_main(spec: dict[str, Any]) -> None:
    """The HTTP server process: ``create_app`` and uvicorn as ``hall serve`` runs them, plus a
    counting journal, ``max_batch`` from the spec, and ``GET /_bench/stats``."""
    import uvicorn
    from litestar import get

    from hall.api import service as service_module
    from hall.api.app import create_app
    from hall.engine import HallEngine
    from hall.settings import Settings

    journals: list[CountingJournal] = []
    open_journal = service_module.open_journal

    def counting_open(url: str) -> Any:
        journal = CountingJournal(open_journal(url))
        journals.append(journal)
        return journal

    service_module.open_journal = counting_open  # type: ignore[assignment]
    service_module.HallEngine = functools.partial(  # type: ignore[misc]
        HallEngine, max_batch=spec["max_batch"]
    )

    @get("/_bench/stats", sync_to_thread=False)
    def stats() -> dict[str, float]:
        return {
            "appends": sum(j.appends for j in journals),
            "events": sum(j.events for j in journals),
            "cpu": time.process_time(),
        }

    @get("/_bench/appends/{start:int}/{end:int}", sync_to_thread=False)
    def appends(start: int, end: int) -> list[float]:
        return [d for j in journals for d in j.durations][start:end]

    settings = Settings(
        configs=(Path(spec["config"]),),
        data_dir=Path(spec["data"]),
        redis_url=spec["redis"],
        port=spec["port"],
    )
    app = create_app(settings)
    app.register(stats)
    app.register(appends)
    profile = cProfile.Profile() if spec["profile"] else None
    if profile is not None:
        # uvicorn re-raises SIGTERM once it has shut down; a no-op handler lets run() return
        # (instead of the default action killing us) so that the profile can be written.
        signal.signal(signal.SIGTERM, lambda *_: None)
        profile.enable()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=spec["port"],
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    if profile is not None:
        profile.disable()
        profile.dump_stats(spec["profile"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"process on port {port} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_phase(
    workdir: Path,
    config_path: Path,
    categories: list[str],
    *,
    redis_url: str | None,
    redis_pid: int | None,
    max_batch: int,
    windows: int,
    modes: list[dict[str, Any]],
    profile: Path | None,
) -> list[dict[str, Any]]:
    port = free_port()
    data = workdir / f"data-{port}"
    log = workdir / f"server-{port}.log"
    server_spec = {
        "config": str(config_path),
        "data": str(data),
        "redis": redis_url,
        "port": port,
        "max_batch": max_batch,
        "profile": str(profile) if profile else None,
    }
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, __file__, "_server", json.dumps(server_spec)],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            env=env,
        )
    try:
        wait_for_port(port, server, log, timeout=30)
        client_spec = {
            "port": port,
            "windows": windows,
            "categories": categories,
            "modes": modes,
            "redis_pid": redis_pid,
        }
        budget = 60 + sum(m["seconds"] * 3 + m["warmup"] for m in modes)
        done = subprocess.run(
            [sys.executable, __file__, "_client", json.dumps(client_spec)],
            cwd=ROOT,
            capture_output=True,
            env=env,
            timeout=budget,
        )
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{done.stderr.decode()[-3000:]}")
        results: list[dict[str, Any]] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return results
    finally:
        stop_process(server)
        if server.returncode not in (0, -signal.SIGTERM):
            print(f"  (server exited with {server.returncode}; log {log})", file=sys.stderr)


# ------------------------------------------------------------------------------- Redis


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[tuple[str, int]]:
    """A redis-server of our own (AOF, ``appendfsync always``, no RDB), like tests/support."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not installed: apt-get install redis-server")
    directory = workdir / "redis"
    directory.mkdir()
    port = free_port()
    log = directory / "redis.log"
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
    with open(log, "ab") as out:
        process = subprocess.Popen([binary, *args], stdout=out, stderr=out)
    try:
        wait_for_port(port, process, log, timeout=10)
        time.sleep(0.2)  # let it finish loading before the first command
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        stop_process(process)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


# ------------------------------------------------------------------------------- the run


@dataclass
class Row:
    backend: str
    layer: str
    mode: str
    load: str
    result: dict[str, Any]


def modes_for(batching: bool, seconds: float, warmup: float, rate: float) -> list[dict[str, Any]]:
    if not batching:
        return [{"kind": "sequential", "seconds": seconds, "warmup": warmup}]
    return [
        {"kind": "open", "rate": rate, "seconds": seconds, "warmup": warmup},
        {"kind": "closed", "seconds": seconds, "warmup": warmup},
    ]


def describe(mode: dict[str, Any], windows: int) -> tuple[str, str]:
    """(mode, load) columns of a row."""
    if mode["kind"] == "open":
        return "group commit", f"open loop {mode['rate']:.0f}/s, {windows}+{KIOSKS} streams"
    if mode["kind"] == "closed":
        return "group commit", f"closed loop, {windows}+{KIOSKS} clients"
    return "no batching", "sequential, 1 client, max_batch=1"


def machine_context(workdir: Path) -> list[str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    redis_version = "absent"
    if binary := shutil.which("redis-server"):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        redis_version = next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())
    probe = workdir / "fsync-probe"
    timings = []
    with open(probe, "wb") as handle:
        for _ in range(100):
            handle.write(b"x" * 256)
            handle.flush()
            started = time.perf_counter()
            os.fsync(handle.fileno())
            timings.append(time.perf_counter() - started)
    probe.unlink()
    timings.sort()
    servers = "uvicorn " + (
        "with uvloop/httptools"
        if _has("uvloop") and _has("httptools")
        else "on asyncio + h11 (no uvloop/httptools installed)"
    )
    return [
        f"CPU: {os.cpu_count()} x {model}; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"redis-server {redis_version}, {servers}",
        f"fsync of a small write on the data disk: p50 {percentile(timings, 0.5) * 1e3:.2f} ms, "
        f"p99 {percentile(timings, 0.99) * 1e3:.2f} ms  (the floor of one durable append)",
        f"load average at start: {os.getloadavg()[0]:.2f}",
    ]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'backend':<16} {'layer':<6} {'mode':<12} {'commands':>8} {'cmds/s':>6} "
        f"{'p50 ms':>6} {'p99 ms':>6} {'max ms':>6} {'cmds/':>6} {'append ms':>10} "
        f"{'CPU % of a core':>18} {'err':>3}  load"
    )
    second = (
        f"{'':<16} {'':<6} {'':<12} {'':>8} {'':>6} {'':>6} {'':>6} {'':>6} {'append':>6} "
        f"{'p50/p99':>10} {'srv/cli/redis/other':>18} {'':>3}"
    )
    print(header)
    print(second)
    print("-" * len(header))
    for row in rows:
        r = row.result
        cpu = "/".join(
            [
                f"{r['server_cpu']:.0f}",
                f"{r['client_cpu']:.0f}" if row.layer == "http" else "-",
                f"{r['redis_cpu']:.0f}" if row.backend.startswith("redis") else "-",
                f"{r['others_cpu']:.0f}",
            ]
        )
        appends = f"{fmt(r['append_p50'], 1)}/{fmt(r['append_p99'], 1)}"
        print(
            f"{row.backend:<16} {row.layer:<6} {row.mode:<12} {r['commands']:>8} "
            f"{r['rate']:>6.0f} {fmt(r['p50'], 2):>6} {fmt(r['p99'], 2):>6} "
            f"{fmt(r['max'], 1):>6} {fmt(r['per_append'], 1):>6} {appends:>10} {cpu:>18} "
            f"{r['errors']:>3}  {row.load}"
        )


def verdicts(rows: list[Row]) -> list[str]:
    lines = []
    for layer in ("engine", "http"):
        row = next(
            (r for r in rows if r.backend == "sqlite" and r.layer == layer and "open" in r.load),
            None,
        )
        if row is None:
            continue
        r = row.result
        ok = r["rate"] >= TARGET_RATE and r["p99"] <= TARGET_P99_MS and r["errors"] == 0
        lines.append(
            f"{'PASS' if ok else 'FAIL'}  SQLite target, {layer:<6}: {r['rate']:.0f} durable "
            f"cmds/s (>= {TARGET_RATE:.0f}), p99 {r['p99']:.2f} ms (<= {TARGET_P99_MS:.0f} ms), "
            f"{r['errors']} errors  [{row.load}]"
        )
    return lines


def print_profile(profile: cProfile.Profile | str, title: str, limit: int = 25) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)  # type: ignore[arg-type]
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    print(f"\n=== cProfile: {title} (by own time) ===")
    print("\n".join(out.getvalue().splitlines()[: limit + 12]))


@dataclass
class Plan:
    seconds: float
    warmup: float
    rate: float
    windows: int
    workdir: Path
    config_text: str
    config_path: Path
    categories: list[str]
    profile: bool
    quiet: float


def run_phase(
    plan: Plan,
    backend: str,
    layer: str,
    batching: bool,
    redis: tuple[str, int] | None,
    engine_profile: cProfile.Profile | None,
) -> list[Row]:
    """One engine (or server) with fresh data: the group-commit modes, or the no-batching one."""
    name = "sqlite" if backend == "sqlite" else "redis-AOF-always"
    label = "group commit" if batching else "no batching"
    print(f"  running {name} / {layer} / {label} ...", end="", flush=True)
    print(f" machine {wait_quiet(plan.quiet)}" if plan.quiet else "", flush=True)
    modes = modes_for(batching, plan.seconds, plan.warmup, plan.rate)
    windows = plan.windows if batching else 1
    max_batch = 512 if batching else 1
    redis_url, redis_pid = redis if backend == "redis" and redis else (None, None)
    if redis_url:
        flush_redis(redis_url)
    if layer == "engine":
        target = redis_url or str(plan.workdir / f"engine-{uuid.uuid4().hex[:8]}.sqlite3")
        results = asyncio.run(
            engine_phase(
                plan.config_text,
                plan.categories,
                target,
                max_batch=max_batch,
                windows=windows,
                modes=modes,
                redis_pid=redis_pid,
                profile=engine_profile if backend == "sqlite" else None,
            )
        )
    else:
        profiled = plan.profile and backend == "sqlite" and batching
        results = http_phase(
            plan.workdir,
            plan.config_path,
            plan.categories,
            redis_url=redis_url,
            redis_pid=redis_pid,
            max_batch=max_batch,
            windows=windows,
            modes=modes,
            profile=plan.workdir / "server.prof" if profiled else None,
        )
    return [
        Row(name, layer, *describe(mode, windows), result)
        for mode, result in zip(modes, results, strict=True)
    ]


NOTES = """\
How to read this:
  open loop   = fixed offered rate, Poisson arrivals per kiosk/window stream; latency from the
                *scheduled* send time (a stall shows as latency, not as fewer requests).
  closed loop = each client sends its next command when the previous one is acknowledged (no
                think time): saturation throughput; latency then includes queueing.
  no batching = max_batch=1 and one sequential client: one durable append (fsync) per command,
                p50 is the per-command cost without batching.
  latency     = submit -> acknowledgement, after the events are durable; open-loop latency
                includes up to ~1 ms of client timer slack.
  cmds/append = events per journal append, i.e. per fsync; append ms = time of the append call
                (SQLite: executemany + COMMIT with WAL fsync; Redis: EVALSHA incl. AOF fsync).
  CPU         = % of one core over the measured window: srv = the engine's process (engine
                rows: also the load generator, same event loop), cli = HTTP load generator
                process, redis = redis-server, other = every other process on the machine.
  http rows:  server (one uvicorn process) and load generator (one process, raw HTTP/1.1,
              keep-alive, one connection per window/kiosk) share the same {cores} cores, and
              with redis-server on Redis rows: client CPU comes out of the server's budget."""


def run(args: argparse.Namespace) -> int:
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 8.0)
    warmup = 0.5 if args.quick else 1.0
    backends = args.backends.split(",")
    layers = args.layers.split(",")
    config_text, categories = bench_config(args.windows)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hall-bench-") as tmp:
        workdir = Path(tmp)
        config_path = workdir / "bench-hall.toml"
        config_path.write_text(config_text, encoding="utf-8")
        plan = Plan(
            seconds, warmup, args.rate, args.windows, workdir, config_text, config_path,
            categories, args.profile, args.wait_quiet,
        )  # fmt: skip
        print("Hall durable-command benchmark")
        for line in machine_context(workdir):
            print("  " + line)
        print(
            f"  hall: {args.windows} comprehensive windows, {len(categories)} categories, "
            f"{BACKLOG} tickets waiting, mix issue:call:start:finish = 1:1:1:1, "
            f"{GREEN_SHARE:.0%} green lane; {seconds:g} s measured after {warmup:g} s warm-up\n",
            flush=True,
        )
        engine_profile = cProfile.Profile() if args.profile and "engine" in layers else None
        with contextlib.ExitStack() as stack:
            redis = stack.enter_context(private_redis(workdir)) if "redis" in backends else None
            for backend in backends:
                for layer in layers:
                    for batching in (True, False):
                        rows += run_phase(plan, backend, layer, batching, redis, engine_profile)
        print()
        print_table(rows)
        print()
        for line in verdicts(rows):
            print(line)
        for row in rows:
            if row.result["errors"] or row.result["empty_calls"]:
                print(
                    f"note: {row.backend}/{row.layer}/{row.mode}: {row.result['errors']} errors "
                    f"(first: {row.result['first_error']}), "
                    f"{row.result['empty_calls']} call-next with nothing waiting"
                )
        busiest = max((row.result["others_cpu"] for row in rows), default=0.0)
        if busiest > 25:
            print(
                f"WARNING: other processes used up to {busiest:.0f} % of a core during the runs "
                "('other' CPU column): this machine was not quiet, so throughput is lower and "
                "latency higher than it would be on an idle machine."
            )
        print()
        print(NOTES.format(cores=os.cpu_count()))
        if engine_profile is not None:
            print_profile(engine_profile, "engine layer, SQLite, all modes (this process)")
        server_prof = workdir / "server.prof"
        if server_prof.exists():
            print_profile(str(server_prof), "HTTP server, SQLite group commit (server process)")
    fails = [line for line in verdicts(rows) if line.startswith("FAIL")]
    return 1 if fails else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_server"]:
        server_main(json.loads(argv[1]))
        return 0
    if argv[:1] == ["_client"]:
        print(json.dumps(asyncio.run(client_main(json.loads(argv[1])))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, help="measured seconds per mode (default 8)")
    parser.add_argument("--quick", action="store_true", help="3 s per mode, shorter warm-up")
    parser.add_argument("--rate", type=float, default=OFFERED_RATE, help="open-loop offered cmds/s")
    parser.add_argument("--windows", type=int, default=WINDOWS, help="windows (and staff)")
    parser.add_argument("--backends", default="sqlite,redis", help="sqlite,redis")
    parser.add_argument("--layers", default="engine,http", help="engine,http")
    parser.add_argument("--profile", action="store_true", help="cProfile engine and server")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each phase, wait up to S s for the machine to be idle (shared machines)",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
