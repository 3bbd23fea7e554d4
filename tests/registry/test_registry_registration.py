"""Registering, renewing, deregistering and looking up instances over gRPC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest

from meshkit.errors import error_info
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from tests.support.registry import Contract, Method, StartPlugin, StartRegistry, contract_file
from tests.support.registry import descriptor_set as build_descriptor_set
from tests.support.waiting import eventually

if TYPE_CHECKING:
    Stub = registry_pb2_grpc.RegistryServiceAsyncStub
SECRET = "s3cret"

WIDGETS = Contract(
    package="test.widgets.v1",
    service="WidgetService",
    methods=[
        Method("GetWidget", [("GET", "/v1/widgets/{widget_id}")]),
        Method("ListWidgets", [("GET", "/v1/widgets"), ("GET", "/api/widgets")]),
    ],
    plugin=options_pb2.Plugin(version="1.2.0", produces=["widget.created"]),
)


def register_request(
    service: str = "widgets",
    address: str = "127.0.0.1:7001",
    contract: Contract = WIDGETS,
    **fields: Any,
) -> registry_pb2.RegisterInstanceRequest:
    values: dict[str, Any] = {
        "service": service,
        "address": address,
        "grpc_services": [contract.full_name],
        "file_descriptor_set": build_descriptor_set([contract_file(contract)]),
    }
    return registry_pb2.RegisterInstanceRequest(**(values | fields))


def code_and_reason(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    info = error_info(error)
    return error.code(), info.reason if info else ""


async def test_registered_instance_is_listed_and_found_by_either_name(stub: Stub) -> None:
    registered = await stub.RegisterInstance(register_request(metadata={"pid": "42"}))

    listed = await stub.ListServices(registry_pb2.ListServicesRequest())
    by_name = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
    by_grpc = await stub.GetService(registry_pb2.GetServiceRequest(service=WIDGETS.full_name))

    assert [s.name for s in listed.services] == ["registry", "widgets"]
    assert by_name.service == by_grpc.service
    service = by_name.service
    assert service.version == "1.2.0"
    assert list(service.grpc_services) == [WIDGETS.full_name]
    assert list(service.produces) == ["widget.created"]
    assert [(r.method, r.path) for r in service.routes] == [
        ("GET", "/v1/widgets/{widget_id}"),
        ("GET", "/v1/widgets"),
        ("GET", "/api/widgets"),
    ]
    [instance] = service.instances
    assert instance.instance_id == registered.instance.instance_id
    assert instance.address == "127.0.0.1:7001"
    assert dict(instance.metadata) == {"pid": "42"}
    assert registered.lease_duration.seconds == 10
    assert service.schema_digest.startswith("sha256:")


async def test_registering_again_at_the_same_address_keeps_the_instance_id(stub: Stub) -> None:
    first = await stub.RegisterInstance(register_request())
    again = await stub.RegisterInstance(register_request(version="1.3.0"))
    refreshed = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
    other = await stub.RegisterInstance(register_request(address="127.0.0.1:7002"))
    both = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))

    assert again.instance.instance_id == first.instance.instance_id
    assert again.instance.version == "1.3.0"
    assert refreshed.service.version == "1.3.0"
    assert len(refreshed.service.instances) == 1
    assert other.instance.instance_id != first.instance.instance_id
    assert [i.version for i in both.service.instances] == ["1.3.0", "1.2.0"]


async def test_unknown_service_is_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetService(registry_pb2.GetServiceRequest(service="nope"))

    assert code_and_reason(caught.value) == (grpc.StatusCode.NOT_FOUND, "SERVICE_NOT_FOUND")


async def test_lease_renewal_extends_the_lease_and_unknown_ids_are_not_found(stub: Stub) -> None:
    registered = await stub.RegisterInstance(register_request())

    renewed = await stub.RenewLease(
        registry_pb2.RenewLeaseRequest(instance_id=registered.instance.instance_id)
    )
    assert renewed.lease_expire_time.ToDatetime() >= (
        registered.instance.lease_expire_time.ToDatetime()
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RenewLease(registry_pb2.RenewLeaseRequest(instance_id="unknown"))
    assert code_and_reason(caught.value) == (grpc.StatusCode.NOT_FOUND, "INSTANCE_NOT_FOUND")


async def test_deregistering_removes_the_service_with_its_last_instance_and_is_idempotent(
    stub: Stub,
) -> None:
    registered = await stub.RegisterInstance(register_request())
    request = registry_pb2.DeregisterInstanceRequest(instance_id=registered.instance.instance_id)

    await stub.DeregisterInstance(request)
    await stub.DeregisterInstance(request)

    listed = await stub.ListServices(registry_pb2.ListServicesRequest())
    assert [s.name for s in listed.services] == ["registry"]


async def test_registry_lists_itself_with_its_contract(
    registry: RegistryServer, stub: Stub
) -> None:
    got = await stub.GetService(registry_pb2.GetServiceRequest(service="registry"))

    assert list(got.service.grpc_services) == ["plugmesh.registry.v1.RegistryService"]
    assert got.service.version == "1.0.0"
    assert [i.address for i in got.service.instances] == [registry.address]


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "REGISTRATION_SECRET_MISSING"),
        ((("plugmesh-registration-secret", "wrong"),), "REGISTRATION_SECRET_INVALID"),
    ],
    ids=["missing", "wrong"],
)
async def test_registration_without_the_secret_is_refused(
    start_registry: StartRegistry, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    registry = await start_registry(registration_secret=SECRET)
    async with grpc.aio.insecure_channel(registry.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RegisterInstance(register_request(), metadata=metadata)
        listed = await stub.ListServices(
            registry_pb2.ListServicesRequest(), metadata=(("plugmesh-registration-secret", SECRET),)
        )

    assert code_and_reason(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    assert [s.name for s in listed.services] == ["registry"]


@pytest.mark.parametrize(
    "method", ["ListServices", "GetService", "WatchServices", "GetServiceSchema"]
)
async def test_with_a_secret_the_registry_reads_nothing_to_a_caller_without_it(
    start_registry: StartRegistry, method: str
) -> None:
    registry = await start_registry(registration_secret=SECRET)
    requests = {
        "ListServices": registry_pb2.ListServicesRequest(),
        "GetService": registry_pb2.GetServiceRequest(service="registry"),
        "WatchServices": registry_pb2.WatchServicesRequest(),
        "GetServiceSchema": registry_pb2.GetServiceSchemaRequest(service="registry"),
    }

    async def first_answer() -> object:
        answer = call(requests[method], timeout=5)
        return await (anext(aiter(answer)) if method == "WatchServices" else answer)

    async with grpc.aio.insecure_channel(registry.address) as channel:
        call = getattr(registry_pb2_grpc.RegistryServiceStub(channel), method)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await first_answer()

    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_registration_with_the_secret_is_accepted(start_registry: StartRegistry) -> None:
    registry = await start_registry(registration_secret=SECRET)
    metadata = (("plugmesh-registration-secret", SECRET),)
    async with grpc.aio.insecure_channel(registry.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        registered = await stub.RegisterInstance(register_request(), metadata=metadata)
        instance_id = registered.instance.instance_id
        await stub.RenewLease(
            registry_pb2.RenewLeaseRequest(instance_id=instance_id), metadata=metadata
        )

    assert registered.instance.service == "widgets"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"service": ""}, "service"),
        ({"service": "Not A Name"}, "service"),
        ({"address": ""}, "address"),
        ({"address": "localhost"}, "address"),
        ({"address": "localhost:99999"}, "address"),
        ({"version": "one"}, "version"),
    ],
    ids=["no-service", "bad-service", "no-address", "no-port", "bad-port", "bad-version"],
)
async def test_malformed_registration_is_refused_naming_the_field(
    stub: Stub, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RegisterInstance(register_request(**fields))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info is not None
    assert info.metadata["field"] == field
    assert field in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("bindings", "method", "path"),
    [
        ([("GET", "/v1/widgets/{id}")], "GET", "/v1/widgets/{id}"),
        ([("GET", "/v1/{name=widgets/*}")], "GET", "/v1/{name=widgets/*}"),
        ([("POST", "/v1/gadgets"), ("GET", "/api/widgets")], "GET", "/api/widgets"),
    ],
    ids=["renamed-variable", "variable-pattern", "additional-binding"],
)
async def test_conflicting_route_is_refused_naming_the_route_and_its_owner(
    stub: Stub, bindings: list[tuple[str, str]], method: str, path: str
) -> None:
    await stub.RegisterInstance(register_request())
    rival = Contract(
        package="test.gadgets.v1",
        service="GadgetService",
        methods=[Method("GetGadget", bindings)],
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RegisterInstance(register_request("gadgets", "127.0.0.1:7003", rival))

    assert code_and_reason(caught.value) == (grpc.StatusCode.ALREADY_EXISTS, "ROUTE_CONFLICT")
    info = error_info(caught.value)
    assert info is not None
    assert (info.metadata["method"], info.metadata["path"]) == (method, path)
    assert info.metadata["owner"] == "widgets"
    assert info.metadata["rpc"] == "test.gadgets.v1.GadgetService.GetGadget"
    details = caught.value.details() or ""
    assert f"{method} {path}" in details
    assert "'widgets'" in details
    listed = await stub.ListServices(registry_pb2.ListServicesRequest())
    assert "gadgets" not in [s.name for s in listed.services]


async def test_conflicting_grpc_service_is_refused_naming_its_owner(stub: Stub) -> None:
    await stub.RegisterInstance(register_request())

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RegisterInstance(register_request("impostor", "127.0.0.1:7004"))

    assert code_and_reason(caught.value) == (grpc.StatusCode.ALREADY_EXISTS, "SERVICE_CONFLICT")
    info = error_info(caught.value)
    assert info is not None
    assert info.metadata["grpc_service"] == WIDGETS.full_name
    assert info.metadata["owner"] == "widgets"


async def test_same_path_with_another_method_does_not_conflict(stub: Stub) -> None:
    await stub.RegisterInstance(register_request())
    neighbour = Contract(
        package="test.gadgets.v1",
        service="GadgetService",
        methods=[Method("DeleteWidget", [("DELETE", "/v1/widgets/{id}")])],
    )

    await stub.RegisterInstance(register_request("gadgets", "127.0.0.1:7003", neighbour))


async def test_schema_is_fetched_over_reflection_when_not_sent(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])

    await stub.RegisterInstance(
        registry_pb2.RegisterInstanceRequest(service="widgets", address=plugin.address)
    )

    got = await stub.GetService(registry_pb2.GetServiceRequest(service="widgets"))
    assert list(got.service.grpc_services) == [WIDGETS.full_name]
    assert got.service.version == "1.2.0"
    assert len(got.service.routes) == 3
    schema = await stub.GetServiceSchema(registry_pb2.GetServiceSchemaRequest(service="widgets"))
    names = [f.name for f in schema.file_descriptor_set.file]
    assert names[-1] == "test/widgets/v1/service.proto"
    assert "google/api/annotations.proto" in names
    assert schema.schema_digest == got.service.schema_digest


async def test_schema_sent_at_registration_is_returned_as_sent_comments_included(
    stub: Stub,
) -> None:
    file = contract_file(WIDGETS)
    # The service's and GetWidget's comments, as protoc records them.
    for path, comment in [([6, 0], " Widgets.\n"), ([6, 0, 2, 0], " Gets one widget.\n")]:
        file.source_code_info.location.add(path=path, span=[3, 0, 12], leading_comments=comment)
    sent = build_descriptor_set([file])
    await stub.RegisterInstance(register_request(file_descriptor_set=sent))

    schema = await stub.GetServiceSchema(
        registry_pb2.GetServiceSchemaRequest(service=WIDGETS.full_name)
    )

    returned = {f.name: f for f in schema.file_descriptor_set.file}
    assert returned == {f.name: f for f in sent.file}
    assert returned[file.name].source_code_info == file.source_code_info


async def test_process_serving_only_health_and_reflection_registers_with_no_contract(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    gateway = await start_plugin([], [])

    await stub.RegisterInstance(
        registry_pb2.RegisterInstanceRequest(service="gateway", address=gateway.address)
    )

    got = await stub.GetService(registry_pb2.GetServiceRequest(service="gateway"))
    assert (list(got.service.grpc_services), list(got.service.routes)) == ([], [])
    assert [i.address for i in got.service.instances] == [gateway.address]


async def test_registration_of_an_unreachable_instance_without_schema_is_unavailable(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    address = plugin.address
    await plugin.stop()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RegisterInstance(
            registry_pb2.RegisterInstanceRequest(service="widgets", address=address)
        )

    assert code_and_reason(caught.value) == (grpc.StatusCode.UNAVAILABLE, "INSTANCE_UNREACHABLE")


async def test_registration_of_an_instance_without_reflection_needs_its_schema(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name], reflection=False)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RegisterInstance(
            registry_pb2.RegisterInstanceRequest(service="widgets", address=plugin.address)
        )

    assert code_and_reason(caught.value) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REFLECTION_FAILED",
    )


async def test_event_producers_and_consumers_are_looked_up_by_event_type(stub: Stub) -> None:
    audit = Contract(
        package="test.audit.v1",
        service="AuditService",
        plugin=options_pb2.Plugin(version="1.0.0", consumes=[">"]),
    )
    mail = Contract(
        package="test.mail.v1",
        service="MailService",
        plugin=options_pb2.Plugin(version="1.0.0", consumes=["widget.*", "user.created"]),
    )
    await stub.RegisterInstance(register_request())
    await stub.RegisterInstance(register_request("audit", "127.0.0.1:7010", audit))
    await stub.RegisterInstance(register_request("mail", "127.0.0.1:7011", mail))

    created = await stub.ListEventServices(
        registry_pb2.ListEventServicesRequest(event_type="widget.created")
    )
    login = await stub.ListEventServices(
        registry_pb2.ListEventServicesRequest(event_type="auth.login")
    )

    assert (list(created.producers), list(created.consumers)) == (["widgets"], ["audit", "mail"])
    assert (list(login.producers), list(login.consumers)) == ([], ["audit"])


async def test_dependencies_are_checked_against_serving_instances(
    stub: Stub, start_plugin: StartPlugin
) -> None:
    plugin = await start_plugin([contract_file(WIDGETS)], [WIDGETS.full_name])
    await stub.RegisterInstance(register_request(address=plugin.address))
    consumer = Contract(
        package="test.shop.v1",
        service="ShopService",
        plugin=options_pb2.Plugin(
            version="1.0.0",
            dependencies=[
                options_pb2.Dependency(service=WIDGETS.full_name, version_range="^1.1"),
                options_pb2.Dependency(service=WIDGETS.full_name, version_range=">=2.0.0"),
                options_pb2.Dependency(service="test.missing.v1.Gone", optional=True),
            ],
        ),
    )
    await stub.RegisterInstance(register_request("shop", "127.0.0.1:7020", consumer))
    request = registry_pb2.CheckDependenciesRequest(service="shop")

    async def serving() -> registry_pb2.CheckDependenciesResponse | None:
        response = await stub.CheckDependencies(request)
        return response if response.checks[0].satisfied else None

    result = await eventually(serving, what="the widgets instance serving")

    assert [c.satisfied for c in result.checks] == [True, False, False]
    assert result.checks[1].found_version == "1.2.0"
    assert "'>=2.0.0'" in result.checks[1].reason
    assert not result.satisfied
