"""The console's event feeds share one NATS connection, against a real nats-server: many
tails and a dead-letter call make one connection (as the server's ``/connz`` counts
them), the console's close (after its drain, when the gateway stops) closes it, twice
without harm, and a tail outlives a NATS restart."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import NoReturn

import httpx
import nats
import pytest

from gateway.catalog import Catalog
from gateway.console import Console, NatsEvents
from gateway.console.events import EventsUnavailable
from launcher.natsd import NatsServer
from tests.support.waiting import until

#: A tail hears again within this long after NATS is back (nats-py retries every 0.25 s).
BACK_WITHIN_SECONDS = 15.0
NAME = "plugmesh-gateway-console"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Monitored:
    """A nats-server with its monitoring endpoint on, to count its connections."""

    def __init__(self, tmp_path: Path) -> None:
        self.monitor = _free_port()
        self.store = tmp_path / "jetstream"
        self.log = tmp_path / "nats.log"
        self.server = self._server(port=0)

    def _server(self, *, port: int) -> NatsServer:
        extra = ("-m", str(self.monitor))
        return NatsServer(self.store, port=port, log_path=self.log, extra_args=extra)

    async def restart(self) -> None:
        port = self.server.port
        await self.server.stop()
        self.server = self._server(port=port)
        await self.server.start()

    async def console_connections(self) -> int:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{self.monitor}/connz")
        return sum(1 for c in answer.json().get("connections") or () if c.get("name") == NAME)


@pytest.fixture
async def monitored(tmp_path: Path) -> AsyncIterator[Monitored]:
    running = Monitored(tmp_path)
    await running.server.start()
    yield running
    await running.server.stop()


async def _publish(url: str, subject: str, data: bytes = b"not an envelope") -> None:
    client = await nats.connect(url)
    try:
        await client.publish(subject, data)
        await client.flush()
    finally:
        await client.close()


async def _next(
    frames: AsyncGenerator[bytes, None], event: str, timeout_seconds: float = 5.0
) -> bytes:
    async with asyncio.timeout(timeout_seconds):
        async for raw in frames:
            if raw.startswith(f"event: {event}\n".encode()):
                return raw
    raise AssertionError(f"the feed ended before an {event!r} frame")


async def test_many_tails_and_calls_share_one_connection_closed_by_close(
    monitored: Monitored,
) -> None:
    events = NatsEvents(monitored.server.url)
    tails = [await events.tail("", "") for _ in range(6)]
    try:
        for tail in tails:
            await _next(tail, "ready")
        letters = await events.dead_letters()
        shared = await monitored.console_connections()
        await _publish(monitored.server.url, "plugmesh.events.test.happened")
        heard = [await _next(tail, "event") for tail in tails]
        for tail in tails[:3]:
            await tail.aclose()
        after_some_left = await monitored.console_connections()
    finally:
        for tail in tails:
            await tail.aclose()
    still_open = await monitored.console_connections()
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


async def test_a_tail_hears_events_again_after_nats_restarts(monitored: Monitored) -> None:
    events = NatsEvents(monitored.server.url)
    tail = await events.tail("test.>", "")
    try:
        await _next(tail, "ready")
        await monitored.restart()
        hearing = asyncio.ensure_future(_next(tail, "event", BACK_WITHIN_SECONDS))
        # Published until it is heard: the tail's subscription comes back with the
        # reconnection, a moment after the server is.
        while not hearing.done():
            await _publish(monitored.server.url, "plugmesh.events.test.again")
            await asyncio.wait([hearing], timeout=0.5)
        heard = hearing.result()
        connections = await monitored.console_connections()
    finally:
        await tail.aclose()
        await events.close()

    assert b"plugmesh.events.test.again" in heard
    assert connections == 1


class _Nobody:
    """No caller is ever identified: the console here is only closed."""

    async def identify(self, scope: object) -> NoReturn:
        raise AssertionError("no request is made here")


async def _counted(monitored: Monitored, expected: int) -> bool:
    return await monitored.console_connections() == expected
