"""Who a window calls next: the calling-policy interface and the registry the engine reads.

A policy is a pure function ``choose(state, window, now) -> Ticket | None``: it reads the hall state
(never changes it) and returns the waiting ticket the window should call, or None. It may only
return a ticket the window is allowed to call (see :func:`eligible_queues`): one transferred to the
window by name, or one of a category in the window's current work profile. The hall config names
the policy (``hall.policy``); :func:`policy_named` resolves it. The policies themselves live in
:mod:`scheduling.policies`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from scheduling.policies import (
    deadline,
    eligible_queues,
    first_by_priority,
    longest_wait,
    novosga,
    novosga_weighted,
    profile_order,
    reserve,
    weighted,
)

if TYPE_CHECKING:
    from hall.domain.state import HallState, Ticket

Policy = Callable[["HallState", str, datetime], "Ticket | None"]

POLICIES: dict[str, Policy] = {
    "profile-order": profile_order,
    "novosga": novosga,
    "novosga-weighted": novosga_weighted,
    "longest-wait": longest_wait,
    "deadline": deadline,
    "weighted": weighted,
    "reserve": reserve,
}


def policy_named(name: str) -> Policy:
    """The registered policy called ``name``; KeyError naming the known ones otherwise."""
    try:
        return POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown calling policy {name!r}; known: {', '.join(POLICIES)}") from None


__all__ = [
    "POLICIES",
    "Policy",
    "deadline",
    "eligible_queues",
    "first_by_priority",
    "longest_wait",
    "novosga",
    "novosga_weighted",
    "policy_named",
    "profile_order",
    "reserve",
    "weighted",
]
