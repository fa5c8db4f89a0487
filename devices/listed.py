"""How a device page is listed on the start page (its own module: each page's module declares its
entries, and devices.pages imports every page's module)."""

from __future__ import annotations

import msgspec


class DevicePage(msgspec.Struct, frozen=True):
    """A page a device opens, listed on the start page under its hall. ``path`` is formatted
    with ``hall`` (and ``window`` when ``per_window``)."""

    path: str
    name: str
    name_en: str
    about: str
    about_en: str
    per_window: bool = False
