"""Several halls for tests of a region: the demo hall under other ids."""

from __future__ import annotations

import msgspec

from hall.config import HallConfig, load
from hall.settings import DEFAULT_CONFIG


def several_halls(count: int) -> list[HallConfig]:
    demo = load(DEFAULT_CONFIG)
    return [
        msgspec.structs.replace(demo, hall=msgspec.structs.replace(demo.hall, id=f"hall-{i}"))
        for i in range(1, count + 1)
    ]
