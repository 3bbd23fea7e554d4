"""The registry with the toolkit's plugin server, and the events it writes to its outbox."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import select

from meshkit.config import MeshConfig
from meshkit.db import Database
from meshkit.events import EventBus, parse_event, unpack_payload
from meshkit.events.tables import OutboxRecord
from meshkit.server import PluginServer
from meshkit.unimplemented import unimplemented
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from plugmesh.users.v1 import users_pb2
from registry.app import RegistryServer
from registry.config import RegistryConfig
from registry.events import RegistryEventType
from registry.model import Registration
from registry.testing import (
    Contract,
    StartPlugin,
    StartRegistry,
    contract_file,
    descriptor_set,
    eventually,
)

SECRET = "mesh-secret"


async def test_toolkit_plugin_registers_with_the_secret_and_serves(
    start_registry: StartRegistry, tmp_path: Path
) -> None:
    registry = await start_registry(registration_secret=SECRET)
    mesh = MeshConfig.from_env(
        {
            "PLUGMESH_REGISTRY_ADDRESS": registry.address,
            "PLUGMESH_REGISTRATION_SECRET": SECRET,
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
        }
    )
    plugin = PluginServer(
        "users",
        [unimplemented(users_pb2.DESCRIPTOR.services_by_name["UserService"])],
        address="127.0.0.1:0",
        config=mesh,
    )
    await plugin.start()
    try:
        async with grpc.aio.insecure_channel(registry.address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)

            async def serving() -> registry_pb2.Service | None:
                try:
                    got = await stub.GetService(
                        registry_pb2.GetServiceRequest(service="plugmesh.users.v1.UserService")
                    )
                except grpc.aio.AioRpcError:
                    return None
                return (
                    got.service
                    if got.service.health == registry_pb2.HEALTH_STATUS_SERVING
                    else None
                )

            service = await eventually(serving, what="the users plugin serving")
            assert service.name == "users"
            assert [i.address for i in service.instances] == [plugin.address]
            assert ("GET", "/api/plugins/user-management/users") in {
                (r.method, r.path) for r in service.routes
            }
    finally:
        await plugin.stop()

    # The toolkit deregisters on stop; with its last instance gone the service is removed.
    assert [s.name for s in registry.registry.list_services()] == ["registry"]


# Nothing listens there: the events stay in the outbox, where the tests read them.
NO_NATS = "nats://127.0.0.1:1"


@contextlib.asynccontextmanager
async def registry_with_outbox(config: RegistryConfig) -> AsyncIterator[RegistryServer]:
    """A registry writing its events to the outbox of its database (NATS never answers)."""
    database = Database(config.resolved_database_url)
    bus = EventBus("registry", database=database, nats_url=NO_NATS, connect_in_background=True)
    server = RegistryServer(config, event_bus=bus)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
        await database.close()


# An event's type and payload (a registry_events_pb2 message; each has an ``instance``).
Written = tuple[str, Any]


async def written_events(config: RegistryConfig, instance_id: str) -> list[Written]:
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
        events = await written_events(config, instance_id)
        return events if len(events) >= count else None

    return check


async def test_instance_lifecycle_is_written_to_the_outbox_as_registry_events(
    registry_config: RegistryConfig, start_plugin: StartPlugin
) -> None:
    async with registry_with_outbox(registry_config) as server:
        widgets = Contract(package="test.widgets.v1", service="WidgetService")
        plugin = await start_plugin([contract_file(widgets)], [widgets.full_name])
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
    registry_config: RegistryConfig,
) -> None:
    config = dataclasses.replace(registry_config, lease_seconds=0.3)
    async with registry_with_outbox(config) as server:
        widgets = Contract(package="test.widgets.v1", service="WidgetService")
        instance = await server.registry.register(
            Registration(
                service="widgets",
                address="127.0.0.1:9",
                grpc_services=(widgets.full_name,),
                file_descriptor_set=descriptor_set([contract_file(widgets)]).SerializeToString(),
            )
        )

        async def expired() -> list[str] | None:
            written = await written_events(config, instance.instance_id)
            types = [kind for kind, _ in written]
            return types if types and types[-1] == RegistryEventType.EXPIRED.value else None

        types = await eventually(expired, what="an expired event")

    assert types[0] == RegistryEventType.REGISTERED.value
    assert types.count(RegistryEventType.EXPIRED.value) == 1
