"""Health: pushed by each instance's Health/Watch stream, UNREACHABLE when it breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.core import Registry
from registry.model import Health, InstanceRecord, Registration, ServiceSpec
from registry.store import RegistryStore
from tests.registry.conftest import FAST_BACKOFF
from tests.support.registry import Contract, FakePlugin, Method, StartPlugin, contract_file
from tests.support.waiting import eventually, until

if TYPE_CHECKING:
    from registry.events import RegistryEvent

    Stub = registry_pb2_grpc.RegistryServiceAsyncStub

WIDGETS = Contract(
    package="test.widgets.v1",
    service="WidgetService",
    methods=[Method("GetWidget", [("GET", "/v1/widgets/{id}")])],
    plugin=options_pb2.Plugin(version="1.0.0"),
)
SERVING = registry_pb2.HEALTH_STATUS_SERVING
NOT_SERVING = registry_pb2.HEALTH_STATUS_NOT_SERVING
UNREACHABLE = registry_pb2.HEALTH_STATUS_UNREACHABLE


async def register(stub: Stub, plugin: FakePlugin) -> str:
    response = await stub.RegisterInstance(
        registry_pb2.RegisterInstanceRequest(
            service="widgets",
            address=plugin.address,
            grpc_services=list(plugin.services),
            file_descriptor_set=plugin.files,
        )
    )
    return response.instance.instance_id


async def wait_for_health(
    stub: Stub, health: registry_pb2.HealthStatus.ValueType, *, timeout_seconds: float = 5.0
) -> registry_pb2.Service:
    async def check() -> registry_pb2.Service | None:
        got = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
        return got.service if got.service.instances[0].health == health else None

    name = registry_pb2.HealthStatus.Name(health)
    return await eventually(check, timeout_seconds=timeout_seconds, what=f"health {name}")


async def test_registered_instance_becomes_serving(stub: Stub, start_plugin: StartPlugin) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])

    await register(stub, plugin)

    service = await wait_for_health(stub, SERVING)
    assert service.health == SERVING


async def test_not_serving_instance_is_seen_from_its_open_watch_stream(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(stub, plugin)
    await wait_for_health(stub, SERVING)
    calls = plugin.health.calls

    await plugin.set_serving(False)

    service = await wait_for_health(stub, NOT_SERVING)
    assert service.health != SERVING
    # Pushed to the registry at once, on the stream it holds: no check, no new stream.
    assert plugin.health.calls == calls
    await plugin.set_serving(True)
    await wait_for_health(stub, SERVING)


async def test_killed_instance_is_unreachable_when_its_watch_stream_breaks(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(stub, plugin)
    await wait_for_health(stub, SERVING)

    await plugin.stop(grace_seconds=None)

    # Still listed, as UNREACHABLE: the broken stream said so, not its lease running out
    # (an expired lease removes the instance).
    service = await wait_for_health(stub, UNREACHABLE)
    assert service.health == UNREACHABLE


async def test_health_changes_are_pushed_to_watchers(stub: Stub, start_plugin: StartPlugin) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(stub, plugin)
    await wait_for_health(stub, SERVING)
    call = stub.WatchServices(registry_pb2.WatchServicesRequest())
    try:
        async with asyncio.timeout(5):
            message = await call.read()
            while getattr(message, "change_type", None) != registry_pb2.CHANGE_TYPE_SYNCED:
                message = await call.read()

            await plugin.set_serving(False)

            change = await call.read()
        assert isinstance(change, registry_pb2.WatchServicesResponse)
        assert change.service.name == "widgets"
        assert change.service.instances[0].health == NOT_SERVING
        assert change.service.health == NOT_SERVING
    finally:
        call.cancel()


async def test_service_serves_while_any_instance_serves(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    first = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    second = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(stub, first)
    await register(stub, second)

    async def both_serving() -> registry_pb2.Service | None:
        got = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
        healthy = all(i.health == SERVING for i in got.service.instances)
        return got.service if healthy else None

    await eventually(both_serving, what="both instances serving")
    await first.stop()

    async def one_down() -> registry_pb2.Service | None:
        got = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
        states = sorted(i.health for i in got.service.instances)
        return got.service if states == [SERVING, UNREACHABLE] else None

    service = await eventually(one_down, what="one instance unreachable")
    assert service.health == SERVING


class _StoreWithAHook(RegistryStore):
    """The real store, running ``while_saving`` before each save goes through."""

    while_saving: Callable[[], Awaitable[None]] | None = None

    async def save(
        self, spec: ServiceSpec, instance: InstanceRecord, events: Sequence[RegistryEvent] = ()
    ) -> None:
        if self.while_saving is not None:
            await self.while_saving()
        await super().save(spec, instance, events)


async def test_a_health_change_while_a_registration_is_stored_is_kept(
    tmp_path: Path, start_plugin: StartPlugin
) -> None:
    # As when a crashed instance restarts at its address within its lease: its health
    # watch reconnects (SERVING) while its registration is being stored.
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    store = _StoreWithAHook(f"sqlite:///{tmp_path / 'registry.db'}")
    registry = Registry(store, health_backoff=FAST_BACKOFF)
    registration = Registration(
        service="widgets",
        address=plugin.address,
        grpc_services=plugin.services,
        file_descriptor_set=plugin.files.SerializeToString(),
    )

    def health() -> Health | None:
        found = registry.instance(instance_id)
        return found.health if found is not None else None

    async def serving_again() -> None:
        await plugin.set_serving(True)
        await until(lambda: health() is Health.SERVING, what="SERVING reported")

    await registry.start()
    try:
        instance_id = (await registry.register(registration)).instance_id
        await until(lambda: health() is Health.SERVING, what="SERVING")
        await plugin.set_serving(False)
        await until(lambda: health() is Health.NOT_SERVING, what="NOT_SERVING")
        store.while_saving = serving_again

        await registry.register(registration)
    finally:
        await registry.close()

    assert health() is Health.SERVING
