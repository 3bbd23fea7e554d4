"""A wake-up signal that may be set from any thread."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["Wakeup"]


class Wakeup:
    """An ``asyncio.Event`` whose :meth:`set` is safe from any thread."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    def bind(self) -> None:
        """Remember the running loop: :meth:`set` from other threads goes through it."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def set(self) -> None:
        """Wake the waiter."""
        if self._loop is None or threading.get_ident() == self._thread:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        """Forget earlier wake-ups."""
        self._event.clear()

    async def wait(self) -> None:
        """Wait for a wake-up."""
        await self._event.wait()
