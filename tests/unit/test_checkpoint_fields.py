"""A checkpoint must carry every field of the hall state: one it forgot would silently vanish at
the next start-up (as today's idempotency keys once did)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import msgspec

from hall import checkpoint
from hall.domain.events import Requested, TicketCalled
from hall.domain.state import HallState

# Rebuilt rather than stored: the config is the running one, the lanes are the queues by priority,
# the layout version only keys caches of this one object.
REBUILT = {"config", "lanes", "layout_version"}


def test_every_state_field_is_in_the_checkpoint() -> None:
    stored = {f.name for f in msgspec.structs.fields(checkpoint._Checkpoint)}
    state_fields = {f.name for f in dataclasses.fields(HallState)} - REBUILT
    assert state_fields - stored == set()


def test_the_digest_survives_a_new_field_with_a_default() -> None:
    """A checkpoint ends on an event journaled before a field was added (it decodes with the
    default): its digest must not change, or every upgrade replays the whole history once."""
    at = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    before = TicketCalled(at=at, ticket="20261123-A001", window="1")
    after = msgspec.structs.replace(before, request=Requested(key="k", digest="d"))
    assert checkpoint.digest(before) == checkpoint.digest(after)
    later = msgspec.structs.replace(before, at=at + timedelta(microseconds=1))
    assert checkpoint.digest(later) != checkpoint.digest(before)  # another event
