"""What the engine tells an observer (metrics): each command's end, each append's size and time.

The engine calls these hooks and knows nothing of what is done with them; the default observer
does nothing, so the engine runs the same without metrics (tests, the simulator, ``hall replay``).
:class:`hall.metrics.Metrics` is the Prometheus one.
"""

from __future__ import annotations

import asyncio
from typing import Any


class AppendTimer:
    """Returned when an append starts; ``done()`` once it has returned."""

    def done(self) -> None:
        pass


class Observer:
    """Hooks of :class:`hall.engine.HallEngine`; every one is a no-op here."""

    def command(self, hall: str, command: object, future: asyncio.Future[Any]) -> None:
        """A command was queued; ``future`` holds its outcome once it is decided and durable."""

    def append(self, hall: str, events: int, commands: int) -> AppendTimer:
        """A batch of ``commands`` goes to the journal as one append of ``events`` events."""
        return _NO_TIMER


_NO_TIMER = AppendTimer()
NO_OBSERVER = Observer()
