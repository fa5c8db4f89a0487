"""What a device link may cost before its hello, and how often a device may say hello."""

from __future__ import annotations

from devices.limits import Pending, Rate


def test_pending_hellos_push_out_the_oldest_of_the_address_then_of_all() -> None:
    pending: Pending[str] = Pending(max_total=4, max_per_address=2)
    assert pending.add("a1", "A") is None and pending.add("a2", "A") is None
    assert pending.add("a3", "A") == "a1"  # its address is full: its own oldest goes
    assert pending.add("b1", "B") is None and pending.add("c1", "C") is None
    assert pending.add("d1", "D") == "a2"  # all are full: the oldest of all goes
    assert len(pending) == 4
    pending.remove("a3")  # it said hello
    pending.remove("a3")  # and went: removing twice is harmless
    assert len(pending) == 3 and pending.add("a4", "A") is None
    assert pending.add("a5", "A") == "b1"
    assert pending.add("a6", "A") == "a4"
    assert len(pending) == 4


def test_a_rate_counts_only_what_it_lets_through() -> None:
    rate = Rate(limit=3, seconds=60.0)
    assert [rate.take("kiosk", t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
    assert rate.take("kiosk", 10.0) == 50.0  # until the first is a minute old
    assert rate.take("pad", 10.0) == 0.0  # per key
    assert rate.take("kiosk", 59.0) == 1.0  # refusals did not push the wait further
    assert rate.take("kiosk", 60.0) == 0.0
    assert rate.take("kiosk", 60.5) == 0.5
