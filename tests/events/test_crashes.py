"""Processes killed with SIGKILL lose nothing and store nothing twice (real subprocesses)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from nats.aio.client import Client
from sqlalchemy import func, select

from launcher.natsd import NatsServer
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.events.streams import EVENTS_STREAM
from tests.events.helpers import (
    FAST,
    WAIT_SECONDS,
    Base,
    Change,
    consumer_settled,
    pending_outbox,
    publish_directly,
    record,
    seen_counts,
)
from tests.support.waiting import until

ROOT = Path(__file__).resolve().parents[2]
FAST_ENV = {
    "PLUGMESH_EVENTS_ACK_WAIT_SECONDS": "2",
    "PLUGMESH_EVENTS_OUTBOX_POLL_MILLIS": "200",
    "PLUGMESH_EVENTS_OUTBOX_RETRY_MAX_MILLIS": "300",
    "PLUGMESH_EVENTS_RETRY_INITIAL_MILLIS": "50",
}


async def _spawn(*args: str, env: Mapping[str, str] = FAST_ENV) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.events.procs",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert line.strip() == b"ready", f"{args[0]} did not start: {line!r}"
    return process


@asynccontextmanager
async def _running(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await _spawn(*args)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)


async def test_a_consumer_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    events = await publish_directly(nc.jetstream(), 2_000)
    path = tmp_path / "crashy.db"
    store = Database(f"sqlite:///{path}")
    await store.create_all(Base.metadata)
    try:
        first = await _spawn("consume", nats_server.url, str(path), "--sleep-ms", "2")

        async def some_committed() -> bool:
            return (await seen_counts(store))[0] >= 300

        await until(
            some_committed, timeout_seconds=WAIT_SECONDS, what="the first batches to commit"
        )
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL
        stored_before = (await seen_counts(store))[0]
        assert 0 < stored_before < len(events), "the kill did not land mid-stream"

        async with _running("consume", nats_server.url, str(path)):

            async def all_handled() -> bool:
                return (await seen_counts(store))[1] == len(events) and await consumer_settled(
                    nc.jetstream(), EVENTS_STREAM, "crashy"
                )

            await until(all_handled, timeout_seconds=60, what="every event")

        assert await seen_counts(store) == (len(events), len(events))
    finally:
        await store.close()


async def test_an_event_committed_by_a_publisher_killed_before_sending_arrives_after_restart(
    nats_server: NatsServer, nc: Client, consumer_db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "publisher.db"
    consumer = EventBus("consumer", database=consumer_db, nats_url=nats_server.url, settings=FAST)
    consumer.subscribe("user.created", record)
    await consumer.start()
    try:
        dying = await _spawn(
            "publish", nats_server.url, str(path), "--count", "5", "--die-after-commit"
        )
        await dying.wait()
        assert dying.returncode == -signal.SIGKILL

        publisher_db = Database(f"sqlite:///{path}")
        try:
            async with publisher_db.read() as session:
                changes = await session.scalar(select(func.count()).select_from(Change))
            assert changes == 5, "the state change was committed"
            assert await pending_outbox(publisher_db) == 5, "and its events wait in the outbox"
            stream = await nc.jetstream().stream_info(EVENTS_STREAM)
            assert stream.state.messages == 0, "nothing was sent before the kill"

            async with _running("publish", nats_server.url, str(path)):

                async def delivered() -> bool:
                    return await seen_counts(consumer_db) == (5, 5)

                await until(
                    delivered,
                    timeout_seconds=WAIT_SECONDS,
                    what="the events of the killed publisher",
                )

                async def marked() -> bool:
                    return await pending_outbox(publisher_db) == 0

                await until(
                    marked, timeout_seconds=WAIT_SECONDS, what="the outbox rows marked sent"
                )
        finally:
            await publisher_db.close()
    finally:
        await consumer.close()
