"""A plugin stays registered: register, renew, re-register, deregister, refusal."""

from __future__ import annotations

import grpc
import pytest

from meshkit.server import PluginServer, Servicer
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.meshkit.conftest import config_for
from tests.meshkit.fake_registry import FakeRegistry

Served = tuple[FakeRegistry, PluginServer]


def plugin(registry_address: str, secret: str | None = None) -> PluginServer:
    """A plugin serving a throwaway RegistryService implementation, registering itself."""
    return PluginServer(
        "things",
        [
            Servicer.of(
                registry_pb2,
                "RegistryService",
                registry_pb2_grpc.add_RegistryServiceServicer_to_server,
                FakeRegistry(),
            )
        ],
        address="127.0.0.1:0",
        config=config_for(registry_address, secret),
    )


async def test_plugin_registers_with_its_address_services_and_schema(fake_registry: Served) -> None:
    registry, registry_server = fake_registry
    server = plugin(registry_server.address, secret="s3cret")
    await server.start()
    try:
        await registry.wait_for(lambda: registry.registrations)
    finally:
        await server.stop(0)
    request = registry.registrations[0]
    assert request.service == "things"
    assert request.address == server.address
    assert request.version == "1.0.0"
    assert list(request.grpc_services) == ["plugmesh.registry.v1.RegistryService"]
    files = [f.name for f in request.file_descriptor_set.file]
    assert files[-1] == "plugmesh/registry/v1/registry.proto"
    assert "google/api/annotations.proto" in files
    assert files.index("google/api/http.proto") < files.index("google/api/annotations.proto")
    assert registry.secrets == ["s3cret"]


async def test_plugin_renews_its_lease(fake_registry: Served) -> None:
    registry, registry_server = fake_registry
    server = plugin(registry_server.address)
    await server.start()
    try:
        await registry.wait_for(lambda: registry.renewals >= 2)
    finally:
        await server.stop(0)


async def test_plugin_registers_again_when_the_registry_forgets_it(fake_registry: Served) -> None:
    registry, registry_server = fake_registry
    server = plugin(registry_server.address)
    await server.start()
    try:
        await registry.wait_for(lambda: registry.registrations)
        registry.known.clear()
        await registry.wait_for(lambda: len(registry.registrations) >= 2)
    finally:
        await server.stop(0)


async def test_plugin_deregisters_on_stop(fake_registry: Served) -> None:
    registry, registry_server = fake_registry
    server = plugin(registry_server.address)
    await server.start()
    assert server.registrar is not None
    await registry.wait_for(lambda: registry.registrations)
    await server.registrar.registered.wait()
    instance_id = server.registrar.instance_id
    await server.stop(0)
    assert registry.deregistered == [instance_id]


async def test_plugin_registers_once_a_late_registry_comes_up(unused_tcp_port: int) -> None:
    address = f"127.0.0.1:{unused_tcp_port}"
    server = plugin(address)
    await server.start()
    late = FakeRegistry()
    registry_server = PluginServer(
        "registry",
        [
            Servicer.of(
                registry_pb2,
                "RegistryService",
                registry_pb2_grpc.add_RegistryServiceServicer_to_server,
                late,
            )
        ],
        address=address,
        config=config_for(address),
        register=False,
    )
    try:
        await registry_server.start()
        await late.wait_for(lambda: late.registrations, within_seconds=10)
    finally:
        await server.stop(0)
        await registry_server.stop(0)


async def test_refused_registration_ends_the_plugin(fake_registry: Served) -> None:
    registry, registry_server = fake_registry
    registry.refuse = True
    server = plugin(registry_server.address)
    await server.start()
    try:
        await server.wait()
    finally:
        await server.stop(0)
    assert server.registrar is not None
    refused = server.registrar.refused
    assert refused is not None
    assert (refused.code, refused.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ROUTE_CONFLICT")


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
