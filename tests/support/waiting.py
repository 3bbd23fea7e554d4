"""Bounded waits for a condition: what a test does instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually", "until"]

_T = TypeVar("_T")


async def eventually(
    check: Callable[[], Awaitable[_T | None]],
    *,
    timeout_seconds: float = 5.0,
    interval_seconds: float = 0.02,
    what: str = "the condition",
) -> _T:
    """Poll ``check`` until it returns something other than ``None``, then return that.

    Raises:
        AssertionError: ``timeout_seconds`` passed first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while True:
        result = await check()
        if result is not None:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{what} did not hold within {timeout_seconds} s")
        await asyncio.sleep(interval_seconds)


async def until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_seconds: float = 10.0,
    interval_seconds: float = 0.02,
    what: str = "the condition",
) -> None:
    """Poll ``condition`` (plain or async) until it holds.

    Raises:
        AssertionError: ``timeout_seconds`` passed first.
    """

    async def check() -> bool | None:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        return True if held else None

    await eventually(
        check, timeout_seconds=timeout_seconds, interval_seconds=interval_seconds, what=what
    )
