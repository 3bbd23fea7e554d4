"""machine_user.created, .deleted and .token_rotated leave through the outbox, without a token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import nats
from nats.aio.msg import Msg
from sqlalchemy import select

from launcher.natsd import NatsServer
from meshkit.events import parse_event, subject_of, unpack_payload
from meshkit.events.tables import OutboxRecord
from plugmesh.events.v1 import event_pb2, machine_user_events_pb2
from tests.services.machineusers.conftest import Running
from tests.services.machineusers.support import ADMIN, failure
from tests.support.waiting import eventually


async def written_events(running: Running) -> set[str]:
    """The ids of every event the plugin wrote to its outbox, sent or not."""
    async with running.plugin.database.read() as session:
        return set(await session.scalars(select(OutboxRecord.event_id)))


async def until_received(running: Running, received: Mapping[str, bytes], since: set[str]) -> None:
    """Wait until every event written to the outbox after ``since`` was taken has reached
    the subscriber: every event leaves through the outbox, so nothing else follows."""

    async def check() -> bool | None:
        return True if (await written_events(running)) - since <= received.keys() else None

    await eventually(check, what="every event the plugin wrote")


async def test_each_change_publishes_its_event_and_no_token(
    running: Running, nats_server: NatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    # By event id: the relay delivers at least once, and a core NATS subscriber (the
    # gateway's cache invalidation is one) may see a publish twice; JetStream dedupes.
    received: dict[str, bytes] = {}

    async def collect(msg: Msg) -> None:
        received.setdefault(parse_event(msg.data).id, msg.data)

    await nc.subscribe(subject_of("machine_user.>"), cb=collect)
    await nc.flush()
    try:
        api, clock = running.api, running.clock
        before = await written_events(running)
        created = await api.create("evented")
        machine_user_id = created.machine_user.machine_user_id
        rotated = await api.rotate(machine_user_id, grace_seconds=30)
        await api.validate(rotated.token)  # not a change: no event
        await api.delete(machine_user_id)
        await until_received(running, received, before)
    finally:
        await nc.close()

    assert len(received) == 3
    for data in received.values():
        for token in (created.token, rotated.token):
            assert token.encode() not in data
            assert token[12:-4].encode() not in data
    events = sorted(
        (parse_event(data) for data in received.values()),
        key=lambda e: (e.time.seconds, e.time.nanos),
    )
    assert [e.type for e in events] == [
        "machine_user.created",
        "machine_user.token_rotated",
        "machine_user.deleted",
    ]
    assert {e.subject for e in events} == {f"machine-users/{machine_user_id}"}
    created_payload, rotated_payload, deleted_payload = (unpack_payload(e) for e in events)
    assert isinstance(created_payload, machine_user_events_pb2.MachineUserCreated)
    assert isinstance(rotated_payload, machine_user_events_pb2.MachineUserTokenRotated)
    assert isinstance(deleted_payload, machine_user_events_pb2.MachineUserDeleted)
    assert created_payload.actor == event_pb2.Actor(
        type=event_pb2.ACTOR_TYPE_MACHINE, id=ADMIN.subject
    )
    assert created_payload.machine_user.name == "evented"
    assert rotated_payload.machine_user.token_info.prefix == rotated.token[:12]
    grace_end = rotated_payload.previous_token_expire_time.ToDatetime(tzinfo=dt.UTC)
    assert grace_end == clock.now() + dt.timedelta(seconds=30)
    assert deleted_payload.machine_user.machine_user_id == machine_user_id


async def test_a_refused_change_publishes_nothing(
    running: Running, nats_server: NatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    received: dict[str, bytes] = {}

    async def collect(msg: Msg) -> None:
        received.setdefault(parse_event(msg.data).id, msg.data)

    await nc.subscribe(subject_of("machine_user.>"), cb=collect)
    await nc.flush()
    try:
        start = await written_events(running)
        await running.api.create("once")
        await until_received(running, received, start)
        assert len(received) == 1, "the created event"
        before = await written_events(running)
        received.clear()
        await failure(running.api.create("once"))
        await failure(running.api.rotate("no-such-id"))
        await running.api.delete("no-such-id", allow_missing=True)
        await until_received(running, received, before)
    finally:
        await nc.close()

    assert received == {}
