"""Owning background tasks: cancel them and wait, without swallowing our own cancellation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait"]

log = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` and wait until they have finished; ``None`` stands for no task.

    One task or many: ``await cancel_and_wait(self._task)``,
    ``await cancel_and_wait(*self._tasks)``.

    ``asyncio.wait`` does not raise the tasks' ``CancelledError``, so a cancellation of
    the caller itself still propagates. A task that had failed is logged, not re-raised.
    """
    owned = [task for task in tasks if task is not None]
    for task in owned:
        task.cancel()
    if owned:
        await asyncio.wait(owned)
    for task in owned:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())
