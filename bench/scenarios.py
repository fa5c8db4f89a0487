"""The scenarios: the bench hall's config, the engine layer in process, the HTTP layer (a uvicorn
server process and a load-generator process), a private Redis, and one phase of a run."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from loadgen import (
    BACKLOG,
    HALL,
    KIOSK_TOKEN,
    KIOSKS,
    PASSWORD,
    ROOT,
    TRIVIAL_PATH,
    Snapshot,
    Workload,
    proc_cpu,
    staff_name,
    system_busy,
    wait_quiet,
    window_id,
)

# ------------------------------------------------------------------------------- hall config


class TrivialBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: str
    priority: str = "normal"


# The command both subprocesses run (its "_server" and "_client" entries).
ENTRY = Path(__file__).with_name("engine.py")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table; TOML has no null: a None is left out
        pairs = (f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"no TOML for {value!r}")


def cheap_hash(password: str) -> str:
    """An argon2 hash with cheap parameters: logins are set-up in the benches, not measured."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def bench_config(
    windows: int, policy: str = "profile-order", hall: str = HALL
) -> tuple[str, list[str]]:
    """A hall file: the demo hall's zones, categories and priorities; ``windows`` comprehensive
    windows (every category, profile orders rotated) with one staff member each; one kiosk;
    ``policy`` (profile-order, the cheapest, where the policy is not what is measured).

    Ticket numbers get 5 digits so that no category runs out of numbers during a run. The staff
    hash uses cheap argon2 parameters: logins are set-up here, not part of the measured mix.
    """
    password_hash = cheap_hash(PASSWORD)
    demo = tomllib.loads((ROOT / "config" / "default.toml").read_text(encoding="utf-8"))
    categories = [c["id"] for c in demo["categories"]]
    lines = [
        "[hall]",
        f"id = {_toml(hall)}",
        'name = "基准测试大厅"',
        'name_en = "Benchmark hall"',
        'timezone = "Asia/Shanghai"',
        "number_digits = 5",
        f"policy = {_toml(policy)}",
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


# ------------------------------------------------------------------------------- engine layer


class CountingJournal:
    """A journal that counts appends and appended events, delegating everything to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.appends = 0
        self.events = 0
        self.durations: list[float] = []  # of every append, in seconds

    async def append(self, hall: str, events: Any, expected_version: int, **fence: Any) -> int:
        started = time.perf_counter()
        version: int = await self.inner.append(hall, events, expected_version, **fence)
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


def server_main(spec: dict[str, Any]) -> None:
    """The HTTP server process: ``create_app`` and uvicorn as ``hall serve`` runs them, plus a
    counting journal, ``max_batch`` from the spec, and ``GET /_bench/stats``."""
    import uvicorn
    from litestar import get, post

    from hall.api import service as service_module
    from hall.api.app import create_app
    from hall.api.limits import uvicorn_limits
    from hall.cli import serving_gc
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

    @post(TRIVIAL_PATH, status_code=201, sync_to_thread=False)
    def trivial(data: TrivialBody) -> dict[str, str]:
        """What the durable routes are measured against: decode a small body, answer."""
        return {"category": data.category, "priority": data.priority}

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
        speech=False,  # commands are measured here; the speech worker's start-up would add noise
    )
    app = create_app(settings)
    serving_gc()
    app.register(trivial)
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
        **uvicorn_limits(),  # as hall serve: no proxy headers middleware, small WebSocket frames
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
            [sys.executable, str(ENTRY), "_server", json.dumps(server_spec)],
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
            [sys.executable, str(ENTRY), "_client", json.dumps(client_spec)],
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


def modes_for(
    batching: bool, seconds: float, warmup: float, rate: float, layer: str = "engine"
) -> list[dict[str, Any]]:
    if not batching:
        return [{"kind": "sequential", "seconds": seconds, "warmup": warmup}]
    modes = [
        {"kind": "open", "rate": rate, "seconds": seconds, "warmup": warmup},
        {"kind": "closed", "seconds": seconds, "warmup": warmup},
    ]
    if layer == "http":  # the yardstick: the same server and clients, no hall behind the route
        modes.append({"kind": "trivial", "seconds": seconds, "warmup": warmup})
    return modes


def describe(mode: dict[str, Any], windows: int) -> tuple[str, str]:
    """(mode, load) columns of a row."""
    if mode["kind"] == "open":
        return "group commit", f"open loop {mode['rate']:.0f}/s, {windows}+{KIOSKS} streams"
    if mode["kind"] == "trivial":
        return "trivial POST", f"closed loop, {windows}+{KIOSKS} clients, {TRIVIAL_PATH}"
    if mode["kind"] == "closed":
        return "group commit", f"closed loop, {windows}+{KIOSKS} clients"
    return "no batching", "sequential, 1 client, max_batch=1"


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
    modes = modes_for(batching, plan.seconds, plan.warmup, plan.rate, layer)
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
