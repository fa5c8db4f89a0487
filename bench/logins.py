"""Login storms against a real ``hall serve``: what they cost the server and what gets through.

    .venv/bin/python bench/logins.py

1. 32 logins at once with invented usernames (one client address): statuses, the server's peak
   RSS against its idle RSS, and snapshot latency meanwhile (a screen's read).
2. 40 wrong passwords at once for one real username (from a fresh address' point of view, after a
   restart): how many were checked (401) before the lock (429).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.redis import free_port  # noqa: E402

BASE = "/api/halls/demo-county"


def rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


async def _started(client: httpx.AsyncClient) -> None:
    for _ in range(600):
        try:
            if (await client.get(f"{BASE}/snapshot")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("hall serve did not start")


async def storm(username: str | None, count: int) -> None:
    port = free_port()
    command = [sys.executable, "-m", "hall.cli", "serve", "--port", str(port)]
    command += ["--data", tempfile.mkdtemp()]
    server = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await _started(client)
            await asyncio.sleep(0.5)
            idle = peak = rss_mb(server.pid)
            reads: list[float] = []
            done = False

            async def read() -> None:
                nonlocal peak
                while not done:
                    peak = max(peak, rss_mb(server.pid))
                    start = time.perf_counter()
                    await client.get(f"{BASE}/snapshot")
                    reads.append(time.perf_counter() - start)
                    await asyncio.sleep(0.01)

            reader = asyncio.create_task(read())
            start = time.perf_counter()
            logins = [
                client.post(
                    f"{BASE}/windows/2/login",
                    json={"username": username or f"nobody-{i}", "password": f"guess-{i}"},
                )
                for i in range(count)
            ]
            statuses = Counter(r.status_code for r in await asyncio.gather(*logins))
            took = time.perf_counter() - start
            done = True
            await reader
    finally:
        server.terminate()
        await server.wait()
    who = f"wrong passwords for {username!r}" if username else "invented usernames"
    print(f"{count} logins at once, {who}: {dict(sorted(statuses.items()))} in {took:.1f} s")
    print(
        f"  server RSS {idle} MB idle, {peak} MB peak ({peak / idle:.1f}x); snapshot meanwhile "
        f"p50 {statistics.median(reads) * 1000:.0f} ms, max {max(reads) * 1000:.0f} ms"
    )


async def main() -> None:
    await storm(None, 32)
    await storm("lina", 40)


if __name__ == "__main__":
    asyncio.run(main())
