"""The toolkit's server: health, reflection, errors as google.rpc.Status, shutdown order."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from meshkit.errors import error_info, status_of
from meshkit.health import NOT_SERVING, SERVING
from meshkit.server import AddressInUseError, PluginServer
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.meshkit.fake_registry import FakeRegistry
from tests.support.waiting import until

Served = tuple[FakeRegistry, PluginServer]


def health_stub(channel: grpc.aio.Channel) -> Any:
    """The Health stub; typed Any because its typeshed stubs are sync-only and predate List."""
    return health_pb2_grpc.HealthStub(channel)


async def test_health_check_reports_each_service_serving(fake_registry: Served) -> None:
    _, server = fake_registry
    async with grpc.aio.insecure_channel(server.address) as channel:
        health = health_stub(channel)
        for service in ("", "plugmesh.registry.v1.RegistryService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == SERVING, service
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_list_returns_every_service(fake_registry: Served) -> None:
    _, server = fake_registry
    async with grpc.aio.insecure_channel(server.address) as channel:
        reply = await health_stub(channel).List(health_pb2.HealthListRequest())  # type: ignore[attr-defined]  # typeshed predates List
    assert {name: s.status for name, s in reply.statuses.items()} == {
        "": SERVING,
        "plugmesh.registry.v1.RegistryService": SERVING,
    }


async def test_health_watch_pushes_each_change(fake_registry: Served) -> None:
    _, server = fake_registry
    service = "plugmesh.registry.v1.RegistryService"
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = health_stub(channel).Watch(health_pb2.HealthCheckRequest(service=service))
        stream = aiter(call)
        assert (await anext(stream)).status == SERVING
        await server.health.set(service, NOT_SERVING)
        assert (await anext(stream)).status == NOT_SERVING
        await server.health.set(service, SERVING)
        assert (await anext(stream)).status == SERVING
        call.cancel()


@pytest.mark.parametrize(
    "stub_module",
    [
        pytest.param("grpc.reflection.v1alpha.ServerReflection", id="v1alpha"),
        pytest.param("grpc.reflection.v1.ServerReflection", id="v1"),
    ],
)
async def test_reflection_lists_services_under_both_versions(
    fake_registry: Served, stub_module: str
) -> None:
    _, server = fake_registry
    method = f"/{stub_module}/ServerReflectionInfo"
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = channel.stream_stream(
            method,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        reply = await anext(aiter(call))
    names = {s.name for s in reply.list_services_response.service}
    assert names == {
        "plugmesh.registry.v1.RegistryService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        pytest.param(
            "grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto", id="v1"
        ),
        pytest.param(
            "plugmesh.registry.v1.RegistryService.GetService",
            "plugmesh/registry/v1/registry.proto",
            id="method",
        ),
        pytest.param("grpc.health.v1.Health.List", "grpc_health/v1/health.proto", id="health"),
    ],
)
async def test_reflection_finds_the_file_defining_a_symbol(
    fake_registry: Served, symbol: str, file: str
) -> None:
    _, server = fake_registry
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]  # the stubs are sync-only
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        reply = await anext(aiter(stub.ServerReflectionInfo(iter([request]))))
    assert not reply.HasField("error_response")
    names = [
        descriptor_pb2.FileDescriptorProto.FromString(raw).name
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    assert names[0] == file


async def test_mesh_error_reaches_caller_as_status_with_error_info(fake_registry: Served) -> None:
    _, server = fake_registry
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.GetService(registry_pb2.GetServiceRequest(service="nope"))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert failure.value.details() == "service 'nope' is not registered"
    info = error_info(failure.value)
    assert info is not None
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "SERVICE_NOT_FOUND",
        "registry.plugmesh",
        {"service": "nope"},
    )


async def test_unexpected_error_is_internal_without_its_text(fake_registry: Served) -> None:
    _, server = fake_registry
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.GetService(registry_pb2.GetServiceRequest(service="boom"))
    assert failure.value.code() == grpc.StatusCode.INTERNAL
    status = status_of(failure.value)
    assert status.code == code_pb2.INTERNAL
    assert "secret internals" not in status.message


async def test_stop_reports_not_serving_before_the_server_goes(fake_registry: Served) -> None:
    _, server = fake_registry
    seen: list[int] = []
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = health_stub(channel).Watch(health_pb2.HealthCheckRequest(service=""))

        async def watch() -> None:
            async for reply in call:
                seen.append(reply.status)

        watcher = asyncio.create_task(watch())
        await until(lambda: seen == [SERVING], what="the watch to report SERVING")
        await server.stop(0.5)
        with pytest.raises(grpc.aio.AioRpcError):
            await watcher
    assert seen == [SERVING, NOT_SERVING]


async def test_stop_is_safe_to_call_twice(fake_registry: Served) -> None:
    _, server = fake_registry
    await server.stop(0)
    await server.stop(0)


async def test_a_second_server_on_a_taken_port_fails_loudly(fake_registry: Served) -> None:
    _, server = fake_registry
    second = PluginServer("other", [], address=server.address, config=server.config, register=False)
    with pytest.raises(AddressInUseError, match="other cannot listen on"):
        await second.start()
