"""Ticket printing: kiosk tap -> ticket printed with 16 kiosks at once, and a day's tickets
printed through a printer that drops twice.

    .venv/bin/python bench/printing.py                    # about five minutes
    .venv/bin/python bench/printing.py --quick            # 1,000 tickets in part 2 (~1 minute)

Processes, all on this machine: one real ``hall serve`` (SQLite in a temporary data directory, a
generated hall: the bench hall of scenarios.py plus 17 kiosks, each with a printer device of its
own, the device rate limit off, no speech), 17 printer agents as their own processes (``hall
printer-agent``, one per printer, as a hall runs them: next to each printer), 17 fake network
printers (tests/support/fake_printer.py: TCP listeners on 127.0.0.1 in threads of this process,
answering status queries), and this driver (one httpx client per kiosk).

1. Tap -> printed: the 16 kiosks tap together, each in a closed loop: POST a ticket with its
   device token, wait until its printer holds the whole ticket (through the cut), tap again
   (``--taps`` each, after one tap each that is not counted). The time runs from just before the
   POST to the moment a thread waiting on the fake printer sees the ticket's last byte. The
   POST's own reply time is shown beside it.
2. A day: ``--day`` tickets (5,000) issued through the 17th kiosk, one POST after another as fast
   as the server answers, printed by its agent while its printer is switched off twice (once a
   third and once two thirds of them are printed; ``--off`` seconds each). Then the tickets on the
   printer are read back by their numbers: issued, printed, duplicates, missing, whether in issue
   order, and the wall time from the first POST to the last ticket printed.

What bounds part 2 is the link's one-job-at-a-time round trip: the hall sends the next ticket
after the ack of the one before, and the ack waits for the agent's fsync of its done file; the
hall journals each ack (TicketPrinted). A printer switched off costs the hall's retry interval
(5 s) after it is back, at most.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from loadgen import HALL
from scenarios import _toml, bench_config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fake_printer import FakePrinter  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

KIOSKS = 16
DAY = "day"  # the 17th kiosk and printer, for part 2
CUT = b"\x1dV"  # every ticket ends with one (GS V), and nothing else on the stream holds it


def kiosk_token(name: str) -> str:
    return f"bench-kiosk-{name}-token"


def printer_token(name: str) -> str:
    return f"bench-printer-{name}-token"


NAMES = [*(f"{i:02d}" for i in range(1, KIOSKS + 1)), DAY]


def hall_file(directory: Path) -> tuple[Path, str]:
    """The bench hall with a kiosk and its printer per name; the path and a category."""
    text, categories = bench_config(1)
    lines = [text]
    for name in NAMES:
        for kind, token in (("kiosk", kiosk_token(name)), ("printer", printer_token(name))):
            lines += [
                "[[devices]]",
                f"id = {_toml(f'{kind}-{name}')}",
                f"kind = {_toml(kind)}",
                f"token_sha256 = {_toml(hashlib.sha256(token.encode()).hexdigest())}",
                *([f"printer = {_toml(f'printer-{name}')}"] if kind == "kiosk" else []),
                "",
            ]
    path = directory / "printing-hall.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, categories[0]


class AgentProcess:
    def __init__(self, name: str, hall_url: str, printer: FakePrinter, directory: Path) -> None:
        self.config = directory / f"agent-{name}.toml"
        self.config.write_text(
            f"hall_url = {_toml(hall_url)}\n"
            f"token = {_toml(printer_token(name))}\n"
            f"printer = {_toml(printer.address)}\n"
            "paper = 80\n"
            f"state = {_toml(str(directory / f'agent-{name}'))}\n",
            encoding="utf-8",
        )
        self.log = directory / f"agent-{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hall.cli", "printer-agent", "--config", str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def printed(printer: FakePrinter) -> int:
    """Whole tickets received so far (cheap: counts the cuts)."""
    return sum(bytes(stream).count(CUT) for stream in list(printer.connections))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(label: str, values: list[float]) -> str:
    return (
        f"   {label:24s} p50 {ms(pct(values, 0.5))}  p99 {ms(pct(values, 0.99))}  "
        f"max {ms(max(values))}  mean {ms(statistics.fmean(values))}  (n={len(values)})"
    )


async def wait_online(client: httpx.AsyncClient, hall: str, devices: set[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        snapshot = (await client.get(f"/api/halls/{hall}/snapshot")).json()
        status = {d["id"]: d["status"] for d in snapshot["devices"]}
        if all(status.get(d) == "online" for d in devices):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"agents not online after 60 s: {status}")
        await asyncio.sleep(0.2)


async def taps(
    server: ServerProcess, hall: str, category: str, printers: dict[str, FakePrinter], count: int
) -> tuple[list[float], list[float]]:
    """Part 1: every kiosk taps ``count`` + 1 times; the latencies of all but each first."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=len(printers))
    to_print: list[float] = []
    to_reply: list[float] = []
    start = asyncio.Event()

    def printed_at(printer: FakePrinter, n: int) -> float:
        printer.wait_for_tickets(n, timeout=60)
        return time.perf_counter()

    async def kiosk(name: str) -> None:
        headers = {"Authorization": f"Bearer {kiosk_token(name)}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            await start.wait()
            for i in range(count + 1):
                tapped = time.perf_counter()
                reply = await client.post(f"/api/halls/{hall}/tickets", json={"category": category})
                replied = time.perf_counter()
                assert reply.status_code == 201, reply.text
                done = await loop.run_in_executor(pool, printed_at, printers[name], i + 1)
                if i:
                    to_print.append(done - tapped)
                    to_reply.append(replied - tapped)

    tasks = [asyncio.create_task(kiosk(name)) for name in printers]
    await asyncio.sleep(0.5)  # every client made
    start.set()
    await asyncio.gather(*tasks)
    pool.shutdown()
    return to_print, to_reply


async def day(
    server: ServerProcess, hall: str, category: str, printer: FakePrinter, count: int, off: float
) -> None:
    """Part 2: ``count`` tickets through one kiosk; the printer is off twice meanwhile."""
    issued: list[str] = []
    drops: list[str] = []

    async def drop_twice() -> None:
        for share in (1 / 3, 2 / 3):
            while printed(printer) < count * share:  # noqa: ASYNC110 - another thread's bytes
                await asyncio.sleep(0.02)
            # Not at the instant a ticket arrived (which the loop above would pick): see README.
            await asyncio.sleep(random.uniform(0, 0.05))
            await asyncio.to_thread(printer.stop)
            drops.append(f"off at {printed(printer)} printed")
            await asyncio.sleep(off)
            await asyncio.to_thread(printer.start)

    headers = {"Authorization": f"Bearer {kiosk_token(DAY)}"}
    began = time.perf_counter()
    dropping = asyncio.create_task(drop_twice())
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        for _ in range(count):
            reply = await client.post(f"/api/halls/{hall}/tickets", json={"category": category})
            assert reply.status_code == 201, reply.text
            issued.append(reply.json()["number"])
    issuing = time.perf_counter() - began
    await dropping
    # Until every ticket is printed, or nothing more comes for 30 s (a ticket lost).
    last, quiet_since = printed(printer), time.perf_counter()
    while last < count and time.perf_counter() - quiet_since < 30:
        await asyncio.sleep(0.05)
        if (now := printed(printer)) != last:
            last, quiet_since = now, time.perf_counter()
    wall = time.perf_counter() - began if last >= count else float("nan")
    await asyncio.sleep(1.0)  # a ticket printed twice at the end would show by now
    numbers = printer.numbers()
    counts = Counter(numbers)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    missing = len(set(issued) - set(counts))
    in_order = list(dict.fromkeys(numbers)) == issued
    print(f"2. a day: {count:,} tickets through one kiosk and its printer, which drops twice")
    print(f"   printer {', '.join(drops)}, each for {off:g} s")
    print(f"   issued {len(issued):,} in {issuing:.1f} s ({len(issued) / issuing:.0f}/s)")
    print(
        f"   printed {len(numbers):,}  duplicates {duplicates}  missing {missing}  "
        f"in issue order: {'yes' if in_order else 'NO'}"
    )
    print(f"   wall time, first tap to last ticket printed: {wall:.1f} s")
    verdict = "PASS" if duplicates == 0 and missing == 0 and in_order else "FAIL"
    print(f"   none lost or doubled: {verdict}")


async def run(args: argparse.Namespace, directory: Path) -> None:
    path, category = hall_file(directory)
    hall = HALL
    server = ServerProcess(
        "--config",
        str(path),
        "--data",
        str(directory / "data"),
        "--no-speech",
        log=directory / "hall.log",
    )
    names = NAMES
    printers = {name: FakePrinter().start() for name in names}
    agents: list[AgentProcess] = []
    try:
        server.start()
        url = f"ws://127.0.0.1:{server.port}/ws/halls/{hall}/devices"
        agents = [AgentProcess(n, url, printers[n], directory) for n in names]
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await wait_online(client, hall, {f"printer-{n}" for n in names})
        print(f"hall serve (SQLite, no speech) and {len(agents)} printer agent processes")
        print(f"1. tap -> printed: {KIOSKS} kiosks at once, {args.taps} taps each (closed loop)")
        kiosks = {name: printers[name] for name in names if name != DAY}
        to_print, to_reply = await taps(server, hall, category, kiosks, args.taps)
        print(line("tap -> ticket printed", to_print))
        print(line("tap -> POST reply", to_reply))
        print()
        await day(server, hall, category, printers[DAY], args.day, args.off)
    finally:
        for agent in agents:
            agent.stop()
        server.stop()
        for printer in printers.values():
            printer.stop()
    if "Traceback" in "".join(a.log.read_text() for a in agents):
        print(f"(an agent logged a traceback: see {directory})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taps", type=int, default=30, help="taps per kiosk in part 1")
    parser.add_argument("--day", type=int, default=5000, help="tickets in part 2")
    parser.add_argument("--off", type=float, default=2.0, help="seconds the printer is off")
    parser.add_argument("--quick", action="store_true", help="--taps 10 --day 1000")
    parser.add_argument("--keep", action="store_true", help="keep the logs and the journal")
    args = parser.parse_args()
    if args.quick:
        args.taps, args.day = 10, 1000
    directory = Path(tempfile.mkdtemp(prefix="hall-bench-printing-"))
    try:
        asyncio.run(run(args, directory))
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
