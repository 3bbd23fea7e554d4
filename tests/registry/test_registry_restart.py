"""Registrations survive a registry restart; the store keeps exactly what was declared.

Each test runs on SQLite and on PostgreSQL (the session's server, tests/postgres.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.model import Dependency, HttpRoute, InstanceRecord, ServiceSpec
from registry.store import RegistryStore
from tests.support.registry import Contract, Method, StartPlugin, StartRegistry, contract_file
from tests.support.waiting import eventually

WIDGETS = Contract(
    package="test.widgets.v1",
    service="WidgetService",
    methods=[Method("GetWidget", [("GET", "/v1/widgets/{id}")])],
    plugin=options_pb2.Plugin(version="2.1.0", consumes=["user.>"]),
)


async def test_registrations_survive_a_registry_restart(
    database_url: str, start_registry: StartRegistry, start_plugin: StartPlugin
) -> None:
    # database_url comes first: it is set up first and dropped last, after the registries.
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    first = await start_registry(database_url=database_url)
    async with grpc.aio.insecure_channel(first.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        registered = await stub.RegisterInstance(
            registry_pb2.RegisterInstanceRequest(
                service="widgets", address=plugin.address, metadata={"pid": "7"}
            )
        )
        before = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
    await first.close()

    second = await start_registry(database_url=database_url)
    async with grpc.aio.insecure_channel(second.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        instance_id = registered.instance.instance_id

        async def serving() -> registry_pb2.Service | None:
            got = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
            serves = got.service.health == registry_pb2.HEALTH_STATUS_SERVING
            return got.service if serves else None

        after = await eventually(serving, what="the reloaded instance serving again")
        await stub.RenewLease(registry_pb2.RenewLeaseRequest(instance_id=instance_id))
        listed = await stub.ListServices(registry_pb2.ListServicesRequest())

    [instance] = after.instances
    assert instance.instance_id == instance_id
    assert dict(instance.metadata) == {"pid": "7"}
    assert instance.register_time == before.service.instances[0].register_time
    assert after.schema_digest == before.service.schema_digest
    assert list(after.routes) == list(before.service.routes)
    assert list(after.consumes) == ["user.>"]
    # The first registry deregistered itself on close; only the new one is listed.
    [registry] = [s for s in listed.services if s.name == "registry"]
    assert [i.address for i in registry.instances] == [second.address]


async def test_store_round_trips_services_and_instances(database_url: str) -> None:
    store = RegistryStore(database_url)
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    spec = ServiceSpec(
        name="widgets",
        version="1.0.0",
        grpc_services=("test.widgets.v1.WidgetService",),
        produces=("widget.created",),
        consumes=("user.*",),
        dependencies=(Dependency("test.users.v1.UserService", "^1", optional=True),),
        routes=(HttpRoute("GET", "/v1/widgets", "test.widgets.v1.WidgetService.List"),),
        schema=b"\x0a\x00",
        schema_digest="sha256:00",
    )
    record = InstanceRecord("id-1", "widgets", "127.0.0.1:1", "1.0.0", {"k": "v"}, now, now)
    await store.open()
    await store.save(spec, record)
    await store.close()

    reopened = RegistryStore(database_url)
    await reopened.open()
    try:
        state = await reopened.load()
        await reopened.delete_instance("id-1", drop_service="widgets")
        emptied = await reopened.load()
    finally:
        await reopened.close()

    assert state.services == [spec]
    assert state.instances == [record]
    assert (emptied.services, emptied.instances) == ([], [])
