"""Telling the time: one seam, so that tests can hold the clock still.

Code that stamps or compares wall-clock times takes a :class:`Clock`; a process passes
:data:`SYSTEM_CLOCK`, a test a clock it moves by hand::

    class FakeClock:
        def __init__(self) -> None:
            self.time = dt.datetime.now(dt.UTC)

        def now(self) -> dt.datetime:
            return self.time

Times are aware, in UTC. (Durations and timeouts use :func:`time.monotonic`, not this.)
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Tells the time."""

    def now(self) -> dt.datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        """The current time, aware, in UTC."""
        return dt.datetime.now(dt.UTC)


#: The clock of every process; tests pass their own.
SYSTEM_CLOCK: Clock = SystemClock()
