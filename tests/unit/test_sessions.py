"""Staff sessions: tokens by hash with an expiry, and a lock after repeated wrong passwords."""

from __future__ import annotations

import pytest

from hall.api.auth import LOCK_SECONDS, MAX_FAILURES, SESSION_SECONDS, Sessions
from hall.api.errors import TooManyAttempts, Unauthorized
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


async def test_tokens_expire_and_are_kept_by_hash_only(default_config: HallConfig) -> None:
    clock = Clock()
    sessions = Sessions(clock)
    principal = await sessions.verify_password(default_config, "manager", "hall-demo")
    token = sessions.issue(principal)
    assert len(token) >= 43  # 256 random bits
    assert token not in repr(vars(sessions))
    assert sessions.lookup(token) == principal
    clock.now += SESSION_SECONDS + 1
    assert sessions.lookup(token) is None
