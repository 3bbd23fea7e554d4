"""Owned background tasks are cancelled and awaited, one or many at a time."""

from __future__ import annotations

import asyncio

import pytest

from meshkit.tasks import cancel_and_wait


async def forever() -> None:
    await asyncio.Event().wait()


async def test_one_task_none_or_many_are_cancelled_and_awaited() -> None:
    one = asyncio.create_task(forever())
    many = [asyncio.create_task(forever()) for _ in range(3)]

    await cancel_and_wait(one)
    await cancel_and_wait(None)
    await cancel_and_wait(*many)

    assert all(task.cancelled() for task in (one, *many))


async def test_a_task_that_had_failed_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> None:
        raise RuntimeError("broken")

    task = asyncio.create_task(fail(), name="doomed")
    await asyncio.wait([task])

    await cancel_and_wait(task)

    assert "background task doomed failed" in caplog.text


async def test_the_caller_s_own_cancellation_is_not_swallowed() -> None:
    slow_to_stop = asyncio.Event()

    async def stubborn() -> None:
        try:
            await forever()
        finally:
            await slow_to_stop.wait()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    closing = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0)

    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    slow_to_stop.set()
    await asyncio.wait([task])
