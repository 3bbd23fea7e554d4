"""Subscribers: durable, idempotent, bounded retries, dead letters, drain (real NATS, SQLite)."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from launcher.natsd import NatsServer
from meshkit.db import Database
from meshkit.events import EventBus, EventBusStatus, ReceivedEvent, build_event, subject_of
from meshkit.events.deadletters import list_dead_letters, replay_dead_letter
from meshkit.events.relay import MSG_ID
from meshkit.events.streams import DLQ_STREAM, EVENTS_STREAM
from tests.events.helpers import (
    FAST,
    WAIT_SECONDS,
    Change,
    Note,
    Seen,
    consumer_settled,
    fast,
    publish_directly,
    record,
    seen_counts,
    user_created,
)
from tests.support.waiting import until


async def test_a_consumer_down_while_10000_events_are_published_handles_each_exactly_once(
    nats_server: NatsServer, nc: Client, consumer_db: Database, publisher_db: Database
) -> None:
    def consumer() -> EventBus:
        bus = EventBus("audit", database=consumer_db, nats_url=nats_server.url, settings=FAST)
        bus.subscribe(">", record)
        return bus

    first = consumer()
    await first.start()  # creates the durable consumer
    await first.close()
    publisher = EventBus("users", database=publisher_db, nats_url=nats_server.url, settings=FAST)
    await publisher.start()
    try:
        for start in range(0, 10_000, 250):
            async with publisher_db.transaction() as session:
                for i in range(start, start + 250):
                    event = publisher.publish(session, user_created(f"u{i}"), subject=f"users/u{i}")
                    session.add(Change(user_id=f"u{i}", event_id=event.id))

        async def all_in_stream() -> bool:
            info = await nc.jetstream().stream_info(EVENTS_STREAM)
            return info.state.messages == 10_000

        await until(all_in_stream, timeout_seconds=WAIT_SECONDS, what="10,000 events in the stream")
        assert await seen_counts(consumer_db) == (0, 0)

        second = consumer()
        await second.start()
        try:

            async def all_handled() -> bool:
                return (await seen_counts(consumer_db))[1] == 10_000 and await consumer_settled(
                    nc.jetstream(), EVENTS_STREAM, "audit-all"
                )

            await until(all_handled, timeout_seconds=90, what="10,000 events handled")
        finally:
            await second.close()
    finally:
        await publisher.close()
    assert await seen_counts(consumer_db) == (10_000, 10_000)


async def test_an_event_delivered_twice_is_handled_once(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    event = build_event(user_created("u1"), source="/plugmesh/test", subject="users/u1")
    js = nc.jetstream()
    # Two messages with one event id (a republish after the dedupe window, a replay).
    for copy in ("a", "b"):
        await js.publish(
            subject_of(event.type), event.SerializeToString(), headers={MSG_ID: event.id + copy}
        )
    bus = EventBus("audit", database=consumer_db, nats_url=nats_server.url, settings=FAST)
    bus.subscribe(">", record)
    await bus.start()
    try:

        async def settled() -> bool:
            return await consumer_settled(js, EVENTS_STREAM, "audit-all")

        await until(settled, timeout_seconds=WAIT_SECONDS, what="both copies acknowledged")
    finally:
        await bus.close()
    assert await seen_counts(consumer_db) == (1, 1)


async def test_a_poison_event_is_dead_lettered_after_the_attempts_and_the_others_flow(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    attempts: list[int] = []

    async def picky(event: ReceivedEvent, session: AsyncSession) -> None:
        if event.envelope.subject == "users/7":
            attempts.append(event.attempt)
            session.add(Note(event_id=event.id))  # must roll back with the failure
            raise ValueError("user 7 cannot be stored")
        await record(event, session)

    js = nc.jetstream()
    bus = EventBus(
        "audit", database=consumer_db, nats_url=nats_server.url, settings=fast(max_attempts=3)
    )
    bus.subscribe("user.*", picky)
    await bus.start()
    try:
        events = await publish_directly(js, 20)
        await js.publish("plugmesh.events.user.created", b"\xff not protobuf")

        async def settled() -> bool:
            letters = await list_dead_letters(js)
            return len(letters) == 2 and await consumer_settled(js, EVENTS_STREAM, "audit-user_any")

        await until(
            settled, timeout_seconds=WAIT_SECONDS, what="two dead letters and the rest handled"
        )
        assert await seen_counts(consumer_db) == (19, 19)
        assert sorted(set(attempts)) == [1, 2, 3]
        async with consumer_db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Note)) == 0

        letters = {letter.error.split(":")[0]: letter for letter in await list_dead_letters(js)}
        poison, garbage = letters["ValueError"], letters["EnvelopeError"]
        assert poison.event_id == events[7].id
        assert poison.consumer == "audit-user_any"
        assert poison.event_type == "user.created"
        assert poison.original_subject == "plugmesh.events.user.created"
        assert poison.attempts == 3
        assert poison.error == "ValueError: user 7 cannot be stored"
        assert poison.data == events[7].SerializeToString()
        assert garbage.error.startswith("EnvelopeError: not a plugmesh.events.v1.Event")
        assert garbage.attempts == 1
    finally:
        await bus.close()


async def test_a_replayed_dead_letter_is_handled_once_the_handler_is_fixed(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    broken = True

    async def flaky(event: ReceivedEvent, session: AsyncSession) -> None:
        if broken:
            raise RuntimeError("store offline")
        await record(event, session)

    js = nc.jetstream()
    bus = EventBus(
        "audit", database=consumer_db, nats_url=nats_server.url, settings=fast(max_attempts=2)
    )
    bus.subscribe(">", flaky)
    await bus.start()
    try:
        (event,) = await publish_directly(js, 1)

        async def dead() -> bool:
            return len(await list_dead_letters(js)) == 1

        await until(dead, timeout_seconds=WAIT_SECONDS, what="the dead letter")
        broken = False
        letter = await replay_dead_letter(js, event.id)
        assert letter.event_id == event.id

        async def handled() -> bool:
            return await seen_counts(consumer_db) == (1, 1)

        await until(handled, timeout_seconds=WAIT_SECONDS, what="the replayed event")
        assert await list_dead_letters(js) == []
        assert (await js.stream_info(DLQ_STREAM)).state.messages == 0
    finally:
        await bus.close()


async def test_a_replayed_dead_letter_that_fails_again_is_dead_lettered_again(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    async def broken(event: ReceivedEvent, session: AsyncSession) -> None:
        raise RuntimeError("still broken")

    js = nc.jetstream()
    bus = EventBus(
        "audit", database=consumer_db, nats_url=nats_server.url, settings=fast(max_attempts=1)
    )
    bus.subscribe(">", broken)
    await bus.start()
    try:
        (event,) = await publish_directly(js, 1)

        async def dead() -> bool:
            letters = await list_dead_letters(js)
            return len(letters) == 1 and await consumer_settled(js, EVENTS_STREAM, "audit-all")

        await until(dead, timeout_seconds=WAIT_SECONDS, what="the first dead letter")
        (first,) = await list_dead_letters(js)
        await replay_dead_letter(js, str(first.sequence))
        await until(
            dead, timeout_seconds=WAIT_SECONDS, what="the replayed event dead-lettered again"
        )
        (second,) = await list_dead_letters(js)
    finally:
        await bus.close()
    assert second.event_id == first.event_id == event.id
    assert second.sequence != first.sequence


async def test_a_failing_handler_rolls_back_only_its_own_event(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    async def odd_fails(event: ReceivedEvent, session: AsyncSession) -> None:
        seen = Seen(event_id=event.id, event_type=event.type, subject=event.envelope.subject)
        session.add(seen)
        await session.flush()
        session.add(Note(seen_id=seen.id, event_id=event.id))
        if int(event.envelope.subject.removeprefix("users/")) % 2:
            raise LookupError("odd")

    js = nc.jetstream()
    await publish_directly(js, 40)  # one batch: every handler runs in one transaction
    bus = EventBus(
        "audit", database=consumer_db, nats_url=nats_server.url, settings=fast(max_attempts=1)
    )
    bus.subscribe(">", odd_fails)
    await bus.start()
    try:

        async def settled() -> bool:
            return await consumer_settled(js, EVENTS_STREAM, "audit-all")

        await until(settled, timeout_seconds=WAIT_SECONDS, what="the batch settled")
    finally:
        await bus.close()
    async with consumer_db.read() as session:
        subjects = (await session.scalars(select(Seen.subject))).all()
        notes = await session.scalar(select(func.count()).select_from(Note))
    assert sorted(subjects) == sorted(f"users/{i}" for i in range(0, 40, 2))
    assert notes == 20
    assert len(await list_dead_letters(js)) == 20


async def test_the_handler_runs_in_the_trace_of_the_event(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    traces: list[str | None] = []

    async def remember(event: ReceivedEvent, session: AsyncSession) -> None:
        from meshkit.tracing import current_trace

        trace = current_trace()
        traces.append(trace.traceparent if trace else None)

    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = build_event(user_created("u1"), source="/plugmesh/test")
    await nc.jetstream().publish(
        subject_of(event.type),
        event.SerializeToString(),
        headers={MSG_ID: event.id, "traceparent": parent},
    )
    bus = EventBus("audit", database=consumer_db, nats_url=nats_server.url, settings=FAST)
    bus.subscribe(">", remember)
    await bus.start()
    try:

        async def called() -> bool:
            return bool(traces)

        await until(called, timeout_seconds=WAIT_SECONDS, what="the handler")
    finally:
        await bus.close()
    assert traces[0] == parent


async def test_two_instances_of_a_consumer_share_the_work_without_duplicates(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    js = nc.jetstream()
    buses = []
    for _ in range(2):
        bus = EventBus("audit", database=consumer_db, nats_url=nats_server.url, settings=FAST)
        bus.subscribe(">", record)
        buses.append(bus)
    await asyncio.gather(*(bus.start() for bus in buses))
    try:
        await publish_directly(js, 2_000)

        async def settled() -> bool:
            return (await seen_counts(consumer_db))[1] == 2_000 and await consumer_settled(
                js, EVENTS_STREAM, "audit-all"
            )

        await until(settled, timeout_seconds=WAIT_SECONDS, what="2,000 events across two instances")
    finally:
        await asyncio.gather(*(bus.close() for bus in buses))
    assert await seen_counts(consumer_db) == (2_000, 2_000)


async def test_drain_finishes_the_batch_in_hand_and_close_is_idempotent(
    nats_server: NatsServer, nc: Client, consumer_db: Database
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(event: ReceivedEvent, session: AsyncSession) -> None:
        started.set()
        await release.wait()
        await record(event, session)
        finished.append("the batch in hand")

    js = nc.jetstream()
    bus = EventBus(
        "audit", database=consumer_db, nats_url=nats_server.url, settings=fast(fetch_batch=1)
    )
    bus.subscribe(">", slow)
    await bus.start()
    await bus.start()
    await publish_directly(js, 3)
    await asyncio.wait_for(started.wait(), timeout=30)
    draining = asyncio.create_task(bus.drain())
    draining.add_done_callback(lambda _: finished.append("drain"))
    await until(lambda: bus.status is EventBusStatus.DRAINING, what="the bus draining")
    release.set()
    await draining
    assert finished == ["the batch in hand", "drain"]
    await bus.drain()
    await bus.close()
    await bus.close()
    assert bus.status.value == EventBusStatus.CLOSED.value
    assert await seen_counts(consumer_db) == (1, 1)
    info = await js.consumer_info(EVENTS_STREAM, "audit-all")
    assert info.num_ack_pending + info.num_pending == 2, "the others wait for the next start"
