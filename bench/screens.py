"""Call -> screen latency through the hall screen feed, against a bare ``websockets`` broadcast.

    .venv/bin/python bench/screens.py            # 1,000 screens, about two minutes
    .venv/bin/python bench/screens.py --quick    # 100 screens, a smoke test (~20 s)
    .venv/bin/python bench/screens.py --profile  # + py-spy of the hall server (needs py-spy)

Four processes on one machine: a real ``hall serve`` (SQLite in a temporary data directory),
the bare broadcast server of bench/bare_broadcast.py, the screens (bench/screen_clients.py: one
asyncio process of ``websockets`` clients, no permessage-deflate), and this driver, which sends
the calls: real ``POST .../windows/{w}/call-next`` requests to the hall server, and to the bare
server the same frame (the hall feed's frame for a call, with another number of the same length)
on its ``/publish`` socket. Latency is from just before the driver sends a call to the moment each
screen has the frame that carries it, on CLOCK_MONOTONIC, which all processes share. One call at a
time: the next is sent once every screen has the last one; calls to the two servers alternate
(and which goes first alternates), so a busy neighbour weighs on both sides alike.

In order: set-up (staff log in at every window, tickets issued; nothing connected); server CPU per
call with no screen; one *stalled* screen per server (a raw socket that reads its handshake and
never again, with a small receive buffer) and tickets issued until its buffers are full; the
screens connect (server RSS before and after: memory per screen); the calls with the stalled
screen connected; the stalled screen closes; the calls without it (server CPU per call with the
screens); the screens close (RSS after: is it given back?). Windows are reset (no-show) between
blocks of calls, outside the measured time and CPU.

Targets (issue 7): our p99 <= 1.5 x the bare broadcast's p99; the stalled screen adds < 10 % to
our p99; server memory per connected screen <= 100 KiB. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from loadgen import HALL, KIOSK_TOKEN, PASSWORD, ROOT, proc_cpu, staff_name, system_busy, window_id
from scenarios import bench_config, free_port, stop_process, wait_for_port
from websockets.asyncio.client import connect

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 1.5
TARGET_STALL = 1.10
TARGET_KIB = 100.0


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


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
                self.future(message["done"]).set_result(message["at"])
            else:
                await self.answers.put(message)
        await self.answers.put({"error": f"screens process ended; see {self.log}"})

    def future(self, marker: str) -> asyncio.Future[float]:
        if marker not in self.done:
            self.done[marker] = asyncio.get_running_loop().create_future()
        return self.done[marker]

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


@dataclass
class Series:
    """One server's calls in one condition: send times and every screen's receive time."""

    sent: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)  # when the last screen had it
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    cpu: float = 0.0
    calls: int = 0
    types: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)

    def absorb(self, results: dict[str, Any], screens: int) -> None:
        for marker, t0 in self.sent.items():
            times = results["seen"].get(marker, [])
            self.latencies += [t - t0 for t in times]
            self.missing += screens - len(times)
        self.types, self.closed = results["types"], results["closed"]

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    def last_p(self, q: float) -> float:
        return (
            percentile([self.last[m] - t for m, t in self.sent.items() if m in self.last], q) * 1000
        )


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.windows = args.windows
        self.hosts = [f"127.0.0.{10 + i}" for i in range(max(1, -(-args.screens // 50)))]
        self.bare_seq = 0
        self.next_window = 0
        self.figures: dict[str, Any] = {}

    # ------------------------------------------------------------------ processes

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

    def start_servers(self) -> None:
        text, _ = bench_config(self.windows)
        config = self.workdir / "hall.toml"
        config.write_text(text, encoding="utf-8")
        self.port, self.bare_port = free_port(), free_port()
        serve = [sys.executable, "-m", "hall.cli", "serve", "--config", str(config)]
        serve += ["--data", str(self.workdir / "data"), "--port", str(self.port)]
        self.hall = self.spawn("hall-serve", serve, self.port)
        bare = [sys.executable, str(HERE / "bare_broadcast.py"), str(self.bare_port)]
        self.bare = self.spawn("bare", bare, self.bare_port)

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)

    # ------------------------------------------------------------------ the hall

    async def setup(self, http: httpx.AsyncClient) -> None:
        self.base = f"/api/halls/{HALL}"
        self.tokens: list[str] = []
        for w in range(self.windows):
            body = {"username": staff_name(w), "password": PASSWORD}
            r = await http.post(f"{self.base}/windows/{window_id(w)}/login", json=body)
            r.raise_for_status()
            self.tokens.append(r.json()["token"])

    async def issue(self, http: httpx.AsyncClient, count: int) -> None:
        headers = {"Authorization": f"Bearer {KIOSK_TOKEN}"}
        for _ in range(count):
            r = await http.post(
                f"{self.base}/tickets", json={"category": "general"}, headers=headers
            )
            r.raise_for_status()

    async def call(self, http: httpx.AsyncClient, w: int) -> tuple[float, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.tokens[w]}"}
        t0 = time.monotonic()
        r = await http.post(f"{self.base}/windows/{window_id(w)}/call-next", headers=headers)
        r.raise_for_status()
        ticket = r.json()["ticket"]
        if ticket is None:
            raise RuntimeError("no ticket waiting: issue more before calling")
        return t0, ticket

    async def reset(self, http: httpx.AsyncClient) -> None:
        """Every window back to open (its called ticket a no-show): set-up, not measured."""
        for w in range(self.windows):
            headers = {"Authorization": f"Bearer {self.tokens[w]}"}
            r = await http.post(f"{self.base}/windows/{window_id(w)}/no-show", headers=headers)
            if r.status_code != 409:  # 409: this window called nothing
                r.raise_for_status()
        self.next_window = 0

    async def free_window(self, http: httpx.AsyncClient) -> int:
        if self.next_window == self.windows:
            await self.reset(http)
            with contextlib.suppress(AttributeError):
                await self.screens.ask("quiet", ms=300)
        self.next_window += 1
        return self.next_window - 1

    # ------------------------------------------------------------------ the run

    async def run(self) -> None:
        self.figures["load_start"] = os.getloadavg()
        self.start_servers()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as http:
            await self.setup(http)
            await self.issue(http, self.windows + 5)
            for _ in range(5):  # warm-up: first calls build caches, import lazily, etc.
                await self.call(http, await self.free_window(http))
            await self.reset(http)
            cpu = cpu_seconds(self.hall.pid)
            for _ in range(self.windows):
                await self.call(http, await self.free_window(http))
            self.figures["cpu0"] = (cpu_seconds(self.hall.pid) - cpu) / self.windows
            await self.reset(http)
            self.feed = await self.pick_feed()
            self.screens = ScreensProcess(self.workdir / "screens.log")
            await self.screens.start()
            try:
                await self.measure(http)
            finally:
                await self.screens.stop()
        self.figures["load_end"] = os.getloadavg()

    async def measure(self, http: httpx.AsyncClient) -> None:
        await self.stall_and_fill(http)
        await self.connect_screens()
        sample_marker, sample = await self.sample(http)
        with self.profiled():
            self.figures["stalled"] = await self.condition(http, sample_marker, sample)
        self.figures["stall_end"] = {
            n: await self.screens.ask("stall_info", name=n) for n in ("ours", "bare")
        }
        for name in ("ours", "bare"):
            await self.screens.ask("unstall", name=name)
        await asyncio.sleep(0.5)
        self.figures["plain"] = await self.condition(http, sample_marker, sample)
        self.figures["rss_peak"] = rss_kib(self.hall.pid)
        for group, pid, key in (
            ("ours", self.hall.pid, "rss"),
            ("bare", self.bare.pid, "bare_rss"),
        ):
            await self.screens.ask("close", group=group)
            await asyncio.sleep(3)
            self.figures[key]["closed"] = rss_kib(pid)

    async def pick_feed(self) -> str:
        """The hall screen feed; where this branch has none yet, the raw event feed (loudly)."""
        if self.args.feed != "auto":
            return str(self.args.feed)
        url = f"ws://127.0.0.1:{self.port}/ws/halls/{HALL}/screens/hall"
        try:
            async with connect(url, compression=None, open_timeout=10) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if first.get("type") == "view":
                return "screens"
        except Exception:
            pass
        print("NOTE: no hall screen feed on this branch: measuring the raw event feed instead")
        return "events"

    def feed_url(self) -> str:
        path = "screens/hall" if self.feed == "screens" else "events"
        return f"ws://127.0.0.1:{self.port}/ws/halls/{HALL}/{path}"

    async def stall_and_fill(self, http: httpx.AsyncClient) -> None:
        """One stalled screen per server, then traffic until its buffers stop taking more. The
        tickets issued here are the ones the measured calls will call."""
        args = self.args
        self.figures["rss"] = {"idle": rss_kib(self.hall.pid)}
        self.figures["bare_rss"] = {"idle": rss_kib(self.bare.pid)}
        bare_url = f"ws://127.0.0.1:{self.bare_port}/screen"
        await self.screens.ask("stall", name="ours", url=self.feed_url(), host="127.0.0.2")
        await self.screens.ask("stall", name="bare", url=bare_url, host="127.0.0.3")
        needed = 2 * args.calls + 2 * self.windows + 20
        history: list[int] = []
        issued = 0
        while issued < needed or len(history) < 4 or history[-1] > history[-4]:
            await self.issue(http, 20)
            issued += 20
            history.append(
                (await self.screens.ask("stall_info", name="ours"))["server_send_q"] or 0
            )
            if issued >= needed + args.max_fill:
                break
        extra = args.fill_extra  # past the kernel: the server's own buffer and queue
        await self.issue(http, extra)
        issued += extra
        async with connect(f"ws://127.0.0.1:{self.bare_port}/publish", compression=None) as pub:
            for i in range(issued):
                await pub.send(json.dumps({"type": "fill", "i": i, "pad": "x" * 200}))
        await asyncio.sleep(0.5)
        self.figures["stall_start"] = {
            n: await self.screens.ask("stall_info", name=n) for n in ("ours", "bare")
        }
        self.figures["fill_issued"] = issued
        self.figures["rss"]["stalled"] = rss_kib(self.hall.pid)
        self.figures["bare_rss"]["stalled"] = rss_kib(self.bare.pid)

    async def connect_screens(self) -> None:
        n = self.args.screens
        ours = await self.screens.ask(
            "connect", group="ours", url=self.feed_url(), count=n, hosts=self.hosts, first=True
        )
        bare_url = f"ws://127.0.0.1:{self.bare_port}/screen"
        bare = await self.screens.ask(
            "connect", group="bare", url=bare_url, count=n, hosts=self.hosts, first=False
        )
        for group, answer in (("ours", ours), ("bare", bare)):
            if answer["connected"] != n:
                raise RuntimeError(
                    f"{group}: {answer['connected']} of {n} screens connected: {answer}"
                )
        await asyncio.sleep(1.0)
        self.figures["connect"] = {"ours": ours, "bare": bare}
        self.figures["rss"]["connected"] = rss_kib(self.hall.pid)
        self.figures["bare_rss"]["connected"] = rss_kib(self.bare.pid)

    async def sample(self, http: httpx.AsyncClient) -> tuple[str, str]:
        """One call, unmeasured: the frame the screens got for it is what the bare server sends."""
        _, ticket = await self.call(http, await self.free_window(http))
        marker = self.marker(ticket)
        await asyncio.wait_for(self.screens.future(marker), 30)
        frame = (await self.screens.ask("sample", group="ours", marker=marker))["frame"]
        await self.screens.ask("results", group="ours")
        await self.screens.ask("quiet", ms=200)
        self.figures["frame_bytes"] = len(frame.encode())
        self.figures["frame"] = frame
        return marker, frame

    def marker(self, ticket: dict[str, Any]) -> str:
        return str(ticket["number"] if self.feed == "screens" else ticket["id"])

    async def condition(self, http: httpx.AsyncClient, sample_marker: str, sample: str) -> Any:
        ours, bare = Series(), Series()
        bare_url = f"ws://127.0.0.1:{self.bare_port}/publish"
        start_busy, started = system_busy(), time.monotonic()
        client_cpu = proc_cpu(self.screens.process.pid)
        async with connect(bare_url, compression=None) as publish:
            for i in range(self.args.calls):
                w = await self.free_window(http)
                for side in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
                    if side == "ours":
                        cpu = cpu_seconds(self.hall.pid)
                        t0, ticket = await self.call(http, w)
                        marker = self.marker(ticket)
                        ours.sent[marker] = t0
                        ours.last[marker] = await asyncio.wait_for(self.screens.future(marker), 30)
                        await asyncio.sleep(self.args.gap)  # what the server does after it
                        ours.cpu += cpu_seconds(self.hall.pid) - cpu
                    else:
                        self.bare_seq += 1
                        marker = f"Z{self.bare_seq:0{len(sample_marker) - 1}d}"
                        frame = sample.replace(sample_marker, marker)
                        cpu = cpu_seconds(self.bare.pid)
                        t0 = time.monotonic()
                        await publish.send(frame)
                        bare.sent[marker] = t0
                        bare.last[marker] = await asyncio.wait_for(self.screens.future(marker), 30)
                        await asyncio.sleep(self.args.gap)
                        bare.cpu += cpu_seconds(self.bare.pid) - cpu
        elapsed = time.monotonic() - started
        for series, group in ((ours, "ours"), (bare, "bare")):
            series.calls = self.args.calls
            series.absorb(await self.screens.ask("results", group=group), self.args.screens)
        return {
            "ours": ours,
            "bare": bare,
            "busy": (system_busy() - start_busy) / elapsed,
            "client_cpu": (proc_cpu(self.screens.process.pid) - client_cpu) / elapsed,
            "seconds": elapsed,
        }

    @contextlib.contextmanager
    def profiled(self) -> Any:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not self.args.profile:
            yield
            return
        out = self.workdir / "hall-serve.speedscope.json"
        command = [spy, "record", "--pid", str(self.hall.pid), "--format", "speedscope"]
        command += ["--rate", "200", "--gil", "-o", str(out)]  # --gil: busy samples only
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            process.send_signal(2)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
            stop_process(process)
            self.figures["profile"] = out


# ---------------------------------------------------------------------- the report


def conditions_line() -> str:
    names = ("uvicorn", "websockets", "litestar", "msgspec", "uvloop", "httptools")
    versions = ", ".join(f"{n} {_version(n)}" for n in names)
    return f"Python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs"


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:
        return "absent"


def report(bench: Bench) -> bool:
    f, args = bench.figures, bench.args
    plain, stalled = f["plain"], f["stalled"]
    ours, bare = plain["ours"], plain["bare"]
    ours_s = stalled["ours"]
    feed = "hall screen feed" if bench.feed == "screens" else "RAW EVENT FEED (no screen feed yet)"
    print()
    print(f"call -> screen, {args.screens} screens, {args.calls} calls per server and condition")
    print(f"  ours: {feed}, {bench.feed_url()}")
    print(f"  bare: websockets.broadcast of the same frame ({f['frame_bytes']} bytes, text)")
    print(f"  {conditions_line()}")
    print(
        f"  load average {f['load_start'][0]:.2f} at start, {f['load_end'][0]:.2f} at end; "
        "clients without permessage-deflate"
    )
    print()
    head = f"{'condition':<28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    head += f" {'last p50':>9} {'last p99':>9}"
    print(head + f" {'CPU/call ms':>11} {'missing':>7} {'frames':>14}")
    print("-" * (len(head) + 36))
    for label, cond in (("", plain), (" + stalled screen", stalled)):
        for name, series in (("ours", cond["ours"]), ("bare", cond["bare"])):
            kinds = ",".join(f"{k}:{v}" for k, v in sorted(series.types.items()))
            print(
                f"{name + label:<28} {series.p(0.5):8.1f} {series.p(0.99):8.1f} "
                f"{max(series.latencies) * 1000:8.1f} {series.last_p(0.5):9.1f} "
                f"{series.last_p(0.99):9.1f} {series.cpu / series.calls * 1000:11.2f} "
                f"{series.missing:7d} {kinds:>14}"
            )
        print(
            f"{'  (machine)':<28} busy {cond['busy'] * 100:.0f} % of a core, screens process "
            f"{cond['client_cpu'] * 100:.0f} %, {cond['seconds']:.1f} s"
        )
    print()
    rss, bare_rss = f["rss"], f["bare_rss"]
    per = (rss["connected"] - rss["stalled"]) / args.screens
    bare_per = (bare_rss["connected"] - bare_rss["stalled"]) / args.screens
    returned = rss["connected"] - rss["closed"]
    added = rss["connected"] - rss["stalled"]
    print(
        f"server RSS (KiB): idle {rss['idle']}, + stalled {rss['stalled']}, + {args.screens} "
        f"screens {rss['connected']} ({per:.1f} KiB each), after the calls {f['rss_peak']}, "
        f"after they closed {rss['closed']} ({returned / max(added, 1):.0%} of it given back)"
    )
    print(
        f"bare   RSS (KiB): idle {bare_rss['idle']}, + stalled {bare_rss['stalled']}, + screens "
        f"{bare_rss['connected']} ({bare_per:.1f} KiB each), after they closed {bare_rss['closed']}"
    )
    print(
        f"server CPU per call: {f['cpu0'] * 1000:.2f} ms with 0 screens, "
        f"{ours.cpu / ours.calls * 1000:.2f} ms with {args.screens} "
        f"(bare: {bare.cpu / bare.calls * 1000:.2f} ms)"
    )
    for when in ("stall_start", "stall_end"):
        info = f[when]
        print(
            f"stalled screen at {when.split('_')[1]}: ours {info['ours']}, bare {info['bare']}"
            + (f" ({f['fill_issued']} tickets issued to fill it)" if when == "stall_start" else "")
        )
    ratio = ours.p(0.99) / bare.p(0.99)
    stall = ours_s.p(0.99) / ours.p(0.99)
    checks = [
        (ratio <= TARGET_RATIO, f"p99 ours / bare = {ratio:.2f} (<= {TARGET_RATIO})"),
        (
            stall < TARGET_STALL,
            f"p99 with / without a stalled screen = {stall:.2f} (< {TARGET_STALL})",
        ),
        (per <= TARGET_KIB, f"server memory per screen = {per:.1f} KiB (<= {TARGET_KIB:.0f})"),
        (
            ours.missing == 0 and ours_s.missing == 0,
            f"every screen got every call (missing {ours.missing + ours_s.missing})",
        ),
    ]
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if "profile" in f:
        print(f"py-spy profile of hall serve (stalled condition): {f['profile']}")
    return all(ok for ok, _ in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 screens, 12 calls: a smoke test")
    parser.add_argument("--screens", type=int, help="screens per server (default 1000)")
    parser.add_argument("--calls", type=int, help="calls per server and condition (default 60)")
    parser.add_argument("--windows", type=int, default=40, help="windows in the hall (default 40)")
    parser.add_argument("--gap", type=float, default=0.02, help="pause after each call, s")
    parser.add_argument("--feed", choices=("auto", "screens", "events"), default="auto")
    parser.add_argument("--max-fill", type=int, default=3000, help=argparse.SUPPRESS)
    parser.add_argument("--fill-extra", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="py-spy record the hall server")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    args.screens = args.screens or (100 if args.quick else 1000)
    args.calls = args.calls or (12 if args.quick else 60)
    args.fill_extra = (
        args.fill_extra if args.fill_extra is not None else (100 if args.quick else 400)
    )
    if args.quick:
        args.windows = min(args.windows, 12)
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-screens-"))
    bench = Bench(args, workdir)
    try:
        asyncio.run(bench.run())
        ok = report(bench)
    finally:
        bench.stop()
        if args.keep or args.profile:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
