"""The load generator: a busy hall's kiosks and windows as Poisson or closed-loop streams, the
measurement (CPU from /proc, latency percentiles, append counts), and the raw HTTP/1.1 client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

ROOT = Path(__file__).resolve().parent.parent
HALL = "bench-hall"
PASSWORD = "bench-password"
KIOSK_TOKEN = "bench-kiosk-token"

TARGET_RATE = 1000.0  # durable commands/s (the target, SQLite)
TARGET_P99_MS = 20.0
OFFERED_RATE = 1100.0  # open-loop offered load: the target plus 10 % so a pass is not marginal
WINDOWS = 32
KIOSKS = 16
BACKLOG = 200  # tickets waiting when the measurement starts, held there by the 1:3 mix
GREEN_SHARE = 0.05
TRIVIAL_PATH = "/_bench/trivial"  # a POST decoding a small msgspec body: the HTTP yardstick
IDLE_RECONNECT = 3.0  # uvicorn drops keep-alive connections idle for 5 s


def staff_name(window: int) -> str:
    return f"staff{window + 1:02d}"


def window_id(window: int) -> str:
    return str(window + 1)


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


class TrivialDriver(HttpDriver):
    """Every kiosk and window command as a POST to the trivial route (same body as an issue)."""

    async def _trivial(self, conn: HttpConnection) -> None:
        body = json.dumps({"category": "general", "priority": "normal"}).encode()
        await self._post(conn, TRIVIAL_PATH, body, "", 201)

    async def login(self, window: int) -> None:
        pass

    async def issue(self, kiosk: int, category: str, priority: str) -> None:
        await self._trivial(self.kiosk_conns[kiosk])

    async def call_next(self, window: int) -> bool:
        await self._trivial(self.window_conns[window])
        return True

    async def start(self, window: int) -> None:
        await self._trivial(self.window_conns[window])

    async def finish(self, window: int) -> None:
        await self._trivial(self.window_conns[window])


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
    trivial = Workload(
        TrivialDriver(host, port, spec["windows"], KIOSKS),
        HttpProbe(host, port, spec["redis_pid"]),
        spec["categories"],
        windows=spec["windows"],
        kiosks=KIOSKS,
        backlog=BACKLOG,
    )
    return [
        await (trivial if mode["kind"] == "trivial" else workload).run(
            {**mode, "kind": "closed"} if mode["kind"] == "trivial" else mode
        )
        for mode in spec["modes"]
    ]
