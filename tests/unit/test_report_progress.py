"""``hall report``'s catch-up progress: a bar on a terminal, lines in a log only when long."""

from __future__ import annotations

import io

from hall.reports.command import Bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal() -> None:
    out = Terminal()
    bar = Bar(out)
    for done in range(0, 100_001, 5_000):
        bar.update(done, 100_000)
    bar.done()
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert frames[0].startswith("catching up ......") and "0/100,000 events" in frames[0]
    assert frames[-1].startswith("catching up " + "#" * Bar.WIDTH + " 100,000/100,000 events")
    assert 10 <= len(frames) <= Bar.WIDTH + 1  # redrawn as it fills, not for every page
    assert text.endswith("\n")


def test_a_log_gets_tenths_only_when_long() -> None:
    quick = io.StringIO()
    bar = Bar(quick)
    for done in range(0, 10_001, 1_000):
        bar.update(done, 10_000)
    bar.done()
    assert quick.getvalue() == ""  # done before it could matter
    slow = io.StringIO()
    bar = Bar(slow)
    bar.QUIET_SECONDS = 0.0
    for done in range(0, 10_001, 500):
        bar.update(done, 10_000)
    bar.done()
    lines = slow.getvalue().splitlines()
    assert lines[0] == "catching up: 0/10,000 events (0%)"
    assert lines[-1] == "catching up: 10,000/10,000 events (100%)"
    assert len(lines) == 11
    nothing = io.StringIO()
    Bar(nothing).update(0, 0)  # nothing to fold: nothing said
    assert nothing.getvalue() == ""
