"""bench/screens.py's figures: latency series, the table, the verdicts against the targets."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

TARGET_RATIO = 1.5  # our p99 against the bare broadcast's
TARGET_STALL = 1.10  # p99 with a stalled screen against without
TARGET_KIB = 100.0  # server memory per connected screen


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Series:
    """One server's calls: when each was sent, and when each screen had it."""

    name: str
    sent: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)  # when the last screen had it
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    cpu: float = 0.0  # server CPU seconds over the calls (from before each to after its gap)
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
        spans = [self.last[m] - t for m, t in self.sent.items() if m in self.last]
        return percentile(spans, q) * 1000

    def cpu_ms(self) -> float:
        return self.cpu / max(len(self.sent), 1) * 1000


def conditions() -> str:
    names = ("uvicorn", "websockets", "litestar", "msgspec", "uvloop", "httptools")
    return f"Python {platform.python_version()}, " + ", ".join(f"{n} {_v(n)}" for n in names)


def _v(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def report(f: dict[str, Any], screens: int, calls: int, feed: str) -> bool:
    """Print everything; True if every target is met."""
    ours, stalled, bare = f["ours"], f["stalled"], f["bare"]
    print()
    print(f"call -> screen latency: {screens} screens on each server, {calls} calls to each")
    print(f"  ours:    {feed} of a real hall serve (SQLite, fsync per batch)")
    print("  stalled: the same on a second hall serve with one more screen that never reads")
    print(f"  bare:    websockets.broadcast of the same frame ({f['frame_bytes']} bytes, text)")
    print(f"  {conditions()}, {os.cpu_count()} CPUs")
    print(
        f"  load average {f['load_start'][0]:.2f} at start, {f['load_end'][0]:.2f} at end; "
        f"machine {f['busy'] * 100:.0f} % of a core busy during the calls (of "
        f"{(os.cpu_count() or 1) * 100} %), the screens process {f['client_cpu'] * 100:.0f} %; "
        "screens offer no permessage-deflate"
    )
    print()
    head = f"{'':<26} {'p50':>7} {'p99':>7} {'max':>7} {'last p50':>9} {'last p99':>9}"
    head += f" {'CPU/call':>9} {'missing':>7}"
    print(head)
    print(f"{'':<26} {'ms, every delivery':>23} {'ms, the last screen':>19} {'ms':>10}")
    print("-" * len(head))
    for series in (ours, stalled, bare):
        print(
            f"{series.name:<26} {series.p(0.5):7.1f} {series.p(0.99):7.1f} "
            f"{max(series.latencies, default=0) * 1000:7.1f} {series.last_p(0.5):9.1f} "
            f"{series.last_p(0.99):9.1f} {series.cpu_ms():9.2f} {series.missing:7d}"
        )
    print()
    rss, bare_rss = f["rss"], f["bare_rss"]
    added = rss["connected"] - rss["idle"]
    per = added / screens
    given_back = (rss["connected"] - rss["closed"]) / max(added, 1)
    print(
        f"server RSS (MiB): {rss['idle'] / 1024:.1f} before the screens, "
        f"{rss['connected'] / 1024:.1f} with {screens} ({per:.1f} KiB each), "
        f"{rss['after_calls'] / 1024:.1f} after the calls, {rss['closed'] / 1024:.1f} "
        f"{f['linger']:.0f} s after they closed ({max(given_back, 0):.0%} of it given back), "
        f"{rss['again'] / 1024:.1f} with {screens} new ones"
    )
    bare_per = (bare_rss["connected"] - bare_rss["idle"]) / screens
    print(
        f"bare   RSS (MiB): {bare_rss['idle'] / 1024:.1f}, {bare_rss['connected'] / 1024:.1f} "
        f"with {screens} ({bare_per:.1f} KiB each), {bare_rss['closed'] / 1024:.1f} after"
    )
    per_screen = (ours.cpu_ms() - f["cpu0"] * 1000) / screens * 1000
    bare_screen = bare.cpu_ms() / screens * 1000
    print(
        f"server CPU per call: {f['cpu0'] * 1000:.2f} ms with no screen, {ours.cpu_ms():.2f} ms "
        f"with {screens} ({per_screen:.1f} us per screen; bare {bare_screen:.1f})"
    )
    start, end = f["stall_start"], f["stall_end"]
    print(
        f"stalled screen: {start['client_unread']} bytes unread in its receive buffer, "
        f"{start['server_send_q']} in the server's send queue after {f['fill_issued']} tickets "
        f"were issued to fill it ({start['resyncs']:.0f} screen resynced then), "
        f"{end['server_send_q']} after the calls; screens resynced in all (hall_screen_resyncs): "
        f"{f['resyncs']['stalled']:.0f} on its server, {f['resyncs']['ours']:.0f} on the other"
    )
    ratio = ours.p(0.99) / bare.p(0.99)
    stall = stalled.p(0.99) / ours.p(0.99)
    missing = ours.missing + stalled.missing
    checks = [
        (ratio <= TARGET_RATIO, f"p99 ours / bare = {ratio:.2f} (target <= {TARGET_RATIO})"),
        (
            stall < TARGET_STALL,
            f"p99 with / without a stalled screen = {stall:.2f} (target < {TARGET_STALL})",
        ),
        (per <= TARGET_KIB, f"server memory per screen {per:.1f} KiB (target <= {TARGET_KIB:.0f})"),
        (missing == 0, f"every screen got every call ({missing} deliveries missing)"),
    ]
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return all(ok for ok, _ in checks)
