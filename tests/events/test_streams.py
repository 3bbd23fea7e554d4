"""Stream management at startup: idempotent, configurable, with the dedupe window set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client

from launcher.natsd import NatsServer
from meshkit.events import EventSettings, StreamError
from meshkit.events.streams import DLQ_STREAM, EVENTS_STREAM, ensure_streams
from tests.events.helpers import connect


@pytest.fixture
async def bare(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A client of a server without the streams yet."""
    client = await connect(nats_server.url)
    yield client
    await client.close()


async def test_streams_are_created_once_even_by_many_processes_at_once(bare: Client) -> None:
    js = bare.jetstream()

    await asyncio.gather(*(ensure_streams(js, EventSettings()) for _ in range(4)))
    await ensure_streams(js, EventSettings())

    events = (await js.stream_info(EVENTS_STREAM)).config
    dlq = (await js.stream_info(DLQ_STREAM)).config
    assert events.subjects == ["plugmesh.events.>"]
    assert dlq.subjects == ["plugmesh.dlq.>"]
    assert events.duplicate_window == 120
    assert events.max_age == 604_800
    assert events.retention == "limits"


async def test_changed_limits_update_the_existing_stream(bare: Client) -> None:
    js = bare.jetstream()
    await ensure_streams(js, EventSettings())
    await js.publish("plugmesh.events.user.created", b"kept")

    settings = EventSettings(
        stream_max_age_seconds=3_600,
        stream_max_msgs=1_000,
        stream_max_bytes=10_000_000,
        dedupe_window_seconds=30,
    )
    await ensure_streams(js, settings)

    info = await js.stream_info(EVENTS_STREAM)
    assert (info.config.max_age, info.config.max_msgs, info.config.max_bytes) == (
        3_600,
        1_000,
        10_000_000,
    )
    assert info.config.duplicate_window == 30
    assert info.state.messages == 1, "an update keeps the events"


async def test_a_change_jetstream_refuses_names_the_stream_and_the_field(bare: Client) -> None:
    js = bare.jetstream()
    await ensure_streams(js, EventSettings())

    with pytest.raises(StreamError, match=r"stream PLUGMESH_EVENTS: cannot be updated \(storage\)"):
        await ensure_streams(js, EventSettings(stream_storage="memory"))
