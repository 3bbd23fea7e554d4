"""The registry with the toolkit's plugin server, and the events it publishes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc

from meshkit.config import MeshConfig
from meshkit.server import PluginServer
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from plugmesh.users.v1 import users_pb2
from registry.app import RegistryServer
from registry.config import RegistryConfig
from registry.events import RegistryEvent, RegistryEventType
from registry.model import Health, Registration
from tests.support.registry import (
    Contract,
    StartPlugin,
    StartRegistry,
    contract_file,
    descriptor_set,
)
from tests.support.unimplemented import unimplemented
from tests.support.waiting import eventually

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


class RecordingPublisher:
    """Keeps every published event."""

    def __init__(self) -> None:
        self.events: list[RegistryEvent] = []

    async def publish(self, event: RegistryEvent) -> None:
        self.events.append(event)

    async def of(self, instance_id: str, count: int) -> list[RegistryEvent] | None:
        """The events about one instance, once there are at least ``count`` of them."""
        mine = [e for e in self.events if e.instance.instance_id == instance_id]
        return mine if len(mine) >= count else None


async def test_instance_lifecycle_is_published_as_registry_events(
    registry_config: RegistryConfig, start_plugin: StartPlugin
) -> None:
    publisher = RecordingPublisher()
    server = RegistryServer(registry_config, events=publisher)
    await server.start()
    try:
        widgets = Contract(package="test.widgets.v1", service="WidgetService")
        plugin = await start_plugin([contract_file(widgets)], [widgets.full_name])
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            registered = await stub.RegisterInstance(
                registry_pb2.RegisterInstanceRequest(service="widgets", address=plugin.address)
            )
            instance_id = registered.instance.instance_id

            await eventually(lambda: publisher.of(instance_id, 2), what="registered, SERVING")
            await stub.DeregisterInstance(
                registry_pb2.DeregisterInstanceRequest(instance_id=instance_id)
            )
            events = await eventually(lambda: publisher.of(instance_id, 3), what="deregistered")
    finally:
        await server.close()

    assert [(e.type, e.instance.health) for e in events] == [
        (RegistryEventType.REGISTERED, Health.UNKNOWN),
        (RegistryEventType.HEALTH_CHANGED, Health.SERVING),
        (RegistryEventType.DEREGISTERED, Health.SERVING),
    ]
    assert events[1].previous_health is Health.UNKNOWN


async def test_expired_lease_is_published_as_an_expired_event(
    registry_config: RegistryConfig,
) -> None:
    publisher = RecordingPublisher()
    config = dataclasses.replace(registry_config, lease_seconds=0.3)
    server = RegistryServer(config, events=publisher)
    await server.start()
    try:
        widgets = Contract(package="test.widgets.v1", service="WidgetService")
        instance = await server.registry.register(
            Registration(
                service="widgets",
                address="127.0.0.1:9",
                grpc_services=(widgets.full_name,),
                file_descriptor_set=descriptor_set([contract_file(widgets)]).SerializeToString(),
            )
        )

        async def expired() -> list[RegistryEvent] | None:
            events = await publisher.of(instance.instance_id, 1)
            return events if events and events[-1].type is RegistryEventType.EXPIRED else None

        events = await eventually(expired, what="an expired event")
    finally:
        await server.close()

    assert events[0].type is RegistryEventType.REGISTERED
    assert [e.type for e in events].count(RegistryEventType.EXPIRED) == 1
