"""Staff sessions and the limits at the edge: tokens by hash with an expiry, every session of a
person ended at once, locks after repeated wrong passwords, bounded maps, kiosk issuing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hall.api.auth import Sessions, token_hash
from hall.api.errors import Busy, TooManyAttempts, Unauthorized
from hall.api.ratelimits import (
    LOCK_SECONDS,
    MAX_ADDRESS_FAILURES,
    MAX_FAILURES,
    Capped,
    IssueLimiter,
    LoginLimiter,
)
from hall.api.session_store import SESSION_SECONDS
from hall.config import HallConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_lock_lifts_after_its_time(default_config: HallConfig) -> None:
    clock = Clock()
    sessions = Sessions(clock)
    for _ in range(MAX_FAILURES):
        with pytest.raises(Unauthorized):
            await sessions.verify_password(default_config, "lina", "guess")
    with pytest.raises(TooManyAttempts):
        await sessions.verify_password(default_config, "lina", "hall-demo")
    clock.now += LOCK_SECONDS + 1
    principal = await sessions.verify_password(default_config, "lina", "hall-demo")
    assert (principal.name, principal.role) == ("lina", "staff")
    # A success forgets the failures: one more wrong password does not lock again.
    with pytest.raises(Unauthorized):
        await sessions.verify_password(default_config, "lina", "guess")


async def test_parallel_guesses_each_count(default_config: HallConfig) -> None:
    """The attempt is counted before the slow check: 12 guesses at once, only 5 are checked."""
    clock = Clock()
    sessions = Sessions(clock, LoginLimiter(clock, check_wait=60))  # a loaded machine is slow
    results = await asyncio.gather(
        *(sessions.verify_password(default_config, "lina", f"guess{i}") for i in range(12)),
        return_exceptions=True,
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds.count("Unauthorized") == MAX_FAILURES, kinds
    assert kinds.count("TooManyAttempts") == 12 - MAX_FAILURES, kinds


def test_an_address_sweeping_usernames_is_locked_too() -> None:
    limiter = LoginLimiter(Clock())
    for i in range(MAX_ADDRESS_FAILURES):
        limiter.attempt("h", f"user{i}", "10.0.0.9")
        limiter.failed("h", "10.0.0.9")
    with pytest.raises(TooManyAttempts):
        limiter.attempt("h", "someone-else", "10.0.0.9")
    limiter.attempt("h", "someone-else", "10.0.0.10")  # another address is not affected


async def test_staff_logging_in_together_behind_one_address_are_not_locked() -> None:
    """Opening time: more staff than the address limit log in at once from one router; waiting
    for a turn at the costly check is no failure."""
    limiter = LoginLimiter(Clock(), check_wait=60, parallel=1)

    async def login(username: str) -> None:
        at = limiter.attempt("h", username, "10.0.0.1")
        assert await limiter.check(lambda: True, ("h", "10.0.0.1"))
        limiter.succeeded("h", username, "10.0.0.1", at)

    await asyncio.gather(*(login(f"staff{i}") for i in range(3 * MAX_ADDRESS_FAILURES)))
    assert limiter.sizes() == (0, 0)


def test_a_flood_of_invented_usernames_does_not_push_a_lock_out() -> None:
    limiter = LoginLimiter(Clock(), max_keys=100)
    for _ in range(MAX_FAILURES):
        limiter.attempt("h", "lina", "10.0.0.1")
    for i in range(1000):  # each from its own address, as a botnet (or IPv6 range) would
        limiter.attempt("h", f"nobody-{i}", f"10.1.{i // 250}.{i % 250}")
    with pytest.raises(TooManyAttempts):
        limiter.attempt("h", "lina", "10.0.0.2")
    assert limiter.sizes()[0] <= 101  # the lock is kept, the rest stays bounded


async def test_costly_checks_are_capped_and_the_rest_told_to_come_back() -> None:
    limiter = LoginLimiter(Clock(), check_wait=0.05, parallel=2)
    release = threading.Event()
    running = [asyncio.create_task(limiter.check(release.wait)) for _ in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(Busy) as busy:
        await limiter.check(lambda: True)
    assert busy.value.detail["retry_after"] >= 1
    release.set()
    assert await asyncio.gather(*running) == [True, True]
    assert await limiter.check(lambda: True)


def test_a_capped_map_forgets_the_least_recently_touched_key() -> None:
    capped: Capped[str, int] = Capped(2)
    capped.put("a", 1)
    capped.put("b", 2)
    capped.get("a")
    capped.put("c", 3)
    assert (capped.get("a"), capped.get("b"), capped.get("c"), len(capped)) == (1, None, 3, 2)


def test_failure_maps_stay_bounded() -> None:
    limiter = LoginLimiter(Clock(), max_keys=100)
    for i in range(5000):
        limiter.attempt("h", f"nobody-{i}", f"10.0.{i // 250}.{i % 250}")
        limiter.failed("h", f"10.0.{i // 250}.{i % 250}")
    assert limiter.sizes() == (100, 100)


async def test_tokens_expire_and_are_kept_by_hash_only(default_config: HallConfig) -> None:
    clock = Clock()
    sessions = Sessions(clock)
    principal = await sessions.verify_password(default_config, "manager", "hall-demo")
    token = await sessions.issue(principal)
    assert len(token) >= 43  # 256 random bits
    assert token not in repr(vars(sessions)) + repr(vars(sessions.store))
    assert await sessions.lookup(token_hash(token)) == principal
    clock.now += SESSION_SECONDS + 1
    assert await sessions.lookup(token_hash(token)) is None


def test_a_device_gets_a_burst_then_one_ticket_per_interval() -> None:
    clock = Clock()
    limits = IssueLimiter(clock)
    for _ in range(3):
        limits.take("h", "kiosk-1", 4.0, 3)
    with pytest.raises(TooManyAttempts) as refused:
        limits.take("h", "kiosk-1", 4.0, 3)
    assert refused.value.detail["retry_after"] == 4
    limits.take("h", "kiosk-2", 4.0, 3)  # each device has its own bucket
    clock.now += 4
    limits.take("h", "kiosk-1", 4.0, 3)
    with pytest.raises(TooManyAttempts):
        limits.take("h", "kiosk-1", 4.0, 3)
