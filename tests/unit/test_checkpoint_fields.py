"""A checkpoint must carry every field of the hall state: one it forgot would silently vanish at
the next start-up (as today's idempotency keys once did)."""

from __future__ import annotations

import dataclasses

import msgspec

from hall import checkpoint
from hall.domain.state import HallState

# Rebuilt rather than stored: the config is the running one, the lanes are the queues by priority.
REBUILT = {"config", "lanes"}


def test_every_state_field_is_in_the_checkpoint() -> None:
    stored = {f.name for f in msgspec.structs.fields(checkpoint._Checkpoint)}
    state_fields = {f.name for f in dataclasses.fields(HallState)} - REBUILT
    assert state_fields - stored == set()
