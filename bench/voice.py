"""Spoken announcements: cold synthesis per phrase, and call -> announcement audio through a real
``hall serve``, cold and warm.

    .venv/bin/python bench/voice.py               # about half a minute
    .venv/bin/python bench/voice.py --calls 500

1. Cold synthesis: the speech worker (displays/voice/worker.py, pyttsx3 + espeak-ng in its own
   process) renders every segment of the demo hall once, as start-up does; the time of each
   render as the server sees it (request written to answer read), per language.
2. Cold start: ``hall serve`` on an empty segment cache; one call at once, and its WAV asked for
   right away (it waits for the segments it needs); then how long the background pre-render
   took (from the server's log).
3. Warm: ``hall serve`` again on the cache it filled; ``--calls`` calls at one window (call-next,
   then GET of that call's WAV at once, then start and finish, unmeasured). call -> audio is from
   sending call-next to having the whole WAV; also the GET alone (a new number: joined then) and
   a second GET of it (what every other screen and a recall get: the joined-WAV cache).

Target: call -> announcement audio <= 300 ms p99 warm.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from displays.voice.cache import SegmentCache  # noqa: E402
from displays.voice.plan import segments  # noqa: E402
from displays.voice.renderer import Renderer  # noqa: E402
from displays.voice.wav import RATE, decode  # noqa: E402
from hall.config import load  # noqa: E402
from hall.settings import DEFAULT_CONFIG  # noqa: E402
from tests.support.redis import free_port  # noqa: E402

HALL = "demo-county"
BASE = f"/api/halls/{HALL}"
WINDOW = "1"
TARGET_P99_MS = 300.0


def ms(seconds: float) -> float:
    return seconds * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {ms(pct(values, 0.5)):7.1f} ms  p99 {ms(pct(values, 0.99)):7.1f} ms  "
        f"max {ms(max(values)):7.1f} ms  (n={len(values)})"
    )


async def cold_synthesis(cache_dir: Path) -> None:
    config = load(DEFAULT_CONFIG)
    wanted = segments(config)
    cache = SegmentCache(cache_dir)
    renderer = Renderer()
    started = time.perf_counter()
    hello = await renderer.start()
    boot = time.perf_counter() - started
    if hello.voices is None:
        raise SystemExit(f"no speech engine: {hello.error} (apt-get install espeak-ng)")
    times: dict[str, list[float]] = {}
    seconds_of_audio = 0.0
    try:
        for segment in wanted:
            begun = time.perf_counter()
            await renderer.render(segment, cache.path(segment))
            times.setdefault(segment.voice, []).append(time.perf_counter() - begun)
            seconds_of_audio += len(decode(cache.path(segment).read_bytes())) / RATE
    finally:
        await renderer.close()
    total = time.perf_counter() - started
    print("1. cold synthesis (worker process, one segment per request)")
    print(f"   worker start (python, pyttsx3.init, voice list): {ms(boot):.0f} ms")
    for voice, values in times.items():
        print(f"   {voice:22s} per phrase: {summary(values)}")
    every = [v for values in times.values() for v in values]
    print(
        f"   all {len(every)} segments: {total:.2f} s with the start "
        f"({seconds_of_audio:.1f} s of audio, padding included)\n"
    )


class Server:
    def __init__(self, data: Path, cache: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        command = [sys.executable, "-m", "hall.cli", "serve", "--port", str(self.port)]
        command += ["--data", str(data), "--voice-cache", str(cache)]
        self.started = time.perf_counter()
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.client.get("/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"hall serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.02)
        self.ready_after = time.perf_counter() - self.started

    def prerender_seconds(self, timeout: float = 120) -> tuple[float, str]:
        """Wait for the server's pre-render line; its duration and the line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"voice: (\d+) of (\d+) segments ready.* in ([0-9.]+) s", self.text())
            if found:
                return float(found[3]), found[0]
            time.sleep(0.05)
        raise SystemExit(f"no pre-render line in the log:\n{self.text()[-2000:]}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def login(self) -> dict[str, str]:
        answer = self.client.post(
            f"{BASE}/windows/{WINDOW}/login",
            json={"username": "zhangwei", "password": "hall-demo"},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def issue(self, auth: dict[str, str], count: int) -> None:
        for _ in range(count):  # staff issue without a kiosk's rate limit
            self.client.post(f"{BASE}/tickets", json={"category": "general"}, headers=auth)

    def call(self, auth: dict[str, str]) -> tuple[float, float, float, int]:
        """call -> whole WAV, the GET alone, a second GET; and the WAV's size."""
        begun = time.perf_counter()
        called = self.client.post(f"{BASE}/windows/{WINDOW}/call-next", headers=auth)
        called.raise_for_status()
        number = called.json()["ticket"]["number"]
        asked = time.perf_counter()
        wav = self.client.get(f"{BASE}/announcements/{number}/{WINDOW}.wav")
        done = time.perf_counter()
        if wav.status_code != 200 or not wav.content.startswith(b"RIFF"):
            raise SystemExit(f"GET of the WAV answered {wav.status_code}: {wav.text[:200]}")
        again = time.perf_counter()
        self.client.get(f"{BASE}/announcements/{number}/{WINDOW}.wav").raise_for_status()
        second = time.perf_counter() - again
        for step in ("start", "finish"):
            body = {"outcome": "done"} if step == "finish" else None
            self.client.post(f"{BASE}/windows/{WINDOW}/{step}", json=body, headers=auth)
        return done - begun, done - asked, second, len(wav.content)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="warm calls (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-voice-bench-") as tmp:
        work = Path(tmp)
        (work / "synthesis").mkdir()
        asyncio.run(cold_synthesis(work / "synthesis"))

        cold = Server(work / "data-cold", work / "cache", work / "cold.log")
        try:
            auth = cold.login()
            cold.issue(auth, 1)
            first, _, _, _ = cold.call(auth)
            seconds, line = cold.prerender_seconds()
        finally:
            cold.stop()
        print("2. cold start (empty segment cache)")
        print(f"   server ready (/ready 200) after {cold.ready_after:.2f} s")
        print(f"   first call -> its WAV, while the pre-render runs: {ms(first):.0f} ms")
        print(f"   pre-render in the background: {seconds:.1f} s  [{line}]\n")

        warm = Server(work / "data-warm", work / "cache", work / "warm.log")
        try:
            _, line = warm.prerender_seconds()
            auth = warm.login()
            warm.issue(auth, args.calls)
            results = [warm.call(auth) for _ in range(args.calls)]
        finally:
            warm.stop()
        total = [r[0] for r in results]
        get = [r[1] for r in results]
        second = [r[2] for r in results]
        size = statistics.mean(r[3] for r in results)
        print(f"3. warm (segments from the cache: {line})")
        print(f"   call -> whole WAV : {summary(total)}")
        print(f"   GET, new number   : {summary(get)}")
        print(f"   GET, second time  : {summary(second)}")
        print(f"   WAV: {size / 1024:.0f} KiB, {(size - 44) / 2 / RATE:.1f} s (chime, zh, en)\n")
        p99 = ms(pct(total, 0.99))
        verdict = "PASS" if p99 <= TARGET_P99_MS else "FAIL"
        print(f"{verdict}  call -> announcement audio p99 {p99:.1f} ms (<= {TARGET_P99_MS:g} ms)")
        return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
