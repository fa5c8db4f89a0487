"""Appointment slots are taken only from the slot's end back, up to the hall's booking horizon."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hall.config import load
from hall.domain import errors
from hall.domain.commands import IssueTicket
from hall.domain.decide import decide
from hall.settings import DEFAULT_CONFIG
from scheduling.policy import profile_order
from tests.unit.conftest import T0, Driver

SLOT = timedelta(minutes=30)  # the default hall's appointment slot
HORIZON = timedelta(days=30)  # hall.booking_days's default


def _issue(slot_start_from_now: timedelta) -> list[object]:
    hall = Driver(load(DEFAULT_CONFIG))
    command = IssueTicket(
        category="general", priority="appointment", appointment=T0 + slot_start_from_now
    )
    return list(decide(hall.state, command, T0, profile_order))


@pytest.mark.parametrize("offset", [-SLOT, -SLOT / 2, timedelta(0), HORIZON])
def test_a_slot_not_yet_over_and_within_the_horizon_is_taken(offset: timedelta) -> None:
    assert len(_issue(offset)) == 1


@pytest.mark.parametrize(
    "offset", [-SLOT - timedelta(seconds=1), -timedelta(days=9000), HORIZON + timedelta(seconds=1)]
)
def test_a_slot_over_or_beyond_the_horizon_is_refused(offset: timedelta) -> None:
    with pytest.raises(errors.InvalidInput):
        _issue(offset)
