"""The catalog follows the registry: registrations, departures, health, contracts, restarts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, json_format

from gateway.catalog import Catalog
from gateway.model import Snapshot
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from tests.gateway.conftest import FAST, StartEcho, serving_instances
from tests.gateway.echo import SERVICE, EchoRequest
from tests.support.registry import (
    Contract,
    FakePlugin,
    Method,
    StartPlugin,
    StartRegistry,
    contract_file,
)
from tests.support.waiting import eventually

WIDGETS = Contract(
    package="test.widgets.v1",
    service="WidgetService",
    methods=[Method("GetWidget", [("GET", "/v1/widgets/{id}")])],
)


async def register(registry_address: str, service: str, plugin: FakePlugin) -> str:
    """Register ``plugin`` as an instance of ``service``; returns its instance id."""
    async with grpc.aio.insecure_channel(registry_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        response = await stub.RegisterInstance(
            registry_pb2.RegisterInstanceRequest(service=service, address=plugin.address)
        )
    return response.instance.instance_id


async def gone(catalog: Catalog, service: str) -> None:
    async def check() -> bool | None:
        return True if catalog.service(service) is None else None

    await eventually(check, what=f"{service} leaving the catalog")


async def test_a_registered_plugin_is_routable_by_either_method_name(
    catalog: Catalog, start_echo: StartEcho
) -> None:
    plugin = await start_echo()
    await serving_instances(catalog, "echo", 1)

    slash, dotted = catalog.method(f"/{SERVICE}/Echo"), catalog.method(f"{SERVICE}.Echo")

    assert slash is not None
    assert slash is dotted
    assert (slash.service, slash.path, slash.full_name) == (
        "echo",
        f"/{SERVICE}/Echo",
        dotted.full_name,
    )
    service = catalog.service("echo")
    assert service is not None
    assert service.schema is not None
    assert [i.address for i in service.serving_instances] == [plugin.address]
    assert [r.path for r in service.routes] == ["/v1/echo/{message}"]
    request_class = catalog.message_class(slash.descriptor.input_type)
    assert (
        json_format.ParseDict({"message": "x"}, request_class()).SerializeToString()
        == EchoRequest(message="x").SerializeToString()
    )


async def test_methods_list_every_served_method_with_cardinality_and_safety(
    catalog: Catalog, start_echo: StartEcho
) -> None:
    await start_echo()
    await serving_instances(catalog, "echo", 1)

    echo = {m.descriptor.name: m for m in catalog.methods() if m.service == "echo"}

    shapes = {name: (m.client_streaming, m.server_streaming, m.safe) for name, m in echo.items()}
    assert shapes == {
        "Echo": (False, False, True),
        "Mutate": (False, False, False),
        "Stream": (False, True, True),
        "Collect": (True, False, False),
        "Chat": (True, True, False),
    }
    # The registry registers itself like any plugin: its methods are routable too, and
    # carry their access option for the gateway's auth to read.
    listed = catalog.method("/plugmesh.registry.v1.RegistryService/ListServices")
    register = catalog.method("/plugmesh.registry.v1.RegistryService/RegisterInstance")
    assert listed is not None
    assert register is not None
    assert (listed.access, register.access) == (
        options_pb2.ACCESS_AUTHENTICATED,
        options_pb2.ACCESS_INTERNAL,
    )
    assert echo["Echo"].access == options_pb2.ACCESS_PUBLIC
    assert echo["Mutate"].access == options_pb2.ACCESS_UNSPECIFIED


async def test_a_plugin_that_leaves_is_dropped(catalog: Catalog, start_echo: StartEcho) -> None:
    plugin = await start_echo()
    await serving_instances(catalog, "echo", 1)

    await plugin.stop()

    await gone(catalog, "echo")
    assert catalog.method(f"/{SERVICE}/Echo") is None
    assert SERVICE not in catalog.snapshot.owners


async def test_health_changes_reach_the_catalog_without_changing_its_methods(
    catalog: Catalog, registry: RegistryServer, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(registry.address, "widgets", plugin)
    await serving_instances(catalog, "widgets", 1)
    seen: list[Snapshot] = []
    unsubscribe = catalog.subscribe(seen.append)
    before = catalog.snapshot

    await plugin.set_serving(False)
    await serving_instances(catalog, "widgets", 0)
    await plugin.set_serving(True)
    await serving_instances(catalog, "widgets", 1)
    unsubscribe()

    assert seen
    assert all(s.schema_generation == before.schema_generation for s in seen)
    assert [s.generation for s in seen] == sorted({s.generation for s in seen})
    assert catalog.method("test.widgets.v1.WidgetService.GetWidget") is not None


async def test_a_new_contract_version_replaces_the_old_one(
    catalog: Catalog, registry: RegistryServer, start_plugin: StartPlugin
) -> None:
    first = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(registry.address, "widgets", first)
    await serving_instances(catalog, "widgets", 1)
    old = catalog.service("widgets")
    assert old is not None
    assert old.schema is not None
    v2 = dataclasses.replace(WIDGETS, methods=[*WIDGETS.methods, Method("DeleteWidget")])

    second = await start_plugin([contract_file(v2)], [v2.full_name])
    await register(registry.address, "widgets", second)
    await serving_instances(catalog, "widgets", 2)

    new = catalog.service("widgets")
    assert new is not None
    assert new.schema is not None
    assert new.schema.digest != old.schema.digest
    assert catalog.method("test.widgets.v1.WidgetService.DeleteWidget") is not None


async def test_plugins_shipping_different_files_under_one_name_are_both_served(
    catalog: Catalog, registry: RegistryServer, start_plugin: StartPlugin
) -> None:
    contracts = [
        Contract(
            package=f"test.{name}.v1",
            service="S",
            methods=[Method(name.title())],
            file_name="shared/service.proto",
        )
        for name in ("alpha", "beta")
    ]
    for contract in contracts:
        plugin = await start_plugin([contract_file(contract)], [contract.full_name])
        await register(registry.address, contract.package.split(".")[1], plugin)
    await serving_instances(catalog, "alpha", 1)
    await serving_instances(catalog, "beta", 1)

    assert catalog.method("test.alpha.v1.S.Alpha") is not None
    assert catalog.method("test.beta.v1.S.Beta") is not None


async def test_a_plugin_without_any_service_gets_no_methods(
    catalog: Catalog, registry: RegistryServer, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([descriptor_pb2.FileDescriptorProto(name="empty.proto")], [])
    await register(registry.address, "quiet", plugin)
    await serving_instances(catalog, "quiet", 1)

    quiet = catalog.service("quiet")
    assert quiet is not None
    assert quiet.schema is None
    assert quiet.grpc_services == ()


async def test_catalog_watches_again_after_a_registry_restart_and_takes_its_state(
    start_registry: StartRegistry, start_plugin: StartPlugin, tmp_path: Path
) -> None:
    first = await start_registry()
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await register(first.address, "widgets", plugin)
    catalog = Catalog(first.address, backoff=FAST)
    await catalog.start()
    try:
        await serving_instances(catalog, "widgets", 1)
        await first.close()
        await eventually(
            lambda: _value(not catalog.connected), what="the catalog noticing the restart"
        )
        assert catalog.service("widgets") is not None, "the last known state stays served"

        # A registry with an empty database at the same address: widgets is gone there.
        second = await start_registry(address=first.address, data_dir=tmp_path / "fresh")
        await gone(catalog, "widgets")
        other = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
        await register(second.address, "widgets", other)
        await serving_instances(catalog, "widgets", 1)
        widgets = catalog.service("widgets")
        assert widgets is not None
        assert [i.address for i in widgets.instances] == [other.address]
        assert catalog.ready
        assert catalog.connected
    finally:
        await catalog.close()


async def _value(condition: bool) -> bool | None:
    return True if condition else None


async def test_changes_yield_the_current_snapshot_then_the_latest(
    catalog: Catalog, start_echo: StartEcho
) -> None:
    changes = catalog.changes()
    first = await anext(changes)
    assert first is catalog.snapshot

    await start_echo()
    await serving_instances(catalog, "echo", 1)

    latest = await anext(changes)
    assert latest.generation > first.generation
    await changes.aclose()


async def test_close_is_idempotent_and_start_after_close_does_nothing(
    registry: RegistryServer,
) -> None:
    catalog = Catalog(registry.address, backoff=FAST)
    await catalog.start()
    await catalog.start()
    assert await catalog.wait_ready(timeout_seconds=5)

    await catalog.close()
    await catalog.close()
    await catalog.start()

    assert not catalog.connected
    assert await Catalog(registry.address).wait_ready(timeout_seconds=0.01) is False
