"""The console's event feeds share one NATS connection, against a real nats-server: many
tails and a dead-letter call make one connection (as the server's ``/connz`` counts
them), the console's close (after its drain, when the gateway stops) closes it, twice
without harm, and a tail outlives a NATS restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import NoReturn

import pytest

from gateway.catalog import Catalog
from gateway.console import Console, NatsEvents
from gateway.console.events import EventsUnavailable
from tests.support.nats_servers import MonitoredNats
from tests.support.waiting import until

#: A tail hears again within this long after NATS is back (nats-py retries every 0.25 s).
BACK_WITHIN_SECONDS = 15.0
NAME = "plugmesh-gateway-console"
NOT_AN_ENVELOPE = b"not an envelope"


@pytest.fixture
async def monitored(tmp_path: Path) -> AsyncIterator[MonitoredNats]:
    running = MonitoredNats(tmp_path)
    await running.start()
    yield running
    await running.stop()


async def _next(
    frames: AsyncGenerator[bytes, None], event: str, timeout_seconds: float = 5.0
) -> bytes:
    async with asyncio.timeout(timeout_seconds):
        async for raw in frames:
            if raw.startswith(f"event: {event}\n".encode()):
                return raw
    raise AssertionError(f"the feed ended before an {event!r} frame")


async def test_many_tails_and_calls_share_one_connection_closed_by_close(
    monitored: MonitoredNats,
) -> None:
    events = NatsEvents(monitored.url)
    tails = [await events.tail("", "") for _ in range(6)]
    try:
        for tail in tails:
            await _next(tail, "ready")
        letters = await events.dead_letters()
        shared = await monitored.connections(NAME)
        await monitored.publish("plugmesh.events.test.happened", NOT_AN_ENVELOPE)
        heard = [await _next(tail, "event") for tail in tails]
        for tail in tails[:3]:
            await tail.aclose()
        after_some_left = await monitored.connections(NAME)
    finally:
        for tail in tails:
            await tail.aclose()
    still_open = await monitored.connections(NAME)
    console = Console(Catalog("127.0.0.1:1"), _Nobody(), events)  # never started
    console.drain()
    await console.close()
    await console.close()
    await until(lambda: _counted(monitored, 0), timeout_seconds=5, what="the connection gone")
    with pytest.raises(EventsUnavailable):
        await events.tail("", "")

    assert letters == []
    assert shared == 1
    assert len(heard) == 6
    assert after_some_left == 1
    assert still_open == 1  # the feeds end; the shared connection stays for the next


async def test_a_tail_hears_events_again_after_nats_restarts(monitored: MonitoredNats) -> None:
    events = NatsEvents(monitored.url)
    tail = await events.tail("test.>", "")
    try:
        await _next(tail, "ready")
        await monitored.restart()
        hearing = asyncio.ensure_future(_next(tail, "event", BACK_WITHIN_SECONDS))
        # Published until it is heard: the tail's subscription comes back with the
        # reconnection, a moment after the server is.
        while not hearing.done():
            await monitored.publish("plugmesh.events.test.again", NOT_AN_ENVELOPE)
            await asyncio.wait([hearing], timeout=0.5)
        heard = hearing.result()
        connections = await monitored.connections(NAME)
    finally:
        await tail.aclose()
        await events.close()

    assert b"plugmesh.events.test.again" in heard
    assert connections == 1


class _Nobody:
    """No caller is ever identified: the console here is only closed."""

    async def identify(self, scope: object) -> NoReturn:
        raise AssertionError("no request is made here")


async def _counted(monitored: MonitoredNats, expected: int) -> bool:
    return await monitored.connections(NAME) == expected
