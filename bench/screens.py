"""Call -> screen latency through the hall screen feed, against a bare ``websockets`` broadcast.

    .venv/bin/python bench/screens.py            # 1,000 screens per server, about two minutes
    .venv/bin/python bench/screens.py --quick    # 100 screens, a smoke test (~25 s)
    .venv/bin/python bench/screens.py --profile  # + py-spy of the hall server (pip install py-spy)

Processes, all on this machine: two real ``hall serve`` (each SQLite in a temporary data
directory, the same generated hall), the bare broadcast server of bench/bare_broadcast.py, the
screens (bench/screen_clients.py: one asyncio process, ``websockets``' client protocol, no
permessage-deflate), and this driver. The driver sends the calls: real ``POST
.../windows/{w}/call-next`` requests to each hall server, and to the bare server the frame the hall
feed sent for a call (another number of the same length in it) on its ``/publish`` socket.
Latency runs from just before the driver sends a call to the moment each screen has the frame that
carries it, on CLOCK_MONOTONIC, which every process on a machine shares.

The second hall server has one *stalled* screen besides its thousand: a raw socket with a small
receive buffer that reads its handshake and never again; before the screens connect, tickets are
issued until that server has given up on it (its /metrics count a resync: the kernel's buffers,
the transport's and the screen's queue are full). The calls go one at a time, in turns
to the three servers (the order rotating), each once every screen has the previous one: the plain
hall, the stalled hall and the bare broadcast share the same minutes of a shared machine, so the
ratios compare like with like even when a neighbour's load comes and goes.

Also: server CPU per call (the CPU of every thread of the server, from /proc/PID/task/*/schedstat,
from just before a call to after it reached every screen and a short gap) with no screen and
with the screens; server RSS before the screens connect, with them, and after they close.
Windows are reset (no-show) between blocks of calls, outside the measured times and CPU.

Targets: our p99 <= 1.5 x the bare broadcast's p99; the stalled screen adds < 10 % to
the p99; server memory per connected screen <= 100 KiB. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from loadgen import HALL, KIOSK_TOKEN, PASSWORD, ROOT, proc_cpu, staff_name, system_busy, window_id
from scenarios import bench_config, free_port, stop_process, wait_for_port
from screens_report import Series, report
from websockets.asyncio.client import connect

HERE = Path(__file__).resolve().parent
LINGER = 3.0  # seconds after the screens close before the RSS is read again


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, in seconds, to the nanosecond (schedstat: the
    clock ticks of /proc/PID/stat are 10 ms, as long as a call)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


class ScreensProcess:
    """bench/screen_clients.py, one command at a time; ``done`` lines arrive in between."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.done: dict[str, asyncio.Future[float]] = {}
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "screen_clients.py"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),  # the child keeps it
            limit=1 << 26,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "done" in message:
                self.future(message["group"], message["done"]).set_result(message["at"])
            else:
                await self.answers.put(message)
        await self.answers.put({"error": f"screens process ended; see {self.log}"})

    def future(self, group: str, marker: str) -> asyncio.Future[float]:
        """When the last screen of ``group`` had ``marker``."""
        key = f"{group} {marker}"
        if key not in self.done:
            self.done[key] = asyncio.get_running_loop().create_future()
        return self.done[key]

    async def ask(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await self.process.stdin.drain()
        answer = await asyncio.wait_for(self.answers.get(), 120)
        if "error" in answer:
            raise RuntimeError(f"screens: {op}: {answer['error']}")
        return answer

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask("exit"), 5)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            await self.process.wait()
        self.reader.cancel()


class HallServer:
    """One ``hall serve`` process and the driver's side of it: staff tokens, tickets, calls."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], port: int, windows: int):
        self.name, self.process, self.port, self.windows = name, process, port, windows
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self.base = f"/api/halls/{HALL}"
        self.tokens: list[str] = []
        self.next_window = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, feed: str) -> str:
        path = "screens/hall" if feed == "screens" else "events"
        return f"ws://127.0.0.1:{self.port}/ws/halls/{HALL}/{path}"

    async def login(self) -> None:
        for w in range(self.windows):
            body = {"username": staff_name(w), "password": PASSWORD}
            r = await self.http.post(f"{self.base}/windows/{window_id(w)}/login", json=body)
            r.raise_for_status()
            self.tokens.append(r.json()["token"])

    async def issue(self, count: int) -> None:
        headers = {"Authorization": f"Bearer {KIOSK_TOKEN}"}
        for _ in range(count):
            body = {"category": "general"}
            r = await self.http.post(f"{self.base}/tickets", json=body, headers=headers)
            r.raise_for_status()

    async def call(self, w: int) -> tuple[float, dict[str, Any]]:
        """Call the next ticket at window ``w``: (the time just before sending, the ticket)."""
        headers = {"Authorization": f"Bearer {self.tokens[w]}"}
        path = f"{self.base}/windows/{window_id(w)}/call-next"
        t0 = time.monotonic()
        r = await self.http.post(path, headers=headers)
        r.raise_for_status()
        ticket = r.json()["ticket"]
        if ticket is None:
            raise RuntimeError(f"{self.name}: no ticket waiting: issue more before calling")
        return t0, ticket

    async def reset(self) -> None:
        """Every window open again (its called ticket a no-show): set-up, not measured."""
        for w in range(self.windows):
            headers = {"Authorization": f"Bearer {self.tokens[w]}"}
            path = f"{self.base}/windows/{window_id(w)}/no-show"
            r = await self.http.post(path, headers=headers)
            if r.status_code != 409:  # 409: this window holds no called ticket
                r.raise_for_status()
        self.next_window = 0

    async def resyncs(self) -> float:
        """Screens of this server that fell behind and got the view again (its /metrics)."""
        text = (await self.http.get("/metrics")).text
        lines = [line for line in text.splitlines() if line.startswith("hall_screen_resyncs")]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    def window(self) -> int:
        """A window that has called nothing since the last reset."""
        if self.next_window == self.windows:
            raise RuntimeError(f"{self.name}: every window has called: reset first")
        self.next_window += 1
        return self.next_window - 1


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        # A hall's screens each have their own address: 50 per loopback address keeps every
        # address under the server's per-address cap (default 100).
        self.hosts = [f"127.0.0.{10 + i}" for i in range(max(1, -(-args.screens // 50)))]
        self.f: dict[str, Any] = {}
        self.feed = "screens"
        self.started = time.monotonic()

    def spawn(self, name: str, command: list[str], port: int) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=out,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.processes.append(process)
        wait_for_port(port, process, log, timeout=60)
        return process

    def hall_server(self, name: str) -> HallServer:
        config = self.workdir / "hall.toml"
        if not config.exists():
            config.write_text(bench_config(self.args.windows)[0], encoding="utf-8")
        port = free_port()
        command = [sys.executable, "-m", "hall.cli", "serve", "--config", str(config)]
        command += ["--data", str(self.workdir / f"data-{name}"), "--port", str(port)]
        return HallServer(name, self.spawn(name, command, port), port, self.args.windows)

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)

    async def run(self) -> None:
        args, f = self.args, self.f
        f["load_start"] = os.getloadavg()
        self.ours, self.stalled = self.hall_server("ours"), self.hall_server("stalled")
        self.bare_port = free_port()
        command = [sys.executable, str(HERE / "bare_broadcast.py"), str(self.bare_port)]
        self.bare = self.spawn("bare", command, self.bare_port)
        try:
            for hall in (self.ours, self.stalled):
                await hall.login()
                await hall.issue(hall.windows + 5)
                for _ in range(min(5, hall.windows)):  # warm-up: caches, lazy imports...
                    await hall.call(hall.window())
                await hall.reset()
            cpu = cpu_seconds(self.ours.pid)
            for _ in range(args.windows):
                await self.ours.call(self.ours.window())
            f["cpu0"] = (cpu_seconds(self.ours.pid) - cpu) / args.windows
            await self.ours.reset()
            self.feed = await self.pick_feed()
            self.screens = ScreensProcess(self.workdir / "screens.log")
            await self.screens.start()
            try:
                await self.measure()
            finally:
                await self.screens.stop()
        finally:
            for hall in (self.ours, self.stalled):
                await hall.http.aclose()
        f["load_end"] = os.getloadavg()

    async def pick_feed(self) -> str:
        """The hall screen feed; where this branch has none yet, the raw event feed (loudly)."""
        if self.args.feed != "auto":
            return str(self.args.feed)
        with contextlib.suppress(Exception):
            async with connect(self.ours.url("screens"), compression=None, open_timeout=10) as ws:
                if json.loads(await asyncio.wait_for(ws.recv(), 10)).get("type") == "view":
                    return "screens"
        print("NOTE: no hall screen feed on this branch: measuring the raw event feed instead")
        return "events"

    async def measure(self) -> None:
        f, n = self.f, self.args.screens
        await self.fill_stalled()
        f["rss"] = {"idle": rss_kib(self.ours.pid)}
        f["bare_rss"] = {"idle": rss_kib(self.bare.pid)}
        targets = (
            ("ours", self.ours.url(self.feed), True),
            ("stalled", self.stalled.url(self.feed), True),
            ("bare", f"ws://127.0.0.1:{self.bare_port}/screen", False),
        )
        f["connected_at"] = {}
        for group, url, first in targets:
            f["connected_at"][group] = time.monotonic()
            answer = await self.screens.ask(
                "connect", group=group, url=url, count=n, hosts=self.hosts, first=first
            )
            if answer["connected"] != n:
                raise RuntimeError(f"{group}: {answer['connected']} of {n} screens: {answer}")
        await asyncio.sleep(1.0)
        f["rss"]["connected"] = rss_kib(self.ours.pid)
        f["bare_rss"]["connected"] = rss_kib(self.bare.pid)
        marker, sample = await self.sample()
        with self.profiled():
            await self.calls(marker, sample)
        f["stall_end"] = await self.screens.ask("stall_info", name="stalled")
        f["resyncs"] = {"ours": await self.ours.resyncs(), "stalled": await self.stalled.resyncs()}
        f["rss"]["after_calls"] = rss_kib(self.ours.pid)
        for group in ("ours", "stalled", "bare"):
            await self.screens.ask("close", group=group)
        await self.screens.ask("unstall", name="stalled")
        f["linger"] = LINGER
        await asyncio.sleep(LINGER)
        f["rss"]["closed"] = rss_kib(self.ours.pid)
        f["bare_rss"]["closed"] = rss_kib(self.bare.pid)
        # Kept by the allocator, or leaked? The same number of screens again, then gone again.
        url = self.ours.url(self.feed)
        await self.screens.ask("connect", group="again", url=url, count=n, hosts=self.hosts)
        await asyncio.sleep(1.0)
        f["rss"]["again"] = rss_kib(self.ours.pid)
        await self.screens.ask("close", group="again")

    async def fill_stalled(self) -> None:
        """The stalled screen, then tickets issued until the server has given up on it (its
        queue overflowed: a resync is counted in /metrics; the kernel's and the transport's
        buffers in front of that queue are full). The same number goes to the plain hall, so
        both call the same tickets."""
        args = self.args
        url = self.stalled.url(self.feed)
        await self.screens.ask("stall", name="stalled", url=url, host="127.0.0.2")
        needed = args.calls + 2 * args.windows + 20
        issued = 0
        while issued < needed or await self.stalled.resyncs() < 1:
            await self.stalled.issue(20)
            issued += 20
            if issued >= needed + args.max_fill:
                break
        await self.ours.issue(issued)
        await asyncio.sleep(0.5)
        self.f["stall_start"] = await self.screens.ask("stall_info", name="stalled")
        self.f["stall_start"]["resyncs"] = await self.stalled.resyncs()
        self.f["fill_issued"] = issued

    async def sample(self) -> tuple[str, str]:
        """One call, unmeasured: the frame the screens got for it is what the bare server sends."""
        _, ticket = await self.ours.call(self.ours.window())
        marker = self.marker(ticket)
        await asyncio.wait_for(self.screens.future("ours", marker), 30)
        frame = str((await self.screens.ask("sample", group="ours", marker=marker))["frame"])
        for group in ("ours", "stalled", "bare"):
            await self.screens.ask("results", group=group)
        await self.screens.ask("quiet", ms=200)
        self.f["frame_bytes"] = len(frame.encode())
        return marker, frame

    def marker(self, ticket: dict[str, Any]) -> str:
        return str(ticket["number"] if self.feed == "screens" else ticket["id"])

    async def calls(self, sample_marker: str, sample: str) -> None:
        args, f = self.args, self.f
        series = {name: Series(name) for name in ("ours", "stalled", "bare")}
        series["stalled"].name = "ours + 1 stalled screen"
        series["bare"].name = "bare broadcast"
        busy, client_cpu, started = system_busy(), proc_cpu(self.screens.process.pid), 0.0
        started = time.monotonic()
        order = ["ours", "stalled", "bare"]
        async with connect(f"ws://127.0.0.1:{self.bare_port}/publish", compression=None) as pub:
            for i in range(args.calls):
                if self.ours.next_window == self.ours.windows:
                    await self.ours.reset()
                    await self.stalled.reset()
                    await self.screens.ask("quiet", ms=300)
                for name in order[i % 3 :] + order[: i % 3]:
                    if name == "bare":
                        marker = f"Z{i:0{len(sample_marker) - 1}d}"
                        pid, t0 = self.bare.pid, time.monotonic()
                        cpu = cpu_seconds(pid)
                        await pub.send(sample.replace(sample_marker, marker))
                    else:
                        hall = self.ours if name == "ours" else self.stalled
                        pid = hall.pid
                        cpu = cpu_seconds(pid)
                        t0, ticket = await hall.call(hall.window())
                        marker = self.marker(ticket)
                    series[name].sent[marker] = t0
                    done = self.screens.future(name, marker)
                    series[name].last[marker] = await asyncio.wait_for(done, 60)
                    await asyncio.sleep(args.gap)  # what the server still does after it
                    series[name].cpu += cpu_seconds(pid) - cpu
        elapsed = time.monotonic() - started
        for name, one in series.items():
            one.absorb(await self.screens.ask("results", group=name), args.screens)
        f.update(series)
        # Each call's send time and last delivery, for a look at what the slow ones had in common.
        calls = {
            name: [[t0, one.last.get(m, t0) - t0] for m, t0 in one.sent.items()]
            for name, one in series.items()
        }
        calls["connected_at"] = f["connected_at"]
        (self.workdir / "calls.json").write_text(json.dumps(calls))
        f["busy"] = (system_busy() - busy) / elapsed
        f["client_cpu"] = (proc_cpu(self.screens.process.pid) - client_cpu) / elapsed

    @contextlib.contextmanager
    def profiled(self) -> Any:
        if not self.args.profile:
            yield
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = self.workdir / "ours.speedscope.json"
        command = [spy, "record", "--pid", str(self.ours.pid), "--format", "speedscope"]
        command += ["--rate", "200", "--gil", "-o", str(out)]  # --gil: busy samples only
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            process.send_signal(2)  # SIGINT: py-spy writes its file and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
            stop_process(process)
            self.f["profile"] = out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 screens, 12 calls: a smoke test")
    parser.add_argument("--screens", type=int, help="screens per server (default 1000)")
    parser.add_argument("--calls", type=int, help="calls to each server (default 60)")
    parser.add_argument("--windows", type=int, default=40, help="windows in the hall (default 40)")
    parser.add_argument("--gap", type=float, default=0.02, help="pause after each call, s")
    parser.add_argument("--feed", choices=("auto", "screens", "events"), default="auto")
    parser.add_argument("--profile", action="store_true", help="py-spy record the hall server")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--max-fill", type=int, default=3000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.screens = args.screens or (100 if args.quick else 1000)
    args.calls = args.calls or (12 if args.quick else 60)
    if args.quick:
        args.windows = min(args.windows, 12)
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-screens-"))
    bench = Bench(args, workdir)
    try:
        asyncio.run(bench.run())
    except BaseException:
        print(f"screens: failed; the servers' and screens' logs are in {workdir}", file=sys.stderr)
        raise
    finally:
        bench.stop()
    feed = "the hall screen feed" if bench.feed == "screens" else "THE RAW EVENT FEED"
    ok = report(bench.f, args.screens, args.calls, feed)
    if "profile" in bench.f:
        print(f"py-spy profile of the plain hall server during the calls: {bench.f['profile']}")
    print(f"(the run took {time.monotonic() - bench.started:.0f} s)")
    if args.keep or args.profile:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
