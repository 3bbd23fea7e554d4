"""Connecting to NATS (meshkit.events.connection), against a real nats-server whose
``/connz`` counts the connections, and a fake one that stalls: a try that failed (NATS
away, a stalled server, a ``ready`` that raised, a cancellation) leaves no connection and
no task behind; ``keep_connecting`` warns once, goes on until NATS is there, and fires
the callbacks only for the connection it returned."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client

from meshkit.events.connection import close_quietly, connect_nats, keep_connecting
from meshkit.events.errors import EventError
from tests.support.nats_servers import MonitoredNats, StalledNats, free_port
from tests.support.waiting import until

NAME = "plugmesh-test-connection"
WARNING = "the test cannot use NATS yet"


@pytest.fixture
async def later_nats(tmp_path: Path) -> AsyncIterator[MonitoredNats]:
    """A monitored nats-server on a port of its own, not started yet."""
    server = MonitoredNats(tmp_path, port=free_port())
    yield server
    await server.stop()


def _tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "meshkit.events.connection" and r.levelno == logging.WARNING
    ]


async def test_a_connect_that_times_out_on_a_stalled_server_closes_its_socket() -> None:
    before = _tasks()
    async with StalledNats(free_port(), handshake=False) as stalled:
        # Greeted, then never answered: nats-py's own retries go on until the deadline.
        with pytest.raises(EventError, match="cannot connect to NATS"):
            await connect_nats(f"nats://127.0.0.1:{stalled.port}", name=NAME, timeout_seconds=0.5)
        await until(lambda: stalled.open == 0, timeout_seconds=5, what="the socket closed")
        accepted = stalled.accepted
    await until(lambda: _tasks() <= before, timeout_seconds=5, what="nats-py's tasks ended")

    assert accepted >= 1


async def test_keep_connecting_goes_on_until_nats_is_up_and_leaves_one_connection(
    later_nats: MonitoredNats, caplog: pytest.LogCaptureFixture
) -> None:
    readied: list[Client] = []

    async def ready(client: Client) -> None:
        await client.flush()
        readied.append(client)

    connecting = asyncio.create_task(
        keep_connecting(
            later_nats.url,
            name=NAME,
            ready=ready,
            unavailable_warning=WARNING,
            retry_seconds=0.1,
            attempt_seconds=0.3,
        )
    )
    # Several tries fail while NATS is away; one warning says so.
    await until(lambda: len(_warnings(caplog)) == 1, timeout_seconds=5, what="the warning")
    await asyncio.sleep(1.0)
    assert not connecting.done()
    await later_nats.start()
    async with asyncio.timeout(15):
        client = await connecting
    try:
        connections = await later_nats.connections(NAME)
    finally:
        await close_quietly(client)
        await close_quietly(client)  # twice is fine
    await until(lambda: _count(later_nats, 0), timeout_seconds=5, what="the connection gone")

    assert readied == [client]
    assert connections == 1
    [warning] = _warnings(caplog)
    assert warning.startswith(f"{WARNING}: cannot connect to NATS at {later_nats.url} within 0.3s")


async def test_a_try_whose_ready_fails_is_closed_and_the_next_one_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = MonitoredNats(tmp_path)
    await server.start()
    tries: list[int] = []

    async def ready(client: Client) -> None:
        tries.append(await server.connections(NAME))  # this try's connection, and no other
        if len(tries) < 3:
            raise nats.errors.NoRespondersError

    try:
        client = await keep_connecting(
            server.url, name=NAME, ready=ready, unavailable_warning=WARNING, retry_seconds=0.05
        )
        try:
            connections = await server.connections(NAME)
        finally:
            await close_quietly(client)
    finally:
        await server.stop()

    assert tries == [1, 1, 1]
    assert connections == 1
    assert _warnings(caplog) == [f"{WARNING}: nats: no responders available for request"]


@pytest.mark.parametrize("while_", ["connecting", "readying"])
async def test_cancelling_keep_connecting_leaves_no_connection_and_no_task(
    tmp_path: Path, while_: str
) -> None:
    server = MonitoredNats(tmp_path, port=free_port())
    if while_ == "readying":
        await server.start()
    readying = asyncio.Event()

    async def ready(client: Client) -> None:
        readying.set()
        await asyncio.Event().wait()  # a ready that never ends, until cancelled

    before = _tasks()
    try:
        connecting = asyncio.create_task(
            keep_connecting(server.url, name=NAME, ready=ready, unavailable_warning=WARNING)
        )
        if while_ == "readying":
            async with asyncio.timeout(10):
                await readying.wait()
            assert await server.connections(NAME) == 1
        else:
            await asyncio.sleep(0.5)  # nats-py retrying the first connect meanwhile
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        await until(lambda: _tasks() <= before, timeout_seconds=5, what="nats-py's tasks ended")
        if while_ == "readying":
            await until(lambda: _count(server, 0), timeout_seconds=5, what="no connection")
    finally:
        await server.stop()


async def test_callbacks_fire_for_the_kept_connection_only(tmp_path: Path) -> None:
    server = MonitoredNats(tmp_path)
    await server.start()
    seen: list[str] = []
    tries = 0

    async def ready(client: Client) -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise nats.errors.NoRespondersError  # closing this try is no disconnection

    client = await keep_connecting(
        server.url,
        name=NAME,
        ready=ready,
        unavailable_warning=WARNING,
        on_disconnect=[lambda: seen.append("disconnected")],
        on_reconnect=[lambda: seen.append("reconnected")],
        retry_seconds=0.05,
    )
    try:
        assert seen == []
        await server.restart()
        await until(lambda: "reconnected" in seen, timeout_seconds=15, what="the reconnection")
    finally:
        await close_quietly(client)
        await server.stop()

    assert seen == ["disconnected", "reconnected", "disconnected"]  # the last: closed


async def _count(server: MonitoredNats, expected: int) -> bool:
    return await server.connections(NAME) == expected
