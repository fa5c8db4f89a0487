"""The kiosk page (built by issue 8)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
PAGES: tuple[Any, ...] = ()
