"""The report: the machine's context, the table of rows, the verdicts against the targets, notes and
profiles."""

from __future__ import annotations

import contextlib
import cProfile
import io
import math
import os
import platform
import pstats
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from loadgen import TARGET_P99_MS, TARGET_RATE, percentile
from scenarios import Row

TRIVIAL_RATIO = 0.5  # durable commands over HTTP against the trivial route, same run


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
    for backend in dict.fromkeys(r.backend for r in rows):
        http = [r for r in rows if r.backend == backend and r.layer == "http"]
        durable = next((r for r in http if r.mode == "group commit" and "closed" in r.load), None)
        trivial = next((r for r in http if r.mode == "trivial POST"), None)
        if durable is None or trivial is None or not trivial.result["rate"]:
            continue
        ratio = durable.result["rate"] / trivial.result["rate"]
        lines.append(
            f"{'PASS' if ratio >= TRIVIAL_RATIO else 'FAIL'}  {backend} HTTP durable / trivial: "
            f"{durable.result['rate']:.0f} / {trivial.result['rate']:.0f} req/s = {ratio:.2f} "
            f"(>= {TRIVIAL_RATIO}, closed loop, same server, same clients, same run)"
        )
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
