"""The registry's events on JetStream: written with each change, sent through its outbox."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from launcher.natsd import NatsServer
from meshkit.db import Database
from meshkit.events import EventBus, EventSettings, parse_event, unpack_payload
from meshkit.events.streams import EVENTS_STREAM
from meshkit.events.tables import OutboxRecord
from meshkit.tracing import new_trace
from plugmesh.events.v1 import event_pb2, registry_events_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from registry.config import RegistryConfig
from registry.events import RegistryEvent, RegistryEventType
from registry.model import Health, Instance, InstanceRecord, Registration
from registry.store import RegistryStore
from tests.registry.conftest import FAST_BACKOFF
from tests.support.registry import Contract, StartPlugin, contract_file, descriptor_set
from tests.support.waiting import eventually

# Publishes give up quickly and the relay retries often, so an outage is short to wait out.
FAST_EVENTS = EventSettings(
    publish_timeout_seconds=0.5, outbox_poll_millis=200, outbox_retry_max_millis=300
)
WIDGETS = Contract(package="test.widgets.v1", service="WidgetService")
NOW = datetime(2026, 12, 4, tzinfo=UTC)


@contextlib.asynccontextmanager
async def registry_with_bus(config: RegistryConfig, nats_url: str) -> AsyncIterator[RegistryServer]:
    """A registry whose events go to ``nats_url`` through the outbox of its database."""
    database = Database(config.resolved_database_url)
    bus = EventBus("registry", database=database, nats_url=nats_url, settings=FAST_EVENTS)
    server = RegistryServer(config, event_bus=bus, health_backoff=FAST_BACKOFF)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
        await database.close()


async def register_widgets(server: RegistryServer) -> Instance:
    """Register a widgets instance at an address where nothing answers."""
    return await server.registry.register(
        Registration(
            service="widgets",
            address="127.0.0.1:9",
            grpc_services=(WIDGETS.full_name,),
            file_descriptor_set=descriptor_set([contract_file(WIDGETS)]).SerializeToString(),
        )
    )


async def registry_events(js: JetStreamContext, instance_id: str) -> list[event_pb2.Event]:
    """Every event about ``instance_id`` in the event stream, in stream order."""
    stream = await js.stream_info(EVENTS_STREAM)
    if stream.state.messages == 0:
        return []
    subscription = await js.subscribe(
        "plugmesh.events.registry.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    found = []
    try:
        last = stream.state.last_seq
        while True:
            msg = await subscription.next_msg(timeout=2)
            event = parse_event(msg.data)
            if event.subject == f"instances/{instance_id}":
                found.append(event)
            if msg.metadata.sequence.stream >= last:
                return found
    finally:
        await subscription.unsubscribe()


async def test_an_instance_lifecycle_reaches_jetstream_in_order_with_typed_payloads(
    registry_config: RegistryConfig, nats_server: NatsServer, start_plugin: StartPlugin
) -> None:
    trace = new_trace()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        async with registry_with_bus(registry_config, nats_server.url) as server:
            plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = registry_pb2_grpc.RegistryServiceStub(channel)
                registered = await stub.RegisterInstance(
                    registry_pb2.RegisterInstanceRequest(service="widgets", address=plugin.address),
                    metadata=tuple(trace.headers().items()),
                )
                instance_id = registered.instance.instance_id

                async def serving() -> list[event_pb2.Event] | None:
                    events = await registry_events(js, instance_id)
                    return events if len(events) >= 2 else None

                await eventually(serving, timeout_seconds=10, what="registered, then SERVING")
                await stub.DeregisterInstance(
                    registry_pb2.DeregisterInstanceRequest(instance_id=instance_id)
                )

            async def deregistered() -> list[event_pb2.Event] | None:
                events = await registry_events(js, instance_id)
                return events if len(events) >= 3 else None

            events = await eventually(deregistered, timeout_seconds=10, what="deregistered")
            sent = await js.get_last_msg(
                EVENTS_STREAM, "plugmesh.events.registry.instance.registered"
            )
    finally:
        await nc.close()

    # The registration's event continues the trace of the RegisterInstance call.
    assert sent.data is not None
    assert parse_event(sent.data).id == events[0].id
    assert sent.headers is not None
    assert sent.headers["traceparent"].split("-")[1] == trace.trace_id

    assert [e.type for e in events] == [
        "registry.instance.registered",
        "registry.instance.health_changed",
        "registry.instance.deregistered",
    ]
    assert {e.source for e in events} == {"/plugmesh/registry"}
    payloads = [unpack_payload(e) for e in events]
    registered_payload, health, gone = payloads
    assert isinstance(registered_payload, registry_events_pb2.RegistryInstanceRegistered)
    assert registered_payload.actor == event_pb2.Actor(
        type=event_pb2.ACTOR_TYPE_SERVICE, id="widgets"
    )
    assert registered_payload.instance.address == plugin.address
    assert isinstance(health, registry_events_pb2.RegistryInstanceHealthChanged)
    assert health.actor == event_pb2.Actor(type=event_pb2.ACTOR_TYPE_SYSTEM, id="registry")
    assert health.previous_health == registry_pb2.HEALTH_STATUS_UNKNOWN
    assert health.instance.health == registry_pb2.HEALTH_STATUS_SERVING
    assert isinstance(gone, registry_events_pb2.RegistryInstanceDeregistered)
    assert gone.instance.instance_id == instance_id


async def test_an_expired_lease_reaches_jetstream_as_an_expired_event(
    registry_config: RegistryConfig, nats_server: NatsServer
) -> None:
    config = dataclasses.replace(registry_config, lease_seconds=0.3)
    nc = await nats.connect(nats_server.url)
    try:
        async with registry_with_bus(config, nats_server.url) as server:
            instance = await register_widgets(server)

            async def expired() -> list[event_pb2.Event] | None:
                events = await registry_events(nc.jetstream(), instance.instance_id)
                types = [e.type for e in events]
                return events if "registry.instance.expired" in types else None

            events = await eventually(expired, timeout_seconds=10, what="an expired event")
    finally:
        await nc.close()

    assert events[0].type == "registry.instance.registered"
    assert [e.type for e in events].count("registry.instance.expired") == 1


async def test_events_of_changes_made_while_nats_is_down_arrive_once_it_is_back(
    database_url: str, registry_config: RegistryConfig, tmp_path: Path
) -> None:
    registry_config = dataclasses.replace(registry_config, database_url=database_url)
    store = tmp_path / "jetstream"
    nats_server = NatsServer(store, log_path=tmp_path / "nats.log")
    await nats_server.start()
    port = nats_server.port
    try:
        async with registry_with_bus(registry_config, nats_server.url) as server:
            await nats_server.stop()
            instance = await register_widgets(server)
            database = Database(registry_config.resolved_database_url)
            try:
                async with database.read() as session:
                    pending = await session.scalar(
                        select(func.count())
                        .select_from(OutboxRecord)
                        .where(
                            OutboxRecord.sent_at.is_(None),
                            OutboxRecord.event_type == "registry.instance.registered",
                        )
                    )
            finally:
                await database.close()
            assert pending, "the registration's event waits in the registry's outbox"

            nats_server = NatsServer(store, port=port, log_path=tmp_path / "nats.log")
            await nats_server.start()
            nc = await nats.connect(nats_server.url)
            try:

                async def arrived() -> list[event_pb2.Event] | None:
                    return await registry_events(nc.jetstream(), instance.instance_id) or None

                events = await eventually(arrived, timeout_seconds=15, what="the event")
            finally:
                await nc.close()
    finally:
        await nats_server.stop()

    # The address answers nothing, so its health (UNREACHABLE) may follow the registration.
    assert events[0].type == "registry.instance.registered"
    assert {e.type for e in events[1:]} <= {"registry.instance.health_changed"}


# An event's type and payload (a registry_events_pb2 message; each has an ``instance``).
Written = tuple[str, Any]


async def outbox_events(config: RegistryConfig, instance_id: str) -> list[Written]:
    """The events about one instance in the registry's outbox, in the order written."""
    database = Database(config.resolved_database_url)
    try:
        async with database.read() as session:
            rows = await session.scalars(select(OutboxRecord).order_by(OutboxRecord.event_id))
            events = [parse_event(row.envelope) for row in rows]
    finally:
        await database.close()
    subject = f"instances/{instance_id}"
    return [(e.type, unpack_payload(e)) for e in events if e.subject == subject]


def at_least(
    config: RegistryConfig, instance_id: str, count: int
) -> Callable[[], Awaitable[list[Written] | None]]:
    """A check for :func:`eventually`: the instance's events, once there are ``count``."""

    async def check() -> list[Written] | None:
        events = await outbox_events(config, instance_id)
        return events if len(events) >= count else None

    return check


async def test_instance_lifecycle_is_written_to_the_outbox_as_registry_events(
    registry_config: RegistryConfig, nats_server: NatsServer, start_plugin: StartPlugin
) -> None:
    async with registry_with_bus(registry_config, nats_server.url) as server:
        plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            registered = await stub.RegisterInstance(
                registry_pb2.RegisterInstanceRequest(service="widgets", address=plugin.address)
            )
            instance_id = registered.instance.instance_id

            await eventually(at_least(registry_config, instance_id, 2), what="registered, SERVING")
            await stub.DeregisterInstance(
                registry_pb2.DeregisterInstanceRequest(instance_id=instance_id)
            )
            events = await eventually(at_least(registry_config, instance_id, 3), what="gone")

    assert [(kind, payload.instance.health) for kind, payload in events] == [
        (RegistryEventType.REGISTERED.value, registry_pb2.HEALTH_STATUS_UNKNOWN),
        (RegistryEventType.HEALTH_CHANGED.value, registry_pb2.HEALTH_STATUS_SERVING),
        (RegistryEventType.DEREGISTERED.value, registry_pb2.HEALTH_STATUS_SERVING),
    ]
    assert events[1][1].previous_health == registry_pb2.HEALTH_STATUS_UNKNOWN


async def test_expired_lease_is_written_to_the_outbox_as_an_expired_event(
    registry_config: RegistryConfig, nats_server: NatsServer
) -> None:
    config = dataclasses.replace(registry_config, lease_seconds=0.3)
    async with registry_with_bus(config, nats_server.url) as server:
        instance = await register_widgets(server)

        async def expired() -> list[str] | None:
            written = await outbox_events(config, instance.instance_id)
            types = [kind for kind, _ in written]
            return types if types and types[-1] == RegistryEventType.EXPIRED.value else None

        types = await eventually(expired, what="an expired event")

    assert types[0] == RegistryEventType.REGISTERED.value
    assert types.count(RegistryEventType.EXPIRED.value) == 1


class RecordingOutbox:
    """Takes note of the events written, in the store's transactions."""

    def __init__(self) -> None:
        self.written: list[RegistryEvent] = []

    def add(self, session: Session, events: Sequence[RegistryEvent]) -> None:
        self.written.extend(events)


async def test_closing_the_store_finishes_the_event_writes_already_asked_for(
    registry_config: RegistryConfig,
) -> None:
    outbox = RecordingOutbox()
    store = RegistryStore(registry_config.resolved_database_url, outbox=outbox)
    await store.open()
    instance = Instance(
        InstanceRecord("i-1", "widgets", "127.0.0.1:9", "1.0.0", {}, NOW, NOW),
        Health.SERVING,
        NOW,
    )
    events = [
        RegistryEvent(RegistryEventType.HEALTH_CHANGED, instance, NOW, Health.UNKNOWN)
        for _ in range(3)
    ]
    for event in events:
        store.add_events([event])  # not awaited, as health changes are written

    await store.close()

    assert outbox.written == events
    with pytest.raises(RuntimeError, match="not open"):
        store.add_events(events[:1])
