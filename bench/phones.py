"""What visitors' phone pages cost the hall server: server CPU per command with N ticket feeds
open (one per waiting ticket, as phones following their tickets), against none.

    .venv/bin/python bench/phones.py              # 0 and 500 phones, 200 commands each
    .venv/bin/python bench/phones.py --phones 0,200,1000 --commands 300

One real ``hall serve`` (SQLite in a temporary directory, no speech, the demo hall). For each
count: that many tickets are issued and each gets its own feed
(``/ws/halls/{hall}/screens/tickets/{id}``, a websockets client in this process, reading every
frame); then staff at 3 windows call, start and finish tickets in turn, one command at a time, and
the server process's CPU time (user + system, from /proc) is read before and after. Every ticket
feed is a hub of its own: each batch projects the ticket again (its place and wait estimate) and
sends a delta to its phone when they changed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import ServerProcess

HALL = "demo-county"
CONFIG = Path(__file__).resolve().parents[1] / "config" / "default.toml"
WINDOWS = ["1", "2", "3"]
STAFF = ["zhangwei", "lina", "manager"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def follow(url: str, frames: list[int], stop: asyncio.Event) -> None:
    async with websockets.connect(url, max_size=2**20) as socket:
        while not stop.is_set():
            try:
                await asyncio.wait_for(socket.recv(), 0.5)
                frames[0] += 1
            except TimeoutError:
                continue


async def run(count: int, commands: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "hall.toml"
        text = CONFIG.read_text(encoding="utf-8").replace(
            "[issuing]\ndevice_seconds = 3", "[issuing]\ndevice_seconds = 0", 1
        )
        config.write_text(text, encoding="utf-8")
        server = ServerProcess(
            "--config",
            str(config),
            "--data",
            str(Path(directory) / "data"),
            "--no-speech",
            log=Path(directory) / "log",
        )
        with server:
            http = httpx.AsyncClient(base_url=f"{server.url}/api/halls/{HALL}", timeout=30)
            pid = server.process.pid  # type: ignore[union-attr]
            kiosk = {"Authorization": "Bearer demo-kiosk-token"}
            ids = []
            for _ in range(max(count, commands)):
                answer = await http.post("/tickets", json={"category": "general"}, headers=kiosk)
                answer.raise_for_status()
                ids.append(answer.json()["id"])
            stop, frames = asyncio.Event(), [0]
            base = f"ws://127.0.0.1:{server.port}/ws/halls/{HALL}/screens/tickets/"
            phones = [asyncio.create_task(follow(base + i, frames, stop)) for i in ids[:count]]
            await asyncio.sleep(1.0 + count / 500)
            auth = {}
            for window, who in zip(WINDOWS, STAFF, strict=True):
                login = await http.post(
                    f"/windows/{window}/login", json={"username": who, "password": "hall-demo"}
                )
                login.raise_for_status()
                auth[window] = {"Authorization": f"Bearer {login.json()['token']}"}
            before, started, sent = cpu_seconds(pid), time.perf_counter(), 0
            latencies = []
            while sent < commands:
                for window in WINDOWS:
                    for action in ("call-next", "start", "finish"):
                        t = time.perf_counter()
                        await http.post(
                            f"/windows/{window}/{action}", json={}, headers=auth[window]
                        )
                        latencies.append(time.perf_counter() - t)
                        sent += 1
            await asyncio.sleep(0.5)
            used = cpu_seconds(pid) - before
            stop.set()
            await asyncio.gather(*phones, return_exceptions=True)
            await http.aclose()
            return {
                "cpu_ms_per_command": used / sent * 1000,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
                "frames_per_command": frames[0] / sent,
                "wall_s": time.perf_counter() - started,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", default="0,500", help="comma-separated counts of phones")
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()
    results = {}
    for count in (int(c) for c in args.phones.split(",")):
        results[count] = figures = asyncio.run(run(count, args.commands))
        print(
            f"{count:5d} phones: {figures['cpu_ms_per_command']:6.2f} ms server CPU per command, "
            f"reply p50 {figures['p50_ms']:.1f} ms p99 {figures['p99_ms']:.1f} ms, "
            f"{figures['frames_per_command']:.1f} frames sent per command",
            flush=True,
        )
    if 0 in results:
        base = results[0]["cpu_ms_per_command"]
        for count, figures in results.items():
            if count:
                extra = (figures["cpu_ms_per_command"] - base) / count * 1000
                print(f"  {count} phones: {extra:.1f} us of server CPU per phone per command")


if __name__ == "__main__":
    main()
