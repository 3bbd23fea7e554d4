"""The transactional outbox and its relay (real NATS, SQLite)."""

from __future__ import annotations

from nats.aio.client import Client
from sqlalchemy import select, update

from launcher.natsd import NatsServer
from meshkit.db import Database
from meshkit.events import EventBus, parse_event, unpack_payload
from meshkit.events.relay import MSG_ID
from meshkit.events.streams import EVENTS_STREAM
from meshkit.events.tables import OutboxRecord, metadata
from meshkit.tracing import TraceContext, use_trace
from tests.events.helpers import (
    FAST,
    WAIT_SECONDS,
    Change,
    consumer_settled,
    fast,
    pending_outbox,
    record,
    seen_counts,
    user_created,
)
from tests.support.waiting import until


async def _messages(nc: Client) -> int:
    return (await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages


async def test_an_event_of_a_rolled_back_transaction_is_never_published(
    nats_server: NatsServer, nc: Client, publisher_db: Database
) -> None:
    bus = EventBus("users", database=publisher_db, nats_url=nats_server.url, settings=FAST)
    await bus.start()
    try:
        try:
            async with publisher_db.transaction() as session:
                bus.publish(session, user_created("gone"), subject="users/gone")
                raise KeyError("the change failed")
        except KeyError:
            pass
        async with publisher_db.transaction() as session:
            async with session.begin_nested() as savepoint:
                bus.publish(session, user_created("undone"), subject="users/undone")
                await savepoint.rollback()
            kept = bus.publish(session, user_created("kept"), subject="users/kept")
        assert await bus.relay.flush() >= 0  # type: ignore[union-attr]  # started

        async def sent() -> bool:
            return await _messages(nc) == 1

        await until(sent, timeout_seconds=WAIT_SECONDS, what="the committed event")
    finally:
        await bus.close()
    async with publisher_db.read() as session:
        ids = (await session.scalars(select(OutboxRecord.event_id))).all()
    assert ids == [kept.id]


async def test_a_committed_event_is_sent_with_its_id_and_trace_at_once_without_polling(
    nats_server: NatsServer, nc: Client, publisher_db: Database
) -> None:
    trace = TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v")
    # An hour between polls: only the wake-up on commit can send the event in time.
    bus = EventBus(
        "users",
        database=publisher_db,
        nats_url=nats_server.url,
        settings=fast(outbox_poll_millis=3_600_000),
    )
    subscription = await nc.subscribe("plugmesh.events.>")
    await bus.start()
    try:
        with use_trace(trace):
            async with publisher_db.transaction() as session:
                event = bus.publish(session, user_created("u1"), subject="users/u1")
                session.add(Change(user_id="u1", event_id=event.id))
        msg = await subscription.next_msg(timeout=10)
    finally:
        await bus.close()
    assert msg.subject == "plugmesh.events.user.created"
    assert msg.headers is not None
    assert msg.headers[MSG_ID] == event.id
    assert msg.headers["traceparent"] == trace.traceparent
    assert msg.headers["tracestate"] == "k=v"
    received = parse_event(msg.data)
    assert received == event
    assert received.source == "/plugmesh/users"
    assert received.datacontenttype == "application/protobuf"
    assert unpack_payload(received) == user_created("u1")

    async def marked() -> bool:
        return await pending_outbox(publisher_db) == 0

    await until(marked, timeout_seconds=WAIT_SECONDS, what="the row marked sent")


async def test_an_event_without_a_trace_starts_one(
    nats_server: NatsServer, nc: Client, publisher_db: Database
) -> None:
    bus = EventBus("users", database=publisher_db, nats_url=nats_server.url, settings=FAST)
    subscription = await nc.subscribe("plugmesh.events.>")
    await bus.start()
    try:
        async with publisher_db.transaction() as session:
            bus.publish(session, user_created("u1"))
        msg = await subscription.next_msg(timeout=10)
    finally:
        await bus.close()
    assert TraceContext.from_headers(msg.headers) is not None


async def test_a_row_published_twice_is_stored_once_by_jetstream(
    nats_server: NatsServer, nc: Client, publisher_db: Database
) -> None:
    bus = EventBus("users", database=publisher_db, nats_url=nats_server.url, settings=FAST)
    await bus.start()
    try:
        async with publisher_db.transaction() as session:
            bus.publish(session, user_created("u1"))
        assert bus.relay is not None
        await bus.relay.flush()
        # As if the relay had died after publishing and before marking the row.
        async with publisher_db.transaction() as session:
            await session.execute(update(OutboxRecord).values(sent_at=None))
        bus.relay.wake()

        async def sent_again() -> bool:
            async with publisher_db.read() as session:
                row = (await session.scalars(select(OutboxRecord))).one()
            return row.sent_at is not None and row.attempts == 2

        await until(
            sent_again, timeout_seconds=WAIT_SECONDS, what="the row published a second time"
        )
    finally:
        await bus.close()
    assert await _messages(nc) == 1


async def test_rows_left_in_the_table_are_sent_at_the_next_start(
    nats_server: NatsServer, nc: Client, publisher_db: Database, consumer_db: Database
) -> None:
    offline = EventBus("users", database=publisher_db, nats_url=nats_server.url, settings=FAST)
    # Written by a process whose relay never ran: only the table knows.
    await publisher_db.create_all(metadata)
    for i in range(3):
        async with publisher_db.transaction() as session:
            offline.publish(session, user_created(f"u{i}"))
    assert await pending_outbox(publisher_db) == 3

    consumer = EventBus("audit", database=consumer_db, nats_url=nats_server.url, settings=FAST)
    consumer.subscribe(">", record)
    await consumer.start()
    await offline.start()
    try:

        async def delivered() -> bool:
            return await seen_counts(consumer_db) == (3, 3) and await consumer_settled(
                nc.jetstream(), EVENTS_STREAM, "audit-all"
            )

        await until(delivered, timeout_seconds=WAIT_SECONDS, what="the rows of the earlier run")
    finally:
        await offline.close()
        await consumer.close()
    assert await pending_outbox(publisher_db) == 0


async def test_a_bus_attached_to_a_plugin_server_starts_and_closes_with_it(
    nats_server: NatsServer, nc: Client, publisher_db: Database
) -> None:
    from meshkit.config import MeshConfig
    from meshkit.events import EventBusStatus
    from meshkit.server import PluginServer

    server = PluginServer(
        "users", [], address="127.0.0.1:0", config=MeshConfig.from_env({}), register=False
    )
    bus = EventBus("users", database=publisher_db, nats_url=nats_server.url, settings=FAST)
    bus.attach(server)
    await server.start()
    assert bus.status is EventBusStatus.RUNNING
    async with publisher_db.transaction() as session:
        bus.publish(session, user_created("u1"))
    await server.stop(0)

    assert bus.status.value == EventBusStatus.CLOSED.value
    assert await pending_outbox(publisher_db) == 0, "the last flush sent it"
    assert await _messages(nc) == 1
