"""NATS stopped and restarted while a plugin keeps changing state: every event arrives."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from launcher.natsd import NatsServer
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.events.streams import EVENTS_STREAM
from tests.events.helpers import (
    FAST,
    WAIT_SECONDS,
    Change,
    connect,
    consumer_settled,
    fast,
    pending_outbox,
    record,
    seen_counts,
    user_created,
)
from tests.support.waiting import until

CHANGES = 300


async def test_the_outbox_drains_and_every_event_arrives_after_nats_restarts(
    tmp_path: Path, publisher_db: Database, consumer_db: Database
) -> None:
    store = tmp_path / "jetstream"
    server = NatsServer(store, log_path=tmp_path / "nats.log")
    await server.start()
    port = server.port
    # Publishes time out quickly, so the outage outlasts them and the relay backs off.
    publisher = EventBus(
        "users",
        database=publisher_db,
        nats_url=server.url,
        settings=fast(publish_timeout_seconds=0.5),
    )
    consumer = EventBus("audit", database=consumer_db, nats_url=server.url, settings=FAST)
    consumer.subscribe(">", record)
    await publisher.start()
    await consumer.start()
    made = 0
    stopped_at = restarted_at = 0
    a_third_made = asyncio.Event()

    async def keep_changing() -> None:
        nonlocal made
        for i in range(CHANGES):
            async with publisher_db.transaction() as session:
                event = publisher.publish(session, user_created(f"u{i}"), subject=f"users/u{i}")
                session.add(Change(user_id=f"u{i}", event_id=event.id))
            made += 1
            if made == CHANGES // 3:
                a_third_made.set()
            await asyncio.sleep(0.01)

    changing = asyncio.create_task(keep_changing())
    try:
        await asyncio.wait_for(a_third_made.wait(), timeout=30)
        await server.stop()
        stopped_at = made

        async def piled_up() -> bool:
            return await pending_outbox(publisher_db) >= 60

        await until(
            piled_up,
            timeout_seconds=WAIT_SECONDS,
            what="events waiting in the outbox while NATS is down",
        )
        server = NatsServer(store, port=port, log_path=tmp_path / "nats.log")
        await server.start()
        restarted_at = made
        await changing
        assert stopped_at < restarted_at < CHANGES, "the state changed while NATS was down"

        async def delivered() -> bool:
            if await pending_outbox(publisher_db) or (await seen_counts(consumer_db))[1] < CHANGES:
                return False
            client = await connect(server.url)
            try:
                return await consumer_settled(client.jetstream(), EVENTS_STREAM, "audit-all")
            finally:
                await client.close()

        await until(delivered, timeout_seconds=60, what="every event after the restart")
        assert await seen_counts(consumer_db) == (CHANGES, CHANGES)
    finally:
        changing.cancel()
        await asyncio.gather(changing, return_exceptions=True)
        await consumer.close()
        await publisher.close()
        await server.stop()


async def test_a_bus_connecting_in_background_starts_without_nats_and_sends_once_it_is_up(
    tmp_path: Path, publisher_db: Database
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = EventBus(
        "registry",
        database=publisher_db,
        nats_url=f"nats://127.0.0.1:{port}",
        settings=fast(publish_timeout_seconds=0.5),
        connect_timeout_seconds=0.5,
        connect_in_background=True,
    )
    async with asyncio.timeout(5):
        await bus.start()  # nothing listens at the port: start does not wait for it
    server = NatsServer(tmp_path / "jetstream", port=port, log_path=tmp_path / "nats.log")
    try:
        async with publisher_db.transaction() as session:
            event = bus.publish(session, user_created("u1"), subject="users/u1")
            session.add(Change(user_id="u1", event_id=event.id))
        assert await pending_outbox(publisher_db) == 1, "the event waits in the outbox"

        await server.start()

        async def sent() -> bool:
            return await pending_outbox(publisher_db) == 0

        await until(sent, timeout_seconds=30, what="the event sent once NATS is up")
        client = await connect(server.url)
        try:
            message = await client.jetstream().get_last_msg(EVENTS_STREAM, "plugmesh.events.>")
        finally:
            await client.close()
        assert message.headers is not None
        assert message.headers["Nats-Msg-Id"] == event.id
    finally:
        await bus.close()
        await server.stop()
