"""The counter store's connection, against a real nats-server whose ``/connz`` counts
connections: while its stream cannot be made, calls go uncounted, each failed try is
closed and the store tries again; once the stream can be made, it counts; and a stream
that goes missing later is made again."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import api

from gateway.ratelimit import JetStreamCounters
from gateway.ratelimit.store import STREAM, SUBJECT_PREFIX, StoreUnavailable
from tests.support.nats_servers import MonitoredNats
from tests.support.waiting import eventually, until

NAME = "plugmesh-gateway-rate-limits"
WARNING = "rate limits cannot reach NATS yet; calls go uncounted"


async def test_the_store_tries_again_until_its_stream_can_be_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = MonitoredNats(tmp_path)
    await server.start()
    store = JetStreamCounters(server.url, keep_seconds=60)
    nc = await nats.connect(server.url)
    try:
        # Another stream holds the counters' subjects: the store's cannot be made.
        js = nc.jetstream()
        await js.add_stream(api.StreamConfig(name="SQUATTER", subjects=[SUBJECT_PREFIX + ">"]))
        await store.start()
        await until(lambda: WARNING in caplog.text, what="the store to warn")
        assert not store.ready
        assert await server.connections(NAME) <= 1  # the failed tries are closed
        await js.delete_stream("SQUATTER")
        await until(lambda: store.ready, what="the stream")
        total = await store.increment("k", timeout_seconds=5)
        connections = await server.connections(NAME)
        info = await js.stream_info(STREAM)
    finally:
        await store.close()
        await nc.close()
        await server.stop()

    assert total == 1
    assert connections == 1
    assert info.config.allow_msg_counter
    assert caplog.text.count(WARNING) == 1


@pytest.mark.parametrize("loss", ["deleted", "nats-restarted"])
async def test_a_stream_that_went_missing_is_made_again_and_counting_resumes(
    tmp_path: Path, loss: str
) -> None:
    server = MonitoredNats(tmp_path)
    await server.start()
    store = JetStreamCounters(server.url, keep_seconds=60)
    try:
        await store.start()
        await until(lambda: store.ready, what="the stream")
        before = await store.increment("k", timeout_seconds=5)
        if loss == "deleted":
            async with _connected(server.url) as nc:
                await nc.jetstream().delete_stream(STREAM)
        else:
            await server.restart()
        with pytest.raises(StoreUnavailable):
            await _increment_once_connected(store)

        async def counted() -> int | None:
            try:
                return await store.increment("k", timeout_seconds=5)
            except StoreUnavailable:
                return None

        after = await eventually(counted, timeout_seconds=20, what="counting again")
    finally:
        await store.close()
        await server.stop()

    assert (before, after) == (1, 1)  # the lost window starts again


async def _increment_once_connected(store: JetStreamCounters) -> int:
    await until(lambda: store.ready, timeout_seconds=20, what="connected again")
    return await store.increment("k", timeout_seconds=5)


@contextlib.asynccontextmanager
async def _connected(url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(url)
    try:
        yield nc
    finally:
        await nc.close()
